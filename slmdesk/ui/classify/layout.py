"""The Classify tab's widgets, laid out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QPlainTextEdit,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QWidget,
)

from slmdesk.ui.classify.room import DetailsPlacement, FoldingInput
from slmdesk.ui.classify.setup import SetupPanel
from slmdesk.ui.classify.table_models import (
    CONFIDENCE_COLUMN,
    EXPECTED_COLUMN,
    LABEL_COLUMN,
    PROBS_COLUMN,
    REVIEWED_COLUMN,
    TEXT_COLUMN,
    ResultsFilter,
    ResultsModel,
)
from slmdesk.ui.common.column_fit import ColumnFitter
from slmdesk.ui.common.flow_layout import FlowLayout, captioned
from slmdesk.ui.common.labels import ElidedLabel
from slmdesk.ui.common.metrics import ReportPanel
from slmdesk.ui.common.probability_bars import ProbabilityBarsDelegate, ProbabilityChart
from slmdesk.ui.common.tab_frame import (
    QUIET_STYLE,
    cancel_and_progress,
    fixed_splitter,
    note_style,
    pane_column,
    percent_box,
    push_button,
    scrolling_pane,
    text_label,
)

if TYPE_CHECKING:
    from slmdesk.ui.classify.view import ClassifyView


SETUP_MIN_WIDTH = 250


class ClassifyLayout:
    """Builds the setup column, the texts, the results with their details, and the
    evaluation, as widgets of the view."""

    def __init__(self, view: ClassifyView) -> None:
        self.view = view

    def build(self) -> None:
        view = self.view
        setup = self._build_setup()
        texts = self._build_input(view)
        view.tabs = QTabWidget(view)
        view.tabs.setDocumentMode(True)
        results = self._build_results(view.tabs)
        view.tabs.addTab(results, "Results")
        view.tabs.addTab(self._build_evaluation(view.tabs), "Evaluation")
        right = fixed_splitter(Qt.Orientation.Vertical, view,
                               [texts, view.tabs], [190, 540])
        right.setObjectName("texts_results_splitter")
        view.lay_out_frame("classify", [setup, right], [380, 820])
        # In a small window the texts fold away while results arrive, and the details of a
        # row leave the table's side for a tab of their own.
        inp = view.text_input
        view.input_fold = FoldingInput(right, texts, [inp.texts, inp.whole_box], inp.fold_button)
        inp.texts.textChanged.connect(view.input_fold.unfold)
        view.details_place = DetailsPlacement(results, self.results_split, self.details,
                                              view.tabs)
        view.table.activated.connect(lambda _index: view.details_place.show_details())

    def _build_setup(self) -> QWidget:
        view = self.view
        inner, layout = pane_column(view, (0, 0, 6, 0))
        view.saved.build(inner, layout)
        view.setup = SetupPanel(inner)
        view.setup.examples_from_dataset_requested.connect(view.saved.fill_dataset_menu)
        layout.addWidget(view.setup)
        layout.addStretch(1)
        return scrolling_pane(view, inner, SETUP_MIN_WIDTH)

    def _build_input(self, parent: QWidget) -> QWidget:
        view = self.view
        box, layout = pane_column(parent)
        view.text_input.build(box, layout)
        view.evaluate_button = view.text_input.evaluate_button
        QShortcut(QKeySequence("Ctrl+Return"), view.text_input.texts, view.run,
                  context=Qt.ShortcutContext.WidgetShortcut)

        run_row = QHBoxLayout()
        view.run_button = push_button(
            "Classify", "Classify the texts (Ctrl+Enter in the text box)", box,
            name="classify_run", clicked=view.run)
        view.cancel_button, view.progress = cancel_and_progress(
            box, view.cancel, cancel_name="classify_cancel", progress_name="classify_progress")
        view.progress.setTextVisible(True)
        view.status = ElidedLabel("", box)
        view.status.setObjectName("classify_status")
        run_row.addWidget(view.run_button)
        run_row.addWidget(view.cancel_button)
        run_row.addWidget(view.progress, 1)
        run_row.addWidget(view.status)
        layout.addLayout(run_row)
        view.model_note = text_label(box, "classify_model_note", wrap=False, style=QUIET_STYLE)
        layout.addWidget(view.model_note)
        return box

    def _build_results(self, parent: QWidget) -> QWidget:
        view = self.view
        page, layout = pane_column(parent, (0, 4, 0, 0))
        view.results = ResultsModel(view)
        view.proxy = ResultsFilter(view)
        view.proxy.setSourceModel(view.results)
        filters = FlowLayout()  # wraps at narrow widths instead of widening the window
        view.label_filter = QComboBox(page)
        view.label_filter.setObjectName("label_filter")
        view.label_filter.currentIndexChanged.connect(
            lambda _i: view.proxy.set_label(str(view.label_filter.currentData() or "")))
        filters.addWidget(captioned("Label:", view.label_filter, page))
        view.min_confidence = percent_box(page, "min_confidence")
        view.min_confidence.valueChanged.connect(lambda v: view.proxy.set_min_confidence(v / 100))
        filters.addWidget(captioned("Confidence at least:", view.min_confidence, page))
        view.mistakes_only = QCheckBox("Only mistakes", page)
        view.mistakes_only.setObjectName("mistakes_only")
        view.mistakes_only.setToolTip("Rows whose label differs from the expected one")
        view.mistakes_only.toggled.connect(lambda on: view.proxy.set_mistakes_only(on))
        view.mistakes_only.hide()
        filters.addWidget(view.mistakes_only)
        view.shown_label = text_label(page, "shown_label", wrap=False)
        filters.addWidget(view.shown_label)
        filters.addWidget(view.review.build_export_button(page))
        layout.addLayout(filters)

        # The details beside the table (in a tab of their own when the results are narrow:
        # DetailsPlacement).
        split = QSplitter(Qt.Orientation.Horizontal, page)
        split.setObjectName("results_splitter")
        split.setChildrenCollapsible(False)
        split.addWidget(self._build_table(split))
        self.details = self._build_details(split)
        split.addWidget(self.details)
        split.setStretchFactor(0, 1)
        split.setSizes([700, 250])
        self.results_split = split
        layout.addWidget(split, 1)
        layout.addLayout(view.review.build_review_row(page))
        proxy = view.proxy
        for sig in (proxy.rowsInserted, proxy.rowsRemoved, proxy.modelReset,
                    proxy.layoutChanged):
            sig.connect(view.update_shown)
        return page

    def _build_table(self, parent: QWidget) -> QTableView:
        view = self.view
        view.table = table = QTableView(parent)
        table.setObjectName("results_table")
        table.setModel(view.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until asked
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setItemDelegateForColumn(PROBS_COLUMN, ProbabilityBarsDelegate(table))
        table.horizontalHeader().setMinimumSectionSize(40)
        table.setColumnHidden(EXPECTED_COLUMN, True)
        # The text stretches; labels and probabilities take their contents' width, capped.
        # The confidence keeps its whole title (at 800x600 a floor of 64 px showed "Confiden").
        view.column_fitter = ColumnFitter(table, TEXT_COLUMN, {
            LABEL_COLUMN: 140, CONFIDENCE_COLUMN: 90, PROBS_COLUMN: 240, EXPECTED_COLUMN: 140,
            REVIEWED_COLUMN: 120}, min_widths={LABEL_COLUMN: 80, CONFIDENCE_COLUMN: 64,
                                               PROBS_COLUMN: 130},
            whole_titles=(CONFIDENCE_COLUMN,))
        table.verticalHeader().setDefaultSectionSize(26)
        table.verticalHeader().setToolTip("Line of the input")
        table.selectionModel().currentRowChanged.connect(lambda _cur, _prev: view.show_details())
        view.results.dataChanged.connect(lambda *_a: view.show_details())
        view.results.modelReset.connect(view.show_details)
        for n in range(1, 10):
            QShortcut(QKeySequence(str(n)), table,
                      lambda n=n: view.review.correct_to_nth(n - 1),
                      context=Qt.ShortcutContext.WidgetShortcut)
        QShortcut(QKeySequence("A"), table, view.review.accept_selected,
                  context=Qt.ShortcutContext.WidgetShortcut)
        return table

    def _build_details(self, parent: QWidget) -> QWidget:
        view = self.view
        scroll = QScrollArea(parent)
        scroll.setObjectName("details_pane")
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(220)
        pane, layout = pane_column(scroll)
        view.details_title = text_label(pane, "details_title")
        view.details_title.setText("Select a row to see its details.")
        layout.addWidget(view.details_title)
        view.details_text = QPlainTextEdit(pane)
        view.details_text.setObjectName("details_text")
        view.details_text.setReadOnly(True)
        view.details_text.setMaximumHeight(110)
        layout.addWidget(view.details_text)
        view.chart = ProbabilityChart(pane)
        view.chart.setObjectName("details_chart")
        view.chart.setToolTip("Coloured: calibrated probability · grey: the model's raw "
                              "probability")
        layout.addWidget(view.chart)
        view.details_probs = text_label(pane, "details_probs", selectable=True)
        view.details_notes = text_label(pane, "details_notes", style=note_style())
        view.details_explanation = text_label(pane, "details_explanation", selectable=True)
        for label in (view.details_probs, view.details_notes, view.details_explanation):
            layout.addWidget(label)
        layout.addStretch(1)
        scroll.setWidget(pane)
        view.details_widgets = (view.details_text, view.chart)
        for w in view.details_widgets:
            w.hide()
        return scroll

    def _build_evaluation(self, parent: QWidget) -> QWidget:
        view = self.view
        view.report_panel = ReportPanel(
            "Evaluate on a labelled file to see accuracy, macro-F1, per-label precision and "
            "recall, and a confusion matrix.", parent)
        view.eval_summary = view.report_panel.summary
        view.per_label = view.report_panel.per_label
        view.confusion = view.report_panel.confusion
        return view.report_panel
