"""Qt adapters for classification results: one ResultRow per classified text, the results
table model over them, and the filter proxy the results table shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush

from slmdesk.ui.common.colours import MISTAKE_TINT, REVIEWED_TINT
from slmdesk.ui.common.probability_bars import BARS_ROLE, FAILED_ROLE
from slmdesk.ui.common.table_model import SORT_ROLE, HeaderedTableModel, percent
from slmdesk.ui.common.tones import tone_colour

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Prediction

AnyIndex = QModelIndex | QPersistentModelIndex

ROW_ROLE = Qt.ItemDataRole.UserRole + 4  # the ResultRow itself

TEXT_COLUMN, LABEL_COLUMN, CONFIDENCE_COLUMN, PROBS_COLUMN, EXPECTED_COLUMN, REVIEWED_COLUMN = (
    range(6))
HEADERS = ("Text", "Label", "Confidence", "Probabilities", "Expected", "Reviewed")
DISPLAY_CHARS = 300  # the view elides further to the column width


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


class ResultsModel(HeaderedTableModel):
    """Classified texts, one row each, in input order; live rows first, then the final ones."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.rows: list[ResultRow] = []
        self._row_of: dict[int, int] = {}  # input index -> row

    # Qt model interface -------------------------------------------------------------
    def headers(self) -> Sequence[str]:
        return HEADERS

    def row_header(self, row: int) -> str:
        return str(self.rows[row].index + 1)  # the input line it came from

    def cell(self, row: ResultRow, col: int, role: int) -> Any:
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
        if role == FAILED_ROLE:
            return row.failed
        if role == Qt.ItemDataRole.TextAlignmentRole and col == CONFIDENCE_COLUMN:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and col == LABEL_COLUMN and row.failed:
            return QBrush(tone_colour("error"))
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
            self.row_changed(existing)
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
        self.row_changed(row)

    def result(self, row: int) -> ResultRow:
        return self.rows[row]

    def predictions(self) -> list[Prediction]:
        return [r.prediction for r in self.rows]

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
