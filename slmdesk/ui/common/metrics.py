"""The evaluation report, as the Classify and Data sets tabs show it: a summary line above a
table of per-label precision, recall, F1 and support beside the confusion-matrix picture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.common.confusion import ConfusionMatrix
from slmdesk.ui.common.labels import let_layout_decide_width


class MetricsPanel(QWidget):
    """``per_label`` (a table) and ``confusion`` (the picture), side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.per_label = QTableWidget(0, 5, self)
        self.per_label.setObjectName("per_label")
        self.per_label.setHorizontalHeaderLabels(
            ["Label", "Precision", "Recall", "F1", "Support"])
        self.per_label.verticalHeader().setVisible(False)
        self.per_label.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.per_label.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        row.addWidget(self.per_label, 1)
        self.confusion = ConfusionMatrix(self)
        self.confusion.setObjectName("confusion_matrix")
        self.confusion.setToolTip("Rows: the expected label · columns: the predicted label")
        row.addWidget(self.confusion, 1)

    def show_metrics(self, labels: Sequence[str],
                     per_label: Mapping[str, Mapping[str, float]],
                     confusion: Sequence[Sequence[int]]) -> None:
        """Fill the table (one row per label) and the confusion picture."""
        self.per_label.setRowCount(len(labels))
        for r, lab in enumerate(labels):
            stats = per_label.get(lab, {})
            values = [lab, f"{stats.get('precision', 0.0):.3f}",
                      f"{stats.get('recall', 0.0):.3f}", f"{stats.get('f1', 0.0):.3f}",
                      str(int(stats.get("support", 0)))]
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.per_label.setItem(r, c, item)
        self.confusion.set_matrix(list(labels), [list(row) for row in confusion])

    def clear(self) -> None:
        self.show_metrics([], {}, [])


class ReportPanel(QWidget):
    """``summary`` (selectable text; ``head`` may take more widgets beside it) above the
    ``metrics``; before any report the summary says what an evaluation would show."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.placeholder = placeholder
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        self.head = QHBoxLayout()
        self.summary = QLabel(placeholder, self)
        self.summary.setObjectName("eval_summary")
        let_layout_decide_width(self.summary)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.head.addWidget(self.summary, 1)
        layout.addLayout(self.head)
        self.metrics = MetricsPanel(self)
        self.per_label, self.confusion = self.metrics.per_label, self.metrics.confusion
        layout.addWidget(self.metrics, 1)

    def show_report(self, summary: str, labels: Sequence[str],
                    per_label: Mapping[str, Mapping[str, float]],
                    confusion: Sequence[Sequence[int]]) -> None:
        """Show one evaluation: its summary line and its metrics."""
        self.summary.setText(summary)
        self.metrics.show_metrics(labels, per_label, confusion)

    def clear(self) -> None:
        """Back to the placeholder, with no metrics."""
        self.summary.setText(self.placeholder)
        self.metrics.clear()
