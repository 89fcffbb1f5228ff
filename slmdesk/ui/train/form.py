"""The Train view's form: data set, name to save as, base model, method, and the
hyper-parameters behind "Advanced" (each left at the command's default unless set); without
a trainer for LoRA, a note under the method says how to get one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.store.datasets import Dataset
from slmdesk.store.models import ModelRecord
from slmdesk.ui.common.tab_frame import line_edit
from slmdesk.ui.train.command import CHAT_METHODS, METHODS, TrainOptions

METHOD_TIPS = {
    "auto": "Try prompt and head (the head unless a prompt beats it on validation by more "
            "than chance), then LoRA when the data and the time allow (kept when best on "
            "validation)",
    "prompt": "Search instructions, label words, calibration and examples (minutes)",
    "head": "A linear classifier on the model's own features (seconds to minutes)",
    "lora": "Fine-tune the model with a LoRA adapter (the slowest, often the best)",
}


def default_spin(parent: QWidget, name: str, maximum: int, default_text: str,
                 tip: str) -> QSpinBox:
    """A spin box whose lowest value (0) means "the command's default" and says so."""
    spin = QSpinBox(parent)
    spin.setObjectName(name)
    spin.setRange(0, maximum)
    spin.setSpecialValueText(default_text)
    spin.setToolTip(tip)
    return spin


class TrainForm(QWidget):
    """The choices of one training run; ``options()`` turns them into ``TrainOptions``."""

    def __init__(self, datasets: Sequence[Dataset], models: Sequence[ModelRecord],
                 parent: QWidget | None = None, *, lora_unavailable: str | None = None) -> None:
        super().__init__(parent)
        self.datasets = {d.name: d for d in datasets}
        # Why LoRA cannot run here (no trainer add-on / packages), shown under the method.
        self.lora_unavailable = lora_unavailable
        self._suggested_name = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.dataset_box = QComboBox(self)
        self.dataset_box.setObjectName("train_dataset")
        for d in datasets:
            self.dataset_box.addItem(f"{d.name} ({'chat' if d.kind == 'chat' else 'labels'})",
                                     d.name)
        form.addRow("Data set:", self.dataset_box)
        self.name_edit = line_edit(self, "train_name",
                                   tip="The name the trained classifier or model is saved as")
        form.addRow("Save as:", self.name_edit)
        self.model_box = QComboBox(self)
        self.model_box.setObjectName("train_model")
        for m in models:
            self.model_box.addItem(m.name, m.name)
        form.addRow("Base model:", self.model_box)
        self.method_box = QComboBox(self)
        self.method_box.setObjectName("train_method")
        form.addRow("Method:", self.method_box)
        layout.addLayout(form)
        self.trainer_note = QLabel(lora_unavailable or "", self)
        self.trainer_note.setObjectName("train_trainer_note")
        self.trainer_note.setWordWrap(True)
        self.trainer_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.trainer_note.setVisible(bool(lora_unavailable))
        layout.addWidget(self.trainer_note)
        layout.addWidget(self._build_advanced())
        self.dataset_box.currentIndexChanged.connect(lambda _i: self._dataset_changed())
        self._dataset_changed()

    def _build_advanced(self) -> QWidget:
        box = QWidget(self)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.advanced_button = QToolButton(box)
        self.advanced_button.setObjectName("train_advanced_button")
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        column.addWidget(self.advanced_button)
        self.advanced = QWidget(box)
        form = QFormLayout(self.advanced)
        form.setContentsMargins(12, 0, 0, 0)
        self.epochs = default_spin(self.advanced, "train_epochs", 100, "default",
                                   "LoRA epochs over the train split")
        self.max_minutes = default_spin(self.advanced, "train_max_minutes", 24 * 60,
                                        "default (30)", "The time budget of the whole run")
        self.threads = default_spin(self.advanced, "train_threads", 256, "auto",
                                    "CPU threads (auto: the physical cores)")
        form.addRow("Epochs:", self.epochs)
        form.addRow("Max minutes:", self.max_minutes)
        form.addRow("Threads:", self.threads)
        column.addWidget(self.advanced)
        self.advanced.hide()
        self.advanced_button.toggled.connect(self.advanced.setVisible)
        return box

    def select(self, dataset: str | None, model: str | None) -> None:
        """Preselect a data set and a base model (by name), where they are listed."""
        for box, name in ((self.dataset_box, dataset), (self.model_box, model)):
            at = box.findData(name) if name else -1
            if at >= 0:
                box.setCurrentIndex(at)

    def _dataset_changed(self) -> None:
        name = self.dataset_box.currentData()
        dataset = self.datasets.get(name) if name else None
        methods = CHAT_METHODS if dataset is not None and dataset.kind == "chat" else METHODS
        current = self.method_box.currentData()
        self.method_box.clear()
        for method in methods:
            self.method_box.addItem(method, method)
            at = self.method_box.count() - 1
            self.method_box.setItemData(at, METHOD_TIPS[method], Qt.ItemDataRole.ToolTipRole)
            if method == "lora" and self.lora_unavailable:
                self._disable_method(at)
        self.method_box.setCurrentIndex(max(0, self.method_box.findData(current)))
        # The suggested name follows the data set until the person types their own.
        if self.name_edit.text() in ("", self._suggested_name) and name:
            self._suggested_name = f"{name}-trained"
            self.name_edit.setText(self._suggested_name)

    def _disable_method(self, at: int) -> None:
        """Grey out the method at ``at`` (LoRA without a trainer; the note says why)."""
        item = cast(QStandardItemModel, self.method_box.model()).item(at)
        item.setEnabled(False)
        item.setToolTip(f"{METHOD_TIPS['lora']}. Not available: {self.lora_unavailable}")

    def options(self, *, resume: bool = False) -> TrainOptions | None:
        """The run as chosen, or None while no data set or name is given."""
        dataset, name = self.dataset_box.currentData(), self.name_edit.text().strip()
        if not dataset or not name:
            return None
        return TrainOptions(
            name=name, dataset=str(dataset), model=self.model_box.currentData() or None,
            method=str(self.method_box.currentData() or "auto"),
            epochs=self.epochs.value() or None, max_minutes=self.max_minutes.value() or None,
            threads=self.threads.value() or None, resume=resume)
