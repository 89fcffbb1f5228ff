"""Qt adapters for data sets: the list of data sets, the examples table over one query, the
import preview, the history of evaluation runs, and the text shown for chat examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap, QPolygonF
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem

from slmdesk.ui.common.colours import MISTAKE_TINT, label_colour
from slmdesk.ui.common.probability_bars import BARS_ROLE, ProbabilityBarsDelegate
from slmdesk.ui.common.table_model import HeaderedTableModel, percent

if TYPE_CHECKING:
    from slmdesk.store.datasets import Dataset, Example

AnyIndex = QModelIndex | QPersistentModelIndex

EXAMPLE_ROLE = Qt.ItemDataRole.UserRole + 20  # the Example of a row
DATASET_ROLE = Qt.ItemDataRole.UserRole + 21  # the Dataset of a row
RUN_ROLE = Qt.ItemDataRole.UserRole + 22  # the EvalRun of a row

TEXT_COLUMN, LABEL_COLUMN, SUGGESTION_COLUMN, SPLIT_COLUMN, SOURCE_COLUMN = range(5)
HEADERS = ("Text", "Label", "Model suggestion", "Split", "Source")
DISPLAY_CHARS = 300  # the view elides further to the column width
PREVIEW_CHARS = 200


def one_line(text: str, limit: int = DISPLAY_CHARS) -> str:
    flat = " ⏎ ".join(part for part in text.splitlines() if part.strip()) or text.strip()
    return flat if len(flat) <= limit else flat[:limit] + "…"


def chat_summary(messages: Sequence[Mapping[str, Any]] | None,
                 limit: int = DISPLAY_CHARS) -> str:
    """A chat example on one line: each turn's role and the start of what it says."""
    if not messages:
        return "(no messages)"
    parts = []
    for message in messages:
        role = str(message.get("role", "?"))
        content = " ".join(str(message.get("content", "")).split())
        parts.append(f"{role}: {content[:80]}{'…' if len(content) > 80 else ''}")
    return one_line(" · ".join(parts), limit)


def example_text(example: Example, limit: int = DISPLAY_CHARS) -> str:
    if example.messages is not None:
        return chat_summary(example.messages, limit)
    return one_line(example.text or "", limit)


def disagrees(example: Example) -> bool:
    """The person's label and the model's suggestion are both there and differ."""
    return (example.label is not None and example.model_label is not None
            and example.label != example.model_label)


