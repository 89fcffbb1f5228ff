"""The Data sets tab's list of data sets: open, create, rename and delete them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QInputDialog,
    QLabel,
    QListView,
    QMessageBox,
    QWidget,
)

from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import Dataset
from slmdesk.ui.common.flow_layout import FlowLayout
from slmdesk.ui.common.tab_frame import pane_column, tool_button
from slmdesk.ui.datasets.dialogs import NewDatasetDialog
from slmdesk.ui.datasets.table_models import DatasetListModel

if TYPE_CHECKING:
    from slmdesk.ui.datasets.view import DatasetsView


class DatasetList:
    """The Data sets tab's list of data sets: open, create, rename and delete them."""

    def __init__(self, view: DatasetsView) -> None:
        self.view = view

    def build(self, parent: QWidget) -> QWidget:
        """The tab's first column: the list of data sets and its buttons."""
        box, layout = pane_column(parent, (0, 0, 6, 0))
        layout.addWidget(QLabel("<b>Data sets</b>", box))
        self.list_model = DatasetListModel(self.view)
        self.list_view = QListView(box)
        self.list_view.setObjectName("datasets_list")
        self.list_view.setModel(self.list_model)
        self.list_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list_view.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self._on_list_current(cur))
        layout.addWidget(self.list_view, 1)
        # Wraps in a narrow pane: four buttons in one row widened the list at 800×600 and
        # squeezed the examples' Text column.
        row = FlowLayout()
        self.new_button = tool_button(
            "New…", "Create a data set of labelled texts or chat examples", box,
            clicked=self.new_dataset_requested)
        self.rename_button = tool_button("Rename…", "", box, clicked=self.rename_requested)
        self.delete_button = tool_button(
            "Delete", "Delete the data set and all its examples", box,
            clicked=self.delete_dataset_requested)
        self.train_button = tool_button(
            "Train…", "Train a classifier or a chat model on this data set", box,
            clicked=self.train_requested)
        for b in (self.new_button, self.rename_button, self.delete_button, self.train_button):
            row.addWidget(b)
        layout.addLayout(row)
        return box

    def update_controls(self, *, have_dataset: bool, busy: bool) -> None:
        """The data set shown is renamed, deleted or trained on; while the model runs on it,
        it stays (no switching, no deleting)."""
        self.rename_button.setEnabled(have_dataset)
        self.delete_button.setEnabled(have_dataset and not busy)
        self.train_button.setEnabled(have_dataset)
        self.list_view.setEnabled(not busy)

    def refresh_datasets(self, select: str | None = None) -> None:
        """Reread the list of data sets; keep (or move to ``select``) the current one."""
        current = select or (self.view.dataset.name if self.view.dataset is not None else None)
        items = [(ds, self.view.datasets.count(ds)) for ds in self.view.datasets.all()]
        self.list_model.set_items(items)
        row = self.list_model.row_of(current) if current else -1
        if row < 0 and items:
            row = 0
        if row >= 0:
            self.list_view.setCurrentIndex(self.list_model.index(row, 0))
            # setCurrentIndex to the same row emits nothing after a reset: load it anyway.
            ds = self.list_model.dataset(row)
            shown = self.view.dataset
            if shown is None or shown.id != ds.id or shown != ds:
                self._open(ds)
            else:
                self.view.reload()
        else:
            self._open(None)

    def _on_list_current(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        ds = self.list_model.dataset(index.row())
        if self.view.dataset is None or ds.id != self.view.dataset.id:
            self._open(ds)

    def select_dataset(self, name: str) -> bool:
        row = self.list_model.row_of(name)
        if row < 0:
            return False
        self.list_view.setCurrentIndex(self.list_model.index(row, 0))
        return True

    def _open(self, ds: Dataset | None) -> None:
        switching = ds is None or self.view.dataset is None or ds.id != self.view.dataset.id
        self.view.dataset = ds
        if switching:
            self.view.filters.reset()
            self.view.report = None
            self.view.model_runs.clear_report()
        self.view.filters.refill(ds)
        self.view.reload()
        self.view.model_runs.refresh_history()
        self.view.update_controls()
        if switching:
            self.view.dataset_changed.emit(ds.name if ds is not None else "")

    def reload_dataset(self) -> None:
        """Reread the current data set's row (its labels may have grown)."""
        if self.view.dataset is not None:
            found = self.view.datasets.find(self.view.dataset.name)
            self.view.dataset = found
            self.view.filters.refill(found)

    def create_dataset(self, name: str, kind: str = "labels",
                       labels: Sequence[str] = ()) -> Dataset | None:
        try:
            ds = self.view.datasets.create(name, kind=kind, labels=list(labels))
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return None
        self.view.clear_error()
        self.refresh_datasets(select=ds.name)
        return ds

    def new_dataset_requested(self) -> None:
        dialog = NewDatasetDialog(self.view)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.name_edit.text().strip():
            self.create_dataset(dialog.name_edit.text(), str(dialog.kind_box.currentData()),
                                dialog.labels())

    def rename_dataset(self, new_name: str) -> bool:
        if self.view.dataset is None:
            return False
        try:
            self.view.datasets.rename_dataset(self.view.dataset, new_name)
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return False
        self.view.clear_error()
        self.view.dataset = None
        self.refresh_datasets(select=" ".join(new_name.split()))
        return True

    def rename_requested(self) -> None:
        if self.view.dataset is None:
            return
        name, ok = QInputDialog.getText(self.view, "Rename data set", "New name:",
                                        text=self.view.dataset.name)
        if ok and name.strip() and name.strip() != self.view.dataset.name:
            self.rename_dataset(name)

    def delete_dataset(self) -> None:
        if self.view.dataset is None:
            return
        ds = self.view.dataset
        try:
            self.view.datasets.delete_dataset(ds)
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return
        self.view.annotator.forget_dataset(ds.id)
        self.view.dataset = None
        self.refresh_datasets()
        self.view.status.setText(f"Deleted “{ds.name}”.")

    def delete_dataset_requested(self) -> None:
        if self.view.dataset is None:
            return
        count = self.view.datasets.count(self.view.dataset)
        answer = QMessageBox.question(
            self.view, "Delete data set",
            f"Delete “{self.view.dataset.name}” and its {count} examples? This cannot be undone.")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_dataset()

    def train_requested(self) -> None:
        if self.view.dataset is not None:
            self.view.train_requested.emit(self.view.dataset.name)

    def refresh_list_counts(self) -> None:
        if self.view.dataset is None:
            return
        row = self.list_model.row_of(self.view.dataset.name)
        if row >= 0:
            items = list(self.list_model.items)
            items[row] = (items[row][0], self.view.datasets.count(self.view.dataset))
            # Same rows, new counts: tell the view without resetting its selection.
            self.list_model.items = items
            index = self.list_model.index(row, 0)
            self.list_model.dataChanged.emit(index, index)
