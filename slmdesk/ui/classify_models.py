"""Qt adapters for classification results: the results table model and its filter, the
probability bars (table cells and the details pane), the confusion-matrix picture, and the
CSV/JSONL text of an export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Prediction

AnyIndex = QModelIndex | QPersistentModelIndex

# One colour per label, in the order the labels are defined (colour-blind-friendly-ish).
LABEL_COLOURS = ("#3b78c4", "#e07b39", "#3d9a5b", "#c2465a", "#8a63c2", "#2a9d9d",
                 "#b08a2e", "#6b7a8f", "#d16ba5", "#5a8f29")
CORRECT_COLOUR = QColor("#2e7d32")
WRONG_COLOUR = QColor("#c62828")
REVIEWED_TINT = QColor(61, 154, 91, 60)  # translucent: reads on light and dark themes
MISTAKE_TINT = QColor(198, 40, 40, 50)
ERROR_COLOUR = QColor("#b00020")

SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # a value that sorts: text, number
BARS_ROLE = Qt.ItemDataRole.UserRole + 2  # [(label, calibrated p, raw p)] in label order
ROW_ROLE = Qt.ItemDataRole.UserRole + 3  # the ResultRow itself

TEXT_COLUMN, LABEL_COLUMN, CONFIDENCE_COLUMN, PROBS_COLUMN, EXPECTED_COLUMN, REVIEWED_COLUMN = (
    range(6))
HEADERS = ("Text", "Label", "Confidence", "Probabilities", "Expected", "Reviewed")
DISPLAY_CHARS = 300  # the view elides further to the column width


def label_colour(position: int) -> QColor:
    return QColor(LABEL_COLOURS[position % len(LABEL_COLOURS)])


def percent(p: float | None) -> str:
    return "—" if p is None else f"{100 * p:.1f} %"


@dataclass
class ResultRow:
    """One classified text, where it came from, and what the person did with it."""

    index: int  # position in the input, from 0
    prediction: Prediction
    gold: str | None = None  # the expected label, when evaluating
    reviewed: str | None = None  # the label the person saved to a data set
    reviewed_dataset: str | None = None

    @property
    def text(self) -> str:
        return str(self.prediction.text)

    @property
    def failed(self) -> bool:
        return self.prediction.error is not None

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label the model chose (one, or several for a multi-label classifier)."""
        pred = self.prediction
        chosen = tuple(pred.labels or ())
        if pred.label is not None and pred.label not in chosen:
            chosen = (pred.label, *chosen)
        return chosen

    @property
    def label_text(self) -> str:
        if self.failed:
            return "error"
        return ", ".join(self.labels) if self.labels else "(none)"

    @property
    def confidence(self) -> float | None:
        if self.failed:
            return None
        return float(self.prediction.confidence)

    @property
    def mistaken(self) -> bool:
        return self.gold is not None and self.gold != self.prediction.label

    def probabilities(self, labels: Sequence[str]) -> list[tuple[str, float, float]]:
        pred = self.prediction
        probs = pred.probs or {}
        raw = pred.raw_probs or probs
        return [(lab, float(probs.get(lab, 0.0)), float(raw.get(lab, 0.0))) for lab in labels]