def kind_icon(kind: str, size: int = 16) -> QIcon:
    """A speech bubble for chat examples, a tag for labelled texts."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        if kind == "chat":
            painter.setBrush(label_colour(2))
            painter.drawRoundedRect(QRectF(1, 2, size - 2, size - 6), 3, 3)
            painter.drawPolygon(QPolygonF([QPointF(4, size - 5), QPointF(4, size - 1),
                                           QPointF(8, size - 5)]))
        else:
            painter.setBrush(label_colour(0))
            painter.drawPolygon(QPolygonF([
                QPointF(1, 4), QPointF(size - 6, 4), QPointF(size - 1, size / 2),
                QPointF(size - 6, size - 4), QPointF(1, size - 4)]))
            painter.setBrush(QColor("white"))
            painter.drawEllipse(QPointF(size - 6, size / 2), 1.5, 1.5)
    finally:
        painter.end()
    return QIcon(pixmap)


def swatch(colour: QColor, size: int = 10) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(colour)
    return QIcon(pixmap)


class DatasetListModel(QAbstractListModel):
    """The data sets, by name, with their kind as an icon and their size."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.items: list[tuple[Dataset, int]] = []
        self._icons: dict[str, QIcon] = {}

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        ds, count = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{ds.name}  ({count})"
        if role == Qt.ItemDataRole.ToolTipRole:
            what = "chat examples" if ds.kind == "chat" else "labelled texts"
            labels = f"\nlabels: {', '.join(ds.labels)}" if ds.labels else ""
            return f"{ds.name}: {count} {what}{labels}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(ds.kind)
        if role == DATASET_ROLE:
            return ds
        return None

    def _icon(self, kind: str) -> QIcon:
        if kind not in self._icons:
            self._icons[kind] = kind_icon(kind)
        return self._icons[kind]

    def set_items(self, items: Sequence[tuple[Dataset, int]]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def dataset(self, row: int) -> Dataset:
        return self.items[row][0]

    def row_of(self, name: str) -> int:
        for row, (ds, _count) in enumerate(self.items):
            if ds.name.casefold() == name.casefold():
                return row
        return -1


class ExamplesModel(HeaderedTableModel):
    """The examples one query returned, in its order; refreshed in place where it can be."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.rows: list[Example] = []
        self._row_of: dict[str, int] = {}

    # Qt model interface ----------------------------------------------------------------
    def headers(self) -> Sequence[str]:
        return HEADERS

    def cell(self, ex: Example, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(ex, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(ex, col)
        if role == EXAMPLE_ROLE:
            return ex
        if role == BARS_ROLE and col == SUGGESTION_COLUMN:
            return self._bars(ex)
        if role == Qt.ItemDataRole.DecorationRole and col == LABEL_COLUMN and ex.label:
            return swatch(self.colour(ex.label))
        if role == Qt.ItemDataRole.BackgroundRole and col == SUGGESTION_COLUMN and disagrees(ex):
            return QBrush(MISTAKE_TINT)
        if role == Qt.ItemDataRole.ForegroundRole and col == LABEL_COLUMN and not ex.label:
            return QBrush(QColor(128, 128, 128))
        return None

    def colour(self, label: str) -> QColor:
        at = self.labels.index(label) if label in self.labels else len(self.labels)
        return label_colour(at)

    def _display(self, ex: Example, col: int) -> str | None:
        if col == TEXT_COLUMN:
            return example_text(ex)
        if col == LABEL_COLUMN:
            return ex.label or ("" if ex.messages is not None else "—")
        if col == SUGGESTION_COLUMN:
            if ex.model_label is None:
                return ""
            return f"{ex.model_label} {percent(ex.model_confidence)}"
        if col == SPLIT_COLUMN:
            return ex.split or ""
        if col == SOURCE_COLUMN:
            return ex.source
        return None

    def _tooltip(self, ex: Example, col: int) -> str | None:
        if col == TEXT_COLUMN:
            full = ex.text if ex.messages is None else "\n".join(
                f"{m.get('role', '?')}: {m.get('content', '')}" for m in ex.messages)
            full = full or ""
            return full if len(full) <= 2000 else full[:2000] + "…"
        if col == LABEL_COLUMN:
            if ex.label is None:
                return "Not labelled yet: press 1–9 to pick a label"
            return f"Labelled by {ex.labelled_by or 'unknown'}"
        if col == SUGGESTION_COLUMN and ex.model_label is not None:
            tip = f"The model suggests {ex.model_label} ({percent(ex.model_confidence)})"
            if disagrees(ex):
                tip += f"; the label is {ex.label}"
            return tip
        if col == SOURCE_COLUMN and ex.source_ref:
            return ex.source_ref
        return None

    def _bars(self, ex: Example) -> list[tuple[str, float, float]]:
        if ex.model_label is None:
            return []
        p = float(ex.model_confidence or 0.0)
        # Every label in order (so the bar takes its label's colour); the delegate paints
        # the largest, which is the suggestion.
        bars = [(lab, p if lab == ex.model_label else 0.0, 0.0) for lab in self.labels]
        if ex.model_label not in self.labels:
            bars.append((ex.model_label, p, 0.0))
        return bars

    # filling ---------------------------------------------------------------------------
    def set_rows(self, examples: Sequence[Example], labels: Sequence[str]) -> None:
        """Show ``examples``; when the same examples come back in the same order (a label
        changed), the rows are updated in place so that selection and scroll stay."""
        examples = list(examples)
        same = (list(labels) == self.labels
                and [e.id for e in examples] == [e.id for e in self.rows])
        if same:
            changed = [r for r, (old, new) in enumerate(zip(self.rows, examples, strict=True))
                       if old != new]
            self.rows = examples
            for r in changed:
                self.row_changed(r)
            return
        self.beginResetModel()
        self.labels = list(labels)
        self.rows = examples
        self._row_of = {e.id: r for r, e in enumerate(examples)}
        self.endResetModel()

    def clear(self) -> None:
        self.set_rows([], [])

    def update_example(self, example: Example) -> None:
        row = self._row_of.get(example.id)
        if row is not None:
            self.rows[row] = example
            self.row_changed(row)

    def example(self, row: int) -> Example:
        return self.rows[row]

    def row_of(self, example_id: str) -> int:
        return self._row_of.get(example_id, -1)



class SuggestionBarDelegate(ProbabilityBarsDelegate):
    """The model's suggestion as one bar in its label's colour, with its confidence."""

    TOP = 1

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        base = super().sizeHint(option, index)
        return QSize(150, base.height())


class PreviewModel(HeaderedTableModel):
    """The first rows of a file to import, with the chosen text and label columns tinted."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.text_column: str | None = None
        self.label_column: str | None = None

    def headers(self) -> Sequence[str]:
        return self.columns

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if not 0 <= section < len(self.columns):
                return None
            name = self.columns[section]
            if role == Qt.ItemDataRole.DisplayRole:
                if name == self.text_column:
                    return f"{name} → text"
                if name == self.label_column:
                    return f"{name} → label"
                return name
            return None
        if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.rows):
            return str(section + 1)
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self.rows)
                                       and 0 <= index.column() < len(self.columns)):
            return None
        name = self.columns[index.column()]
        value = self.rows[index.row()].get(name)
        if role == Qt.ItemDataRole.DisplayRole:
            return one_line(_cell_text(value), PREVIEW_CHARS)
        if role == Qt.ItemDataRole.ToolTipRole:
            text = _cell_text(value)
            return text if len(text) <= 2000 else text[:2000] + "…"
        if role == Qt.ItemDataRole.BackgroundRole:
            if name == self.text_column:
                return QBrush(QColor(59, 120, 196, 40))
            if name == self.label_column:
                return QBrush(QColor(224, 123, 57, 40))
        return None

    def set_preview(self, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
        self.beginResetModel()
        self.columns = [str(c) for c in columns]
        self.rows = [dict(r) for r in rows]
        self.endResetModel()

    def set_mapping(self, text_column: str | None, label_column: str | None) -> None:
        self.text_column, self.label_column = text_column, label_column
        if self.columns:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(self.columns) - 1)
        if self.rows and self.columns:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self.rows) - 1, len(self.columns) - 1))


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        if isinstance(value, list) and all(isinstance(m, dict) for m in value):
            return chat_summary(value, 10_000)
        return str(value)
    return str(value)


