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
from slmdesk.ui.common.model_tab import ModelTab
from slmdesk.ui.common.table_model import percent
from slmdesk.ui.datasets.annotate import Annotator
from slmdesk.ui.datasets.dataset_list import DatasetList
from slmdesk.ui.datasets.filters import ExampleFilters
from slmdesk.ui.datasets.import_export import ImportExport
from slmdesk.ui.datasets.layout import DatasetsLayout
from slmdesk.ui.datasets.model_runs import ModelRuns

if TYPE_CHECKING:
    from slmdesk.ui.datasets.labelling_table import LabellingTable
    from slmdesk.ui.datasets.table_models import ExamplesModel

ROW_LIMIT = 20_000  # rows shown at once; filters narrow the rest


class DatasetsView(ModelTab):
    """The Data sets tab. The window calls ``set_model`` whenever its model changes."""

    dataset_changed = Signal(str)  # name ("" when none)
    labelled = Signal(int)  # how many examples one action changed
    run_finished = Signal(str, bool)  # "prelabel" | "evaluate", cancelled (or failed)
    imported = Signal(object)  # ImportResult
    train_requested = Signal(str)  # the data set's name: "open the Train view for it"

    # the widgets, built by the layout part
    examples: ExamplesModel
    table: LabellingTable

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
        self.start_runner(self.progress, self.model_runs.run_status)
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
        # Labelling goes on while the model works; only the data set stays put.
        self.dataset_list.update_controls(have_dataset=have, busy=busy)
        self.files.update_controls(have_dataset=have, busy=busy)
        self.annotator.update_controls(labels=labels, selected=selected)
        self.model_runs.update_controls(labels=labels, ready=self.ready, busy=busy)


