"""The result of a finished training, from its report: test metrics before (zero-shot) and
after, McNemar's p-value, every method's validation metrics, both confusion pictures side by
side (or per-label F1 before and after), and what to do with the result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.common.confusion import ConfusionMatrix

SIGNIFICANCE = 0.05
# the test metrics the card compares, in this order, with their names for people
METRICS = (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1"), ("loss", "Held-out loss"))


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "—"


def significance_text(mcnemar: Mapping[str, Any]) -> str:
    """McNemar's p-value in words ("" when the report has none)."""
    p = mcnemar.get("p_value")
    if not isinstance(p, (int, float)):
        return ""
    verdict = ("a significant difference" if p < SIGNIFICANCE
               else "not a significant difference")
    return (f"McNemar's test, trained vs zero-shot on the same test texts: p = {p:.4g} "
            f"({verdict} at {SIGNIFICANCE}).")


def fill_table(table: QTableWidget, rows: Sequence[Sequence[str]]) -> None:
    """Rows of text; the columns after the first are numbers, aligned right."""
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem(value)
            if c:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(r, c, item)


def small_table(parent: QWidget, name: str, headers: Sequence[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers), parent)
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


class ResultCard(QWidget):
    """Shows one training report (``show_report``); hidden parts stay hidden when the
    report does not carry them (a chat fine-tune has no labels)."""

    use_in_classify_requested = Signal(str)  # the saved classifier's name
    chat_requested = Signal(str)  # the registered model's name

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("", self)
        self.title.setObjectName("result_title")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        tables = QHBoxLayout()
        self.metrics = small_table(self, "result_metrics", ["Test", "Before", "After"])
        self.methods = small_table(self, "result_methods",
                                   ["Method (validation)", "Accuracy", "Macro-F1"])
        tables.addWidget(self.metrics, 1)
        tables.addWidget(self.methods, 1)
        layout.addLayout(tables, 1)
        self.significance = QLabel("", self)
        self.significance.setObjectName("result_significance")
        self.significance.setWordWrap(True)
        layout.addWidget(self.significance)
        layout.addWidget(self._build_pictures(), 2)
        self.per_label = small_table(self, "result_per_label", ["Label", "F1 before", "F1 after"])
        layout.addWidget(self.per_label, 1)
        layout.addLayout(self._build_buttons())
        self.clear()

    def _build_pictures(self) -> QWidget:
        self.pictures = QWidget(self)
        row = QHBoxLayout(self.pictures)
        row.setContentsMargins(0, 0, 0, 0)
        self.before_caption, self.before_confusion = self._picture("before_confusion")
        self.after_caption, self.after_confusion = self._picture("after_confusion")
        return self.pictures

    def _picture(self, name: str) -> tuple[QLabel, ConfusionMatrix]:
        column = QVBoxLayout()
        caption = QLabel("", self.pictures)
        picture = ConfusionMatrix(self.pictures)
        picture.setObjectName(name)
        picture.setToolTip("Rows: the expected label · columns: the predicted label")
        column.addWidget(caption)
        column.addWidget(picture, 1)
        layout = self.pictures.layout()
        assert isinstance(layout, QHBoxLayout)
        layout.addLayout(column, 1)
        return caption, picture

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addStretch(1)
        self.use_button = QPushButton("Use in Classify", self)
        self.use_button.setObjectName("use_in_classify_button")
        self.use_button.setToolTip("Open the trained classifier in the Classify tab")
        self.use_button.clicked.connect(
            lambda: self.use_in_classify_requested.emit(self.report.get("name", "")))
        self.chat_button = QPushButton("Chat with it", self)
        self.chat_button.setObjectName("chat_with_it_button")
        self.chat_button.setToolTip("Choose the fine-tuned model in the window's model picker")
        self.chat_button.clicked.connect(
            lambda: self.chat_requested.emit(self.report.get("name", "")))
        row.addWidget(self.use_button)
        row.addWidget(self.chat_button)
        return row

    def clear(self) -> None:
        self.report = {}
        self.title.setText("")
        for table in (self.metrics, self.methods, self.per_label):
            table.setRowCount(0)
        self.significance.setText("")
        self.before_confusion.set_matrix([], [])
        self.after_confusion.set_matrix([], [])
        self.pictures.hide()
        self.per_label.hide()
        self.use_button.hide()
        self.chat_button.hide()

    def show_report(self, report: Mapping[str, Any]) -> None:
        """Fill the card from the ``finished`` event's report."""
        self.clear()
        self.report = dict(report)
        before = dict(report.get("zero_shot_test") or {})
        after = dict(report.get("test") or {})
        method = str(report.get("method") or "?")
        kind = str(report.get("kind") or "classifier")
        seconds = report.get("seconds")
        took = f" in {seconds / 60:.1f} min" if isinstance(seconds, (int, float)) else ""
        self.title.setText(f"Trained {kind} “{report.get('name', '')}” with the method "
                           f"{method}{took}.")
        self.metrics.setHorizontalHeaderLabels(["Test", "Before (zero-shot)", f"After ({method})"])
        fill_table(self.metrics, [[label, _number(before.get(key)), _number(after.get(key))]
                                  for key, label in METRICS if key in before or key in after])
        self._show_methods(report.get("methods") or {}, method, report.get("skipped") or {})
        notes = [str(note) for note in report.get("notes") or []]
        self.significance.setText("\n".join(
            [significance_text(report.get("mcnemar") or {}), *notes]).strip())
        self._show_labels(before, after, method)
        self.use_button.setVisible(kind == "classifier")
        self.chat_button.setVisible(kind == "model")

    def _show_methods(self, methods: Mapping[str, Any], chosen: str,
                      skipped: Mapping[str, Any]) -> None:
        """One row per method tried, then one per method skipped (its reason as tooltip)."""
        rows = []
        for name, values in methods.items():
            values = values if isinstance(values, Mapping) else {}
            mark = " ✓" if name == chosen else ""
            rows.append([f"{name}{mark}", _number(values.get("accuracy")),
                         _number(values.get("macro_f1"))])
        tried = len(rows)
        rows += [[f"{name} (skipped)", "—", "—"] for name in skipped]
        fill_table(self.methods, rows)
        for row, reason in enumerate(skipped.values(), tried):
            item = self.methods.item(row, 0)
            if item is not None:
                item.setToolTip(str(reason))

    def _show_labels(self, before: Mapping[str, Any], after: Mapping[str, Any],
                     method: str) -> None:
        """Both confusion pictures when the report has them, else per-label F1."""
        labels = list(after.get("labels") or before.get("labels") or [])
        if not labels:
            return
        if before.get("confusion") and after.get("confusion"):
            self.before_caption.setText("Before: zero-shot")
            self.after_caption.setText(f"After: {method}")
            self.before_confusion.set_matrix(labels, before["confusion"])
            self.after_confusion.set_matrix(labels, after["confusion"])
            self.pictures.show()
            return
        f1_before = before.get("per_label") or {}
        f1_after = after.get("per_label") or {}
        fill_table(self.per_label, [
            [label, _number((f1_before.get(label) or {}).get("f1")),
             _number((f1_after.get(label) or {}).get("f1"))] for label in labels])
        self.per_label.show()
