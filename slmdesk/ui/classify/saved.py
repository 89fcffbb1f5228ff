"""The Classify tab's saved classifiers, and examples taken from a data set."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from slmdesk.classify.spec import ClassifierSpec
from slmdesk.errors import UserFacingError
from slmdesk.store.classifiers import SavedClassifier
from slmdesk.store.models import ModelRecord
from slmdesk.ui.classify.setup import EXAMPLES_FROM_DATASET
from slmdesk.ui.common.tab_frame import note_style, text_label, tool_button

if TYPE_CHECKING:
    from slmdesk.ui.classify.view import ClassifyView


class SavedClassifiers:
    """Save, open and delete classifiers by name; say which model a saved one was made
    with; fill the examples table from a labelled data set."""

    def __init__(self, view: ClassifyView) -> None:
        self.view = view

    def build(self, parent: QWidget, layout: QVBoxLayout) -> None:
        """Add its controls to the setup column: Save and Delete, the saved classifiers,
        and the note on the model one was saved with."""
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Classifier</b>", parent))
        row.addStretch(1)
        self.save_button = tool_button(
            "Save…", "Save this classifier (with the loaded model) by name", parent,
            clicked=self.save_requested)
        self.delete_button = tool_button("Delete", "Delete the selected saved classifier",
                                         parent, clicked=self.delete_requested)
        row.addWidget(self.save_button)
        row.addWidget(self.delete_button)
        layout.addLayout(row)
        self.box = QComboBox(parent)
        self.box.setObjectName("saved_classifiers")
        self.box.setPlaceholderText("Open a saved classifier…")
        self.box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.box.setMinimumContentsLength(8)
        self.box.setToolTip("Pick a saved classifier to load its labels, instructions, "
                            "examples and options")
        self.box.activated.connect(lambda i: self.load_classifier(str(self.box.itemData(i))))
        layout.addWidget(self.box)
        hint = QHBoxLayout()
        self.model_note = text_label(parent, "saved_model_note", style=note_style())
        self.use_model_button = QPushButton("Load that model", parent)
        self.use_model_button.clicked.connect(self.request_saved_model)
        hint.addWidget(self.model_note, 1)
        hint.addWidget(self.use_model_button)
        self.model_note.hide()
        self.use_model_button.hide()
        layout.addLayout(hint)

    def update_model_notes(self) -> None:
        if not self.view.ready:
            self.view.model_note.setText(
                self.view.not_ready_text() if self.view.choice.remote is not None
                else "No model is ready: pick one in the model list above.")
        else:
            self.view.model_note.setText(f"Classifying with {self.view.choice.name}.")
        saved, choice = self.view.saved_model_id, self.view.choice
        if saved is None or (choice.loaded is not None and saved == choice.model_id):
            self.model_note.hide()
            self.use_model_button.hide()
            return
        record = self._model_record(saved)
        if record is None:
            self.model_note.setText(
                "This classifier was saved with a model that is no longer in the library; "
                "it runs with the loaded one.")
            self.use_model_button.hide()
        else:
            self.model_note.setText(
                f"This classifier was saved with {record.name}; it runs with the model "
                "that is loaded.")
            self.use_model_button.show()
        self.model_note.show()

    def _model_record(self, model_id: str) -> ModelRecord | None:
        for record in self.view.models.list():
            if record.id == model_id:
                return record
        return None

    def request_saved_model(self) -> None:
        if self.view.saved_model_id is not None:
            self.view.model_requested.emit(self.view.saved_model_id)

    def refresh_saved(self) -> None:
        self.box.clear()
        for saved in self.view.classifiers.list():
            self.box.addItem(saved.name, saved.name)
            record = self._model_record(saved.model_id) if saved.model_id else None
            labels = ", ".join(str(lab.get("name", "")) for lab in
                               saved.spec.get("labels", []) if isinstance(lab, dict))
            tip = f"{labels}\nmodel: {record.name if record else 'any'}"
            self.box.setItemData(self.box.count() - 1, tip,
                                       Qt.ItemDataRole.ToolTipRole)
        name = self.view.classifier_name
        at = self.box.findData(name) if name else -1
        self.box.setCurrentIndex(at)
        self.delete_button.setEnabled(self.box.count() > 0)

    def save_classifier(self, name: str) -> bool:
        spec = self.view.build_spec()
        if spec is None:
            return False
        model_id = self.view.choice.model_id
        try:
            saved = self.view.classifiers.save(name, spec.to_json(), model_id=model_id)
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return False
        self._now_open(saved, "Saved")
        return True

    def save_requested(self) -> None:
        if self.view.build_spec() is None:
            return
        name, ok = QInputDialog.getText(self.view, "Save classifier", "Name:",
                                        text=self.view.classifier_name or "")
        if ok and name.strip():
            existing = self.view.classifiers.find(name)
            if existing is not None and existing.name != self.view.classifier_name:
                answer = QMessageBox.question(
                    self.view, "Save classifier",
                    f"Replace the saved classifier “{existing.name}”?")
                if answer != QMessageBox.StandardButton.Yes:
                    return
            self.save_classifier(name)

    def load_classifier(self, name: str) -> bool:
        try:
            saved = self.view.classifiers.get(name)
            spec = ClassifierSpec.from_json(saved.spec)
        except UserFacingError as exc:
            self.view.show_error(f"Cannot open the classifier “{name}”: {exc.message}")
            self.refresh_saved()
            return False
        self.view.setup.load_spec(spec)
        self._now_open(saved, "Opened")
        return True

    def _now_open(self, saved: SavedClassifier, done: str) -> None:
        """``saved`` is the classifier being edited now: list it as the current one."""
        self.view.clear_error()
        self.view.classifier_name = saved.name
        self.view.saved_model_id = saved.model_id
        self.refresh_saved()
        self.update_model_notes()
        self.view.status.setText(f"{done} “{saved.name}”.")

    def delete_classifier(self, name: str) -> None:
        try:
            self.view.classifiers.delete(name)
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return
        if self.view.classifier_name is not None and self.view.classifier_name.casefold() == \
                name.casefold():
            self.view.classifier_name = None
            self.view.saved_model_id = None
            self.update_model_notes()
        self.refresh_saved()

    def delete_requested(self) -> None:
        name = self.box.currentData()
        if not name:
            self.view.show_error("Pick the saved classifier to delete in the list first.",
                                 until=self.box.currentIndexChanged)
            return
        answer = QMessageBox.question(self.view, "Delete classifier",
                                      f"Delete the saved classifier “{name}”?")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_classifier(str(name))

    def fill_dataset_menu(self) -> None:
        menu = self.view.setup.dataset_menu
        menu.clear()
        sets = [d for d in self.view.datasets.all() if d.kind == "labels"]
        if not sets:
            action = menu.addAction("No labelled data sets yet")
            action.setEnabled(False)
        for ds in sets:
            menu.addAction(f"{ds.name} ({self.view.datasets.count(ds)})",
                           partial(self.add_examples_from, ds.name))

    def add_examples_from(self, dataset_name: str,
                          per_label: int = EXAMPLES_FROM_DATASET) -> int:
        """Add up to ``per_label`` examples of each defined label; returns how many."""
        try:
            ds = self.view.datasets.get(dataset_name)
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return 0
        names = self.view.setup.label_names()
        if not names:
            self.view.show_error("Define the labels first; examples are picked for each label.",
                                 until=self.view.setup.labels_changed)
            return 0
        have = {(self.view.setup.examples_table.item(r, 0) or QTableWidgetItem()).text()
                for r in range(self.view.setup.examples_table.rowCount())}
        taken: dict[str, int] = dict.fromkeys(names, 0)
        added = 0
        for example in self.view.datasets.examples(ds):
            if (example.text and example.label in taken and example.text not in have
                    and taken[example.label] < per_label):
                self.view.setup.add_example_row(example.text, example.label)
                taken[example.label] += 1
                have.add(example.text)
                added += 1
        if not added:
            self.view.show_error(f"“{ds.name}” has no new examples for these labels.")
        return added
