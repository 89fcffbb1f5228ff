"""The small dialogs of the Data sets tab: a new data set, splits, and export options."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from slmdesk.datasets import formats
from slmdesk.store.datasets import SPLITS


def add_ok_cancel(dialog: QDialog, form: QFormLayout) -> None:
    """OK and Cancel buttons at the foot of ``form``, accepting or rejecting ``dialog``."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel, dialog)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form.addRow(buttons)


class NewDatasetDialog(QDialog):
    """Name, kind and labels of a new data set."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New data set")
        form = QFormLayout(self)
        self.name_edit = QLineEdit(self)
        form.addRow("Name:", self.name_edit)
        self.kind_box = QComboBox(self)
        self.kind_box.addItem("Labelled texts", "labels")
        self.kind_box.addItem("Chat examples", "chat")
        form.addRow("Holds:", self.kind_box)
        self.labels_edit = QLineEdit(self)
        self.labels_edit.setPlaceholderText("positive, negative")
        self.kind_box.currentIndexChanged.connect(
            lambda _i: self.labels_edit.setEnabled(self.kind_box.currentData() == "labels"))
        form.addRow("Labels:", self.labels_edit)
        add_ok_cancel(self, form)

    def labels(self) -> list[str]:
        return [lab.strip() for lab in self.labels_edit.text().split(",") if lab.strip()]


class SplitDialog(QDialog):
    """Fractions, seed and whether to redo existing splits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Assign splits")
        form = QFormLayout(self)
        self.parts: list[QSpinBox] = []
        for name, value in zip(SPLITS, (80, 10, 10), strict=True):
            box = QSpinBox(self)
            box.setRange(0, 100)
            box.setSuffix(" %")
            box.setValue(value)
            self.parts.append(box)
            form.addRow(f"{name}:", box)
        self.seed = QSpinBox(self)
        self.seed.setRange(0, 1_000_000)
        self.seed.setToolTip("The same seed gives the same splits")
        form.addRow("Seed:", self.seed)
        self.overwrite = QCheckBox("Redo examples that already have a split", self)
        form.addRow(self.overwrite)
        add_ok_cancel(self, form)

    def fractions(self) -> tuple[float, float, float]:
        a, b, c = (box.value() for box in self.parts)
        total = (a + b + c) or 1
        return (a / total, b / total, c / total)


class ExportDialog(QDialog):
    """Format, split and whether a data card goes with the export."""

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export data set")
        form = QFormLayout(self)
        self.format_box = QComboBox(self)
        for fmt in formats.FORMATS:
            self.format_box.addItem(fmt, fmt)
        preferred = "openai" if kind == "chat" else "jsonl"
        self.format_box.setCurrentIndex(max(self.format_box.findData(preferred), 0))
        form.addRow("Format:", self.format_box)
        self.split_box = QComboBox(self)
        self.split_box.addItem("All examples", "all")
        for name in SPLITS:
            self.split_box.addItem(f"{name} split", name)
        form.addRow("Examples:", self.split_box)
        self.unlabelled = QCheckBox("Include unlabelled texts (JSONL, CSV)", self)
        self.unlabelled.setEnabled(kind == "labels")
        form.addRow(self.unlabelled)
        self.card = QCheckBox("Also write a data card (.md) next to it", self)
        self.card.setChecked(True)
        form.addRow(self.card)
        add_ok_cancel(self, form)