class ResultsModel(QAbstractTableModel):
    """Classified texts, one row each, in input order; live rows first, then the final ones."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.rows: list[ResultRow] = []
        self._row_of: dict[int, int] = {}  # input index -> row

    # Qt model interface -------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return HEADERS[section] if 0 <= section < len(HEADERS) else None
        if 0 <= section < len(self.rows):
            return str(self.rows[section].index + 1)  # the input line it came from
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == SORT_ROLE:
            return self._sort_value(row, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, col)
        if role == BARS_ROLE:
            return row.probabilities(self.labels)
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.TextAlignmentRole and col == CONFIDENCE_COLUMN:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and col == LABEL_COLUMN and row.failed:
            return QBrush(ERROR_COLOUR)
        if role == Qt.ItemDataRole.BackgroundRole:
            if col == LABEL_COLUMN and row.mistaken:
                return QBrush(MISTAKE_TINT)
            if row.reviewed is not None:
                return QBrush(REVIEWED_TINT)
        return None

    def _display(self, row: ResultRow, col: int) -> str | None:
        if col == TEXT_COLUMN:
            flat = " ⏎ ".join(row.text.splitlines())
            return flat if len(flat) <= DISPLAY_CHARS else flat[:DISPLAY_CHARS] + "…"
        if col == LABEL_COLUMN:
            return row.label_text
        if col == CONFIDENCE_COLUMN:
            return percent(row.confidence)
        if col == PROBS_COLUMN:
            return None  # painted by ProbabilityBarsDelegate
        if col == EXPECTED_COLUMN:
            return row.gold or ""
        if col == REVIEWED_COLUMN:
            if row.reviewed is None:
                return ""
            if row.reviewed == row.prediction.label:
                return f"✓ {row.reviewed}"
            return f"✎ {row.reviewed}"
        return None

    def _sort_value(self, row: ResultRow, col: int) -> Any:
        if col == TEXT_COLUMN:
            return row.text.casefold()
        if col == LABEL_COLUMN:
            return row.label_text.casefold()
        if col in (CONFIDENCE_COLUMN, PROBS_COLUMN):
            return -1.0 if row.confidence is None else row.confidence
        if col == EXPECTED_COLUMN:
            return (row.gold or "").casefold()
        if col == REVIEWED_COLUMN:
            return (row.reviewed or "").casefold()
        return None

    def _tooltip(self, row: ResultRow, col: int) -> str | None:
        pred = row.prediction
        if col == TEXT_COLUMN:
            text = row.text
            return text if len(text) <= 2000 else text[:2000] + "…"
        if col == LABEL_COLUMN:
            if pred.error:
                return str(pred.error)
            notes = list(pred.notes or [])
            return "\n".join(notes) if notes else None
        if col in (CONFIDENCE_COLUMN, PROBS_COLUMN):
            if pred.error:
                return str(pred.error)
            lines = [f"{lab}: {percent(p)}  (raw {percent(r)})"
                     for lab, p, r in sorted(row.probabilities(self.labels),
                                             key=lambda t: -t[1])]
            lines.append(f"calibration: {pred.calibration}")
            return "\n".join(lines)
        if col == REVIEWED_COLUMN and row.reviewed is not None:
            return f"Saved to “{row.reviewed_dataset}” as {row.reviewed}"
        return None

    # filling ------------------------------------------------------------------------
    def reset(self, labels: Sequence[str]) -> None:
        self.beginResetModel()
        self.labels = list(labels)
        self.rows = []
        self._row_of = {}
        self.endResetModel()

    def put(self, index: int, prediction: Prediction, gold: str | None = None) -> None:
        """Add (or update) the result for input ``index``; rows stay in input order."""
        existing = self._row_of.get(index)
        if existing is not None:
            self.rows[existing].prediction = prediction
            self.rows[existing].gold = gold
            self._changed(existing)
            return
        position = len(self.rows)
        while position > 0 and self.rows[position - 1].index > index:
            position -= 1
        self.beginInsertRows(QModelIndex(), position, position)
        self.rows.insert(position, ResultRow(index, prediction, gold))
        self._reindex()
        self.endInsertRows()

    def replace_all(self, predictions: Sequence[Prediction],
                    gold: Sequence[str] | None = None, *, keep_missing: bool = False) -> None:
        """Put the final predictions in place of the live ones, keeping what was reviewed.

        Rows that both lists share are updated in place, so selection and scroll survive.
        Live rows the final list lacks go, unless ``keep_missing`` (a cancelled run).
        """
        final = {i: p for i, p in enumerate(predictions)}
        gone = [] if keep_missing else [
            r for r, row in enumerate(self.rows) if row.index not in final]
        for r in reversed(gone):
            self.beginRemoveRows(QModelIndex(), r, r)
            del self.rows[r]
            self._reindex()
            self.endRemoveRows()
        for i, prediction in final.items():
            row = self._row_of.get(i)
            if row is not None and self.rows[row].text != prediction.text:
                self.rows[row].reviewed = None  # a different text: its review does not carry
            self.put(i, prediction, gold[i] if gold is not None and i < len(gold) else None)

    def mark_reviewed(self, row: int, label: str, dataset: str) -> None:
        self.rows[row].reviewed = label
        self.rows[row].reviewed_dataset = dataset
        self._changed(row)

    def result(self, row: int) -> ResultRow:
        return self.rows[row]

    def predictions(self) -> list[Prediction]:
        return [r.prediction for r in self.rows]

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    def _reindex(self) -> None:
        self._row_of = {row.index: r for r, row in enumerate(self.rows)}


ANY_LABEL = ""
NO_LABEL = "\x00none"
FAILED = "\x00error"


class ResultsFilter(QSortFilterProxyModel):
    """Sorts by the model's SORT_ROLE; filters by label, minimum confidence and mistakes."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label = ANY_LABEL
        self.min_confidence = 0.0
        self.mistakes_only = False
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_label(self, label: str) -> None:
        self._change(lambda: setattr(self, "label", label))

    def set_min_confidence(self, value: float) -> None:
        self._change(lambda: setattr(self, "min_confidence", value))

    def set_mistakes_only(self, on: bool) -> None:
        self._change(lambda: setattr(self, "mistakes_only", on))

    def _change(self, apply: Any) -> None:
        self.beginFilterChange()
        apply()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, ResultsModel) or not 0 <= source_row < len(model.rows):
            return True
        row = model.rows[source_row]
        if self.label == FAILED:
            if not row.failed:
                return False
        elif self.label == NO_LABEL:
            if row.failed or row.labels:
                return False
        elif self.label != ANY_LABEL and self.label not in row.labels:
            return False
        if self.min_confidence > 0 and (row.confidence or 0.0) < self.min_confidence:
            return False
        return not (self.mistakes_only and not row.mistaken)


