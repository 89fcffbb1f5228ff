"""The Data sets tab's widgets, laid out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import (
    Qt,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.common.column_fit import ColumnFitter
from slmdesk.ui.common.flow_layout import FlowLayout
from slmdesk.ui.common.labels import ElidedLabel
from slmdesk.ui.common.tab_frame import (
    ResponsiveSplitter,
    fixed_splitter,
    pane_column,
    scrolling_pane,
    text_label,
)
from slmdesk.ui.datasets.labelling_table import LabellingTable
from slmdesk.ui.datasets.table_models import (
    LABEL_COLUMN,
    SOURCE_COLUMN,
    SPLIT_COLUMN,
    SUGGESTION_COLUMN,
    TEXT_COLUMN,
    ExamplesModel,
    SuggestionBarDelegate,
)

if TYPE_CHECKING:
    from slmdesk.ui.datasets.view import DatasetsView


DETAILS_SHARE = 0.25  # of the examples' width, the most the example's details keep
DETAILS_MIN_WIDTH = 130  # px

# the widgets of the runs pane, kept by ModelRuns, that every ModelTab shows as its own
RUN_WIDGETS = ("evaluate_button", "cancel_button", "progress", "model_note", "tabs",
               "report_panel", "eval_summary", "per_label", "confusion")


class DatasetsLayout:
    """The Data sets tab's widgets, laid out."""

    def __init__(self, view: DatasetsView) -> None:
        self.view = view

    def build(self) -> None:
        view = self.view
        examples = self._build_examples(view)
        runs = view.model_runs
        # The runs pane scrolls in a short window, so the examples keep their rows.
        runs_pane = scrolling_pane(view, runs.build(view), 0)
        right = fixed_splitter(Qt.Orientation.Vertical, view, [examples, runs_pane],
                               [640, 160], (4, 1))
        for name in RUN_WIDGETS:
            setattr(view, name, getattr(runs, name))
        view.lay_out_frame("datasets", [view.dataset_list.build(view), right], [220, 980], 0.24)

    def _build_examples(self, parent: QWidget) -> QWidget:
        page, layout = pane_column(parent)
        view, filters = self.view, self.view.filters
        layout.addLayout(filters.build_row(page))
        view.label_filter = filters.label_filter

        # Side by side even when narrow (under the table, the details would cost its rows),
        # the details taking at most a quarter: with a third, the Text column was ~90 px
        # at 800×600.
        split = ResponsiveSplitter(page, capped=1, share=DETAILS_SHARE)
        split.setObjectName("examples_splitter")
        split.setChildrenCollapsible(False)
        self.view.examples = ExamplesModel(self.view)
        self.view.table = LabellingTable(split)
        self.view.table.setObjectName("examples_table")
        self.view.table.setModel(self.view.examples)
        self.view.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.table.setWordWrap(False)
        self.view.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.table.setItemDelegateForColumn(
            SUGGESTION_COLUMN, SuggestionBarDelegate(self.view.table))
        self.view.table.horizontalHeader().setMinimumSectionSize(40)
        # The text stretches; the label and the others take their contents' width, capped.
        self.view.column_fitter = ColumnFitter(self.view.table, TEXT_COLUMN, {
            LABEL_COLUMN: 160, SUGGESTION_COLUMN: 180, SPLIT_COLUMN: 90, SOURCE_COLUMN: 110},
            min_widths={LABEL_COLUMN: 90, SUGGESTION_COLUMN: 100})
        self.view.table.verticalHeader().setDefaultSectionSize(26)
        self.view.table.setToolTip("1–9: label · 0: clear · A: accept the suggestion · "
                              "Delete: delete · Ctrl+Z: undo")
        self.view.table.label_key_pressed.connect(self.view.annotator.label_key)
        self.view.table.accept_key_pressed.connect(self.view.annotator.accept_selected_suggestions)
        self.view.table.delete_key_pressed.connect(self.view.annotator.delete_selected)
        self.view.table.undo_key_pressed.connect(self.view.annotator.undo)
        self.view.table.selectionModel().currentRowChanged.connect(
            lambda _cur, _prev: self.view._show_details())
        self.view.table.selectionModel().selectionChanged.connect(
            lambda _s, _d: self.view.update_controls())
        self.view.examples.modelReset.connect(self.view._show_details)
        self.view.examples.dataChanged.connect(lambda *_a: self.view._show_details())
        split.addWidget(self.view.table)
        split.addWidget(self._build_details(split))
        split.setStretchFactor(0, 1)
        split.setSizes([760, 220])
        layout.addWidget(split, 1)

        layout.addWidget(filters.build_counts(page))

        actions = FlowLayout()  # wraps at narrow widths instead of widening the window
        view.files.add_file_buttons(actions, page)
        view.annotator.add_buttons(actions, page)
        view.files.add_check_buttons(actions, page)
        self.view.status = ElidedLabel("", page)
        self.view.status.setObjectName("datasets_status")
        actions.addWidget(self.view.status)
        layout.addLayout(actions)
        return page

    def _build_details(self, parent: QWidget) -> QWidget:
        pane = QWidget(parent)
        pane.setMinimumWidth(DETAILS_MIN_WIDTH)
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(6, 0, 0, 0)
        self.view.details_title = text_label(pane, "details_title")
        self.view.details_title.setText("Select an example to see it whole.")
        layout.addWidget(self.view.details_title)
        self.view.details_text = QPlainTextEdit(pane)
        self.view.details_text.setObjectName("details_text")
        self.view.details_text.setReadOnly(True)
        layout.addWidget(self.view.details_text, 1)
        return pane
