"""The Data sets tab: annotate examples by keyboard, filter and search them, undo, find
duplicates, pre-label with a model, import, export, split, and evaluate classifiers on the
test split with a history of runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    Signal,
)
from PySide6.QtGui import QShowEvent

from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import Dataset, Example
from slmdesk.ui.common.forwarding import forward_to
from slmdesk.ui.common.model_tab import ModelTab
from slmdesk.ui.common.table_model import percent
from slmdesk.ui.datasets.annotate import Annotator
from slmdesk.ui.datasets.dataset_list import DatasetList
from slmdesk.ui.datasets.filters import ExampleFilters
from slmdesk.ui.datasets.import_export import ImportExport
from slmdesk.ui.datasets.layout import DatasetsLayout
from slmdesk.ui.datasets.model_runs import ModelRuns

if TYPE_CHECKING:
    from PySide6.QtWidgets import (
        QCheckBox,
        QComboBox,
        QDoubleSpinBox,
        QLabel,
        QLineEdit,
        QListView,
        QMenu,
        QPushButton,
        QTableView,
        QToolButton,
    )

    from slmdesk.ui.datasets.labelling_table import LabellingTable
    from slmdesk.ui.datasets.table_models import DatasetListModel, EvalHistoryModel, ExamplesModel

ROW_LIMIT = 20_000  # rows shown at once; filters narrow the rest


class DatasetsView(ModelTab):
    """The Data sets tab. The window calls ``set_model`` whenever the loaded model changes."""

    dataset_changed = Signal(str)  # name ("" when none)
    labelled = Signal(int)  # how many examples one action changed
    run_finished = Signal(str, bool)  # "prelabel" | "evaluate", cancelled (or failed)
    imported = Signal(object)  # ImportResult
    train_requested = Signal(str)  # the data set's name: "open the Train view for it"

    # the widgets, built by the layout part
    list_model: DatasetListModel
    list_view: QListView
    new_button: QToolButton
    rename_button: QToolButton
    delete_dataset_button: QToolButton
    train_button: QToolButton
    split_filter: QComboBox
    source_filter: QComboBox
    unlabelled_box: QCheckBox
    disagreement_box: QCheckBox
    search_box: QLineEdit
    examples: ExamplesModel
    table: LabellingTable
    counts: QLabel
    import_button: QPushButton
    export_button: QPushButton
    split_button: QPushButton
    relabel_button: QToolButton
    relabel_menu: QMenu
    delete_button: QPushButton
    undo_button: QPushButton
    duplicates_button: QPushButton
    near_empty_button: QPushButton
    classifier_box: QComboBox
    prelabel_button: QPushButton
    accept_over_button: QPushButton
    accept_threshold: QDoubleSpinBox
    run_status: QLabel
    save_png_button: QPushButton
    history: EvalHistoryModel
    history_table: QTableView

    layout_parts: DatasetsLayout

    def add_parts(self) -> DatasetsLayout:
        # Its parts, which build their widgets and keep their state; the view joins them.
        self.dataset_list = DatasetList(self)
        self.filters = ExampleFilters(self.datasets, self)
        self.annotator = Annotator(self)
        self.files = ImportExport(self)
        self.model_runs = ModelRuns(self)
        self.dataset: Dataset | None = None
        return DatasetsLayout(self)

    def join_parts(self) -> None:
        self.filters.changed.connect(self.reload)
        self.start_runner(self.progress, self.run_status)
        self.model_runs.follow(self.runner)
        self.model_runs.accept_over_requested.connect(self.annotator.accept_suggestions_over)
        self.model_runs.refresh_classifiers()
        self.dataset_list.refresh_datasets()

    def showEvent(self, event: QShowEvent) -> None:
        # Other tabs add examples (Classify's review) and classifiers: catch up.
        super().showEvent(event)
        if not event.spontaneous():
            self.model_runs.refresh_classifiers()
            self.dataset_list.refresh_datasets()

    # the tab's API, kept by its parts -----------------------------------------------------
    refresh_datasets = forward_to("dataset_list", DatasetList.refresh_datasets)
    select_dataset = forward_to("dataset_list", DatasetList.select_dataset)
    create_dataset = forward_to("dataset_list", DatasetList.create_dataset)
    rename_dataset = forward_to("dataset_list", DatasetList.rename_dataset)
    delete_dataset = forward_to("dataset_list", DatasetList.delete_dataset)
    clear_filters = forward_to("filters", ExampleFilters.clear_filters)
    set_label_filter = forward_to("filters", ExampleFilters.set_label_filter)
    set_split_filter = forward_to("filters", ExampleFilters.set_split_filter)
    set_source_filter = forward_to("filters", ExampleFilters.set_source_filter)
    set_search = forward_to("filters", ExampleFilters.set_search)
    query_kwargs = forward_to("filters", ExampleFilters.query_kwargs)
    set_label_selected = forward_to("annotator", Annotator.set_label_selected)
    accept_suggestions_over = forward_to("annotator", Annotator.accept_suggestions_over)
    delete_selected = forward_to("annotator", Annotator.delete_selected)
    undo = forward_to("annotator", Annotator.undo)
    undo_steps = forward_to("annotator", Annotator.undo_steps)
    select_duplicates = forward_to("files", ImportExport.select_duplicates)
    select_near_empty = forward_to("files", ImportExport.select_near_empty)
    assign_splits = forward_to("files", ImportExport.assign_splits)
    import_dialog = forward_to("files", ImportExport.import_dialog)
    export_to = forward_to("files", ImportExport.export_to)
    refresh_classifiers = forward_to("model_runs", ModelRuns.refresh_classifiers)
    classifier_spec = forward_to("model_runs", ModelRuns.classifier_spec)
    prelabel = forward_to("model_runs", ModelRuns.prelabel)
    evaluate_test_split = forward_to("model_runs", ModelRuns.evaluate_test_split)
    cancel = forward_to("model_runs", ModelRuns.cancel)
    refresh_history = forward_to("model_runs", ModelRuns.refresh_history)
    show_run = forward_to("model_runs", ModelRuns.show_run)
    save_png = forward_to("model_runs", ModelRuns.save_png)

    # the model --------------------------------------------------------------------------
    def model_changed(self) -> None:
        if not self.ready:
            self.model_note.setText(self.not_ready_text() if self.choice.remote is not None
                                    else "No model is ready.")
        else:
            self.model_note.setText(f"Model: {self.choice.name}")

    # the table ------------------------------------------------------------------------
    def reload(self, select_ids: Sequence[str] | None = None) -> None:
        """Run the current query again; keep the selection (or select ``select_ids``)."""
        keep = list(select_ids) if select_ids is not None else [
            e.id for e in self.selected_examples()]
        current = self._current_example()
        self.model_runs.flush_suggestions()  # so that the rows read back carry them
        if self.dataset is None:
            self.examples.clear()
            self.filters.update_counts(None, 0, 0)
            return
        try:
            rows = self.datasets.query(self.dataset, limit=ROW_LIMIT, **self.filters.query_kwargs())
        except UserFacingError as exc:
            # e.g. a search the full-text index cannot parse: say so, show nothing
            self.show_error(exc.message)
            rows = []
        self.examples.set_rows(rows, self.dataset.labels)
        matched = (self.datasets.query_count(self.dataset, **self.filters.query_kwargs())
                   if len(rows) >= ROW_LIMIT else len(rows))
        current_id = keep[0] if select_ids is not None and keep else (
            current.id if current is not None else None)
        self.select_ids(keep, current_id=current_id)
        self.filters.update_counts(self.dataset, self.examples.rowCount(), matched)
        self.update_controls()

    def select_ids(self, ids: Sequence[str], *, current_id: str | None = None) -> int:
        """Select the rows of these examples (those shown); returns how many."""
        rows = sorted(r for r in (self.examples.row_of(i) for i in ids) if r >= 0)
        sel = self.table.selectionModel()
        selection = QItemSelection()
        last = self.examples.columnCount() - 1
        for r in rows:
            selection.select(self.examples.index(r, 0), self.examples.index(r, last))
        flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect
                 | QItemSelectionModel.SelectionFlag.Rows)
        cur_row = self.examples.row_of(current_id) if current_id else -1
        if cur_row < 0 and rows:
            cur_row = rows[0]
        if cur_row >= 0:
            sel.setCurrentIndex(self.examples.index(cur_row, 0),
                                QItemSelectionModel.SelectionFlag.NoUpdate)
        sel.select(selection, flags)
        if rows:
            self.table.scrollTo(self.examples.index(cur_row, 0))
        return len(rows)

    def select_row(self, row: int) -> None:
        """Make ``row`` the current and only selected row."""
        if 0 <= row < self.examples.rowCount():
            self.table.selectionModel().setCurrentIndex(
                self.examples.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
            self.table.scrollTo(self.examples.index(row, 0))

    def _current_example(self) -> Example | None:
        index = self.table.currentIndex()
        if index.isValid() and 0 <= index.row() < self.examples.rowCount():
            return self.examples.example(index.row())
        return None

    def selected_rows(self) -> list[int]:
        rows = {i.row() for i in self.table.selectionModel().selectedRows()}
        if not rows and self.table.currentIndex().isValid():
            rows = {self.table.currentIndex().row()}
        return sorted(r for r in rows if 0 <= r < self.examples.rowCount())

    def selected_examples(self) -> list[Example]:
        return [self.examples.example(r) for r in self.selected_rows()]

    def shown_examples(self) -> list[Example]:
        return list(self.examples.rows)

    def _show_details(self) -> None:
        ex = self._current_example()
        if ex is None:
            self.details_title.setText("Select an example to see it whole.")
            self.details_text.clear()
            return
        bits = [f"Label: {ex.label or '—'}"]
        if ex.model_label is not None:
            bits.append(f"model: {ex.model_label} ({percent(ex.model_confidence)})")
        if ex.split:
            bits.append(f"split: {ex.split}")
        bits.append(f"source: {ex.source}")
        if ex.rating is not None:
            bits.append(f"rating: {ex.rating}")
        self.details_title.setText(" · ".join(bits))
        if ex.messages is not None:
            body = "\n\n".join(f"{str(m.get('role', '?')).upper()}\n{m.get('content', '')}"
                               for m in ex.messages)
        else:
            body = ex.text or ""
        if ex.notes:
            body += f"\n\n— Notes —\n{ex.notes}"
        if self.details_text.toPlainText() != body:
            self.details_text.setPlainText(body)

    def update_controls(self) -> None:
        ds = self.dataset
        have = ds is not None
        labels = have and ds is not None and ds.kind == "labels"
        busy = self.runner.busy
        selected = bool(self.selected_rows())
        self.rename_button.setEnabled(have)
        self.delete_dataset_button.setEnabled(have and not busy)
        self.train_button.setEnabled(have)
        self.export_button.setEnabled(have)
        self.split_button.setEnabled(have and not busy)
        # Labelling goes on while the model works; only the data set stays put.
        self.relabel_button.setEnabled(labels and selected)
        self.delete_button.setEnabled(selected)
        steps = self.annotator.undo_steps()
        self.undo_button.setEnabled(bool(steps))
        self.undo_button.setToolTip(f"Undo: {steps[-1].what} (Ctrl+Z)" if steps
                                    else "Nothing to undo")
        self.duplicates_button.setEnabled(have)
        self.near_empty_button.setEnabled(have)
        ready = self.ready
        self.prelabel_button.setEnabled(labels and ready and not busy)
        self.evaluate_button.setEnabled(labels and ready and not busy)
        self.cancel_button.setEnabled(busy and not self.runner.cancelling)
        self.accept_over_button.setEnabled(labels and not busy)
        self.classifier_box.setEnabled(not busy)
        self.save_png_button.setEnabled(bool(self.confusion.labels))
        self.list_view.setEnabled(not busy)