class ProbabilityBarsDelegate(QStyledItemDelegate):
    """Paints the top three labels of a row as filled bars with their names and percents."""

    TOP = 3

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        bars = index.data(BARS_ROLE) or []
        row = index.data(ROW_ROLE)
        if not bars or (row is not None and row.failed):
            return
        order = {lab: i for i, (lab, _p, _r) in enumerate(bars)}
        top = sorted(bars, key=lambda t: -t[1])[: self.TOP]
        rect: QRect = opt.rect.adjusted(3, 3, -3, -3)
        gap = 4
        slot_w = max(1, (rect.width() - gap * (len(top) - 1)) // len(top))
        metrics = QFontMetrics(opt.font)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text_colour = opt.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        for i, (lab, p, _raw) in enumerate(top):
            slot = QRect(rect.left() + i * (slot_w + gap), rect.top(), slot_w, rect.height())
            colour = label_colour(order[lab])
            track = QColor(colour)
            track.setAlpha(40)
            painter.fillRect(slot, track)
            fill = QColor(colour)
            fill.setAlpha(150)
            painter.fillRect(QRect(slot.left(), slot.top(), round(slot.width() * p),
                                   slot.height()), fill)
            painter.setPen(QPen(text_colour))
            text = metrics.elidedText(f"{lab} {100 * p:.0f}%", Qt.TextElideMode.ElideRight,
                                      slot.width() - 6)
            painter.drawText(slot.adjusted(3, 0, -3, 0),
                             int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                             text)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        base = super().sizeHint(option, index)
        return QSize(max(base.width(), 240), max(base.height(), 22))


class ProbabilityChart(QWidget):
    """Every label's probability as a bar: calibrated (label colour), raw (thin, grey)."""

    ROW_H = 30

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bars: list[tuple[str, float, float]] = []
        self._chosen: set[str] = set()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(self.ROW_H)

    def set_bars(self, bars: Sequence[tuple[str, float, float]],
                 chosen: Sequence[str] = ()) -> None:
        self._bars = list(bars)
        self._chosen = set(chosen)
        self.setFixedHeight(max(1, len(self._bars)) * self.ROW_H + 4)
        self.update()

    def bars(self) -> list[tuple[str, float, float]]:
        return list(self._bars)

    def sizeHint(self) -> QSize:
        return QSize(320, max(1, len(self._bars)) * self.ROW_H + 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            bold = painter.font()
            bold.setBold(True)
            metrics = QFontMetrics(bold)  # the chosen label is bold: measure the wider one
            name_w = min(self.width() // 3, max(
                [metrics.horizontalAdvance(lab) for lab, _p, _r in self._bars] or [40]) + 10)
            pct_w = metrics.horizontalAdvance("100.0 %") + 8
            bar_w = max(10, self.width() - name_w - pct_w - 8)
            text_colour = self.palette().color(QPalette.ColorRole.WindowText)
            for i, (lab, p, raw) in enumerate(self._bars):
                top = 2 + i * self.ROW_H
                font = painter.font()
                font.setBold(lab in self._chosen)
                painter.setFont(font)
                painter.setPen(text_colour)
                painter.drawText(QRect(0, top, name_w - 6, self.ROW_H - 8),
                                 int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
                                 metrics.elidedText(lab, Qt.TextElideMode.ElideRight,
                                                    name_w - 6))
                colour = label_colour(i)
                track = QColor(colour)
                track.setAlpha(35)
                painter.fillRect(QRect(name_w, top + 2, bar_w, self.ROW_H - 14), track)
                painter.fillRect(QRect(name_w, top + 2, round(bar_w * p), self.ROW_H - 14),
                                 colour)
                painter.fillRect(QRect(name_w, top + self.ROW_H - 10, round(bar_w * raw), 3),
                                 QColor(128, 128, 128, 170))
                painter.drawText(QRect(name_w + bar_w + 6, top, pct_w, self.ROW_H - 8),
                                 int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                                 percent(p))
        finally:
            painter.end()


class ConfusionMatrix(QWidget):
    """A heat map of gold (rows) against predicted (columns) labels, with counts.

    Diagonal cells are green, the others red; the more texts, the stronger the colour.
    """

    CELL_MIN = 34

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.counts: list[list[int]] = []
        self.setMinimumSize(200, 160)

    def set_matrix(self, labels: Sequence[str], counts: Sequence[Sequence[int]]) -> None:
        self.labels = list(labels)
        self.counts = [list(map(int, row)) for row in counts]
        self.updateGeometry()
        self.update()

    def count(self, row: int, col: int) -> int:
        return self.counts[row][col]

    def cell_colour(self, row: int, col: int) -> QColor:
        peak = max((max(r) for r in self.counts if r), default=0) or 1
        strength = self.counts[row][col] / peak
        base = QColor(CORRECT_COLOUR if row == col else WRONG_COLOUR)
        paper = QColor(250, 250, 250)
        # Blend from near-white to the full colour so that zero is visibly empty.
        t = 0.08 + 0.92 * strength if self.counts[row][col] else 0.0
        return QColor(
            round(paper.red() + (base.red() - paper.red()) * t),
            round(paper.green() + (base.green() - paper.green()) * t),
            round(paper.blue() + (base.blue() - paper.blue()) * t),
        )

    def _margins(self) -> tuple[int, int]:
        metrics = self.fontMetrics()
        left = max([metrics.horizontalAdvance(t) for t in [*self.labels, "expected ↓"]]) + 16
        left = min(left, max(60, self.width() // 3))
        top = metrics.height() * 2 + 10
        return left, top

    def cell_size(self) -> int:
        n = max(1, len(self.labels))
        left, top = self._margins()
        return max(12, min(96, (self.width() - left - 4) // n, (self.height() - top - 4) // n))

    def cell_rect(self, row: int, col: int) -> QRect:
        left, top = self._margins()
        size = self.cell_size()
        return QRect(left + col * size, top + row * size, size, size)

    def sizeHint(self) -> QSize:
        n = max(1, len(self.labels))
        left, top = self._margins()
        return QSize(left + n * 56 + 8, top + n * 56 + 8)

    def minimumSizeHint(self) -> QSize:
        n = max(1, len(self.labels))
        left, top = self._margins()
        return QSize(left + n * self.CELL_MIN + 4, top + n * self.CELL_MIN + 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            if not self.labels:
                return
            metrics = painter.fontMetrics()
            text_colour = self.palette().color(QPalette.ColorRole.WindowText)
            left, top = self._margins()
            size = self.cell_size()
            n = len(self.labels)
            painter.setPen(text_colour)
            painter.drawText(QRect(left, 0, n * size, metrics.height() + 2),
                             int(Qt.AlignmentFlag.AlignCenter), "predicted →")
            painter.drawText(QRect(0, 0, left - 4, top - 4),
                             int(Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft),
                             "expected ↓")
            for c, lab in enumerate(self.labels):
                painter.drawText(
                    QRect(left + c * size, metrics.height() + 4, size, metrics.height() + 4),
                    int(Qt.AlignmentFlag.AlignCenter),
                    metrics.elidedText(lab, Qt.TextElideMode.ElideRight, size - 2))
            for r, lab in enumerate(self.labels):
                painter.setPen(text_colour)
                painter.drawText(
                    QRect(0, top + r * size, left - 8, size),
                    int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
                    metrics.elidedText(lab, Qt.TextElideMode.ElideRight, left - 8))
                for c in range(n):
                    rect = self.cell_rect(r, c)
                    colour = self.cell_colour(r, c)
                    painter.fillRect(rect, colour)
                    painter.setPen(QColor(0, 0, 0, 40))
                    painter.drawRect(rect.adjusted(0, 0, -1, -1))
                    painter.setPen(QColor("white") if colour.lightness() < 140
                                   else QColor("#202020"))
                    painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter),
                                     str(self.counts[r][c]))
        finally:
            painter.end()


# export ---------------------------------------------------------------------------------
def export_records(rows: Sequence[ResultRow], labels: Sequence[str]) -> list[dict[str, Any]]:
    """One flat record per row: text, label, confidence, then one probability per label."""
    records = []
    for row in rows:
        pred = row.prediction
        record: dict[str, Any] = {
            "text": row.text,
            "label": pred.label,
            "confidence": None if row.confidence is None else round(row.confidence, 6),
        }
        probs = pred.probs or {}
        for lab in labels:
            record[f"p_{lab}"] = round(float(probs.get(lab, 0.0)), 6)
        if len(row.labels) > 1 or (pred.labels and tuple(pred.labels) != (pred.label,)):
            record["labels"] = list(row.labels)
        if row.gold is not None:
            record["expected"] = row.gold
        if row.reviewed is not None:
            record["reviewed_label"] = row.reviewed
        if pred.error:
            record["error"] = str(pred.error)
        records.append(record)
    return records


def export_text(rows: Sequence[ResultRow], labels: Sequence[str], fmt: str) -> str:
    """The rows as CSV (with a header) or JSONL (one object a line)."""
    records = export_records(rows, labels)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    columns = ["text", "label", "confidence", *[f"p_{lab}" for lab in labels]]
    for extra in ("labels", "expected", "reviewed_label", "error"):
        if any(extra in r for r in records):
            columns.append(extra)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("|".join(v) if isinstance(v, list) else ("" if v is None else v))
                         for k, v in r.items()})
    return out.getvalue()