RUN_HEADERS = ("When", "Model", "Classifier", "Split", "Texts", "Accuracy", "Macro-F1")
(RUN_WHEN, RUN_MODEL, RUN_SPEC, RUN_SPLIT, RUN_N, RUN_ACCURACY, RUN_F1) = range(7)


def spec_summary(spec: Any) -> str:
    """A classifier spec (a dict or a ClassifierSpec) in a few words."""
    data = spec.to_json() if hasattr(spec, "to_json") else spec
    if not isinstance(data, Mapping):
        return str(data)
    labels = [str(lab.get("name", "")) if isinstance(lab, Mapping) else str(lab)
              for lab in data.get("labels", [])]
    parts = [", ".join(labels)]
    examples = data.get("examples") or []
    if examples:
        parts.append(f"{len(examples)} examples")
    parts.append(f"calibration {data.get('calibration', 'auto')}")
    style = data.get("prompt_style", "auto")
    if style != "auto":
        parts.append(f"{style} prompt")
    instructions = " ".join(str(data.get("instructions") or "").split())
    if instructions:
        parts.append(f"“{instructions[:40]}{'…' if len(instructions) > 40 else ''}”")
    return " · ".join(p for p in parts if p)


class EvalHistoryModel(HeaderedTableModel):
    """Evaluation runs of one data set, newest first: model and classifier side by side
    with their scores."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.best_accuracy: float | None = None

    @property
    def runs(self) -> list[Any]:  # EvalRun, newest first
        return self.rows

    def headers(self) -> Sequence[str]:
        return RUN_HEADERS

    def cell(self, run: Any, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if col == RUN_WHEN:
                return str(run.created_at)[:16].replace("T", " ")
            if col == RUN_MODEL:
                return run.model_name
            if col == RUN_SPEC:
                name = getattr(run, "classifier_name", None)
                return f"{name} · {spec_summary(run.spec)}" if name else spec_summary(run.spec)
            if col == RUN_SPLIT:
                return run.split
            if col == RUN_N:
                return str(int(getattr(run, "n", 0) or (run.report or {}).get("n", 0)))
            if col == RUN_ACCURACY:
                return f"{run.accuracy:.1%}"
            if col == RUN_F1:
                return f"{run.macro_f1:.3f}"
            return None
        if role == Qt.ItemDataRole.ToolTipRole and col == RUN_SPEC:
            return spec_summary(run.spec)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (RUN_N, RUN_ACCURACY, RUN_F1):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if (role == Qt.ItemDataRole.FontRole and col == RUN_ACCURACY
                and self.best_accuracy is not None and run.accuracy == self.best_accuracy
                and len(self.runs) > 1):
            font = QApplication.font()
            font.setBold(True)
            return font
        if role == RUN_ROLE:
            return run
        return None

    def set_runs(self, runs: Sequence[Any]) -> None:
        self.beginResetModel()
        self.rows = sorted(runs, key=lambda r: str(r.created_at), reverse=True)
        self.best_accuracy = max((r.accuracy for r in self.runs), default=None)
        self.endResetModel()

    def run(self, row: int) -> Any:
        return self.runs[row]
