"""The Classify tab's widgets, laid out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.classify.review import DEFAULT_DATASET
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
from slmdesk.ui.common.metrics import ReportPanel
from slmdesk.ui.common.probability_bars import ProbabilityBarsDelegate, ProbabilityChart
from slmdesk.ui.widgets import error_banner

if TYPE_CHECKING:
    from slmdesk.ui.classify.view import ClassifyView


class ClassifyLayout:
    """Builds the setup column, the texts, the results with their details, and the
    evaluation, as widgets of the view."""

    def __init__(self, view: ClassifyView) -> None:
        self.view = view

    def build(self) -> None:
        root = QVBoxLayout(self.view)
        root.setContentsMargins(6, 6, 6, 6)
        self.view.banner = error_banner(self.view, "classify_error_banner")
        root.addWidget(self.view.banner)

        self.view.splitter = QSplitter(Qt.Orientation.Horizontal, self.view)
        self.view.splitter.setObjectName("classify_splitter")
        self.view.splitter.setChildrenCollapsible(False)
        root.addWidget(self.view.splitter, 1)
        self.view.splitter.addWidget(self._build_setup())
        right = QSplitter(Qt.Orientation.Vertical, self.view.splitter)
        right.setChildrenCollapsible(False)
        right.addWidget(self._build_input(right))
        self.view.tabs = QTabWidget(right)
        self.view.tabs.setDocumentMode(True)
        self.view.tabs.addTab(self._build_results(self.view.tabs), "Results")
        self.view.tabs.addTab(self._build_evaluation(self.view.tabs), "Evaluation")
        right.addWidget(self.view.tabs)
        right.setStretchFactor(1, 1)
        right.setSizes([230, 500])
        self.view.splitter.addWidget(right)
        self.view.splitter.setStretchFactor(1, 1)
        self.view.splitter.setSizes([380, 820])

    def _build_setup(self) -> QWidget:
        scroll = QScrollArea(self.view.splitter)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(300)
        inner = QWidget(scroll)
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 6, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Classifier</b>", inner))
        row.addStretch(1)
        self.view.save_button = QToolButton(inner)
        self.view.save_button.setText("Save…")
        self.view.save_button.setToolTip("Save this classifier (with the loaded model) by name")
        self.view.save_button.clicked.connect(self.view.saved.save_requested)
        self.view.delete_button = QToolButton(inner)
        self.view.delete_button.setText("Delete")
        self.view.delete_button.setToolTip("Delete the selected saved classifier")
        self.view.delete_button.clicked.connect(self.view.saved.delete_requested)
        row.addWidget(self.view.save_button)
        row.addWidget(self.view.delete_button)
        layout.addLayout(row)
        self.view.saved_box = QComboBox(inner)
        self.view.saved_box.setObjectName("saved_classifiers")
        self.view.saved_box.setPlaceholderText("Open a saved classifier…")
        self.view.saved_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.view.saved_box.setMinimumContentsLength(8)
        self.view.saved_box.setToolTip("Pick a saved classifier to load its labels, instructions, "
                                  "examples and options")
        self.view.saved_box.activated.connect(
            lambda i: self.view.saved.load_classifier(str(self.view.saved_box.itemData(i))))
        layout.addWidget(self.view.saved_box)
        hint = QHBoxLayout()
        self.view.saved_model_note = QLabel("", inner)
        self.view.saved_model_note.setObjectName("saved_model_note")
        self.view.saved_model_note.setWordWrap(True)
        self.view.saved_model_note.setStyleSheet("QLabel { color: #b26a00; }")
        self.view.use_model_button = QPushButton("Load that model", inner)
        self.view.use_model_button.clicked.connect(self.view.saved._request_saved_model)
        hint.addWidget(self.view.saved_model_note, 1)
        hint.addWidget(self.view.use_model_button)
        self.view.saved_model_note.hide()
        self.view.use_model_button.hide()
        layout.addLayout(hint)
        self.view.setup = SetupPanel(inner)
        self.view.setup.examples_from_dataset_requested.connect(self.view.saved._fill_dataset_menu)
        layout.addWidget(self.view.setup)
        layout.addStretch(1)
        scroll.setWidget(inner)
        return scroll

    def _build_input(self, parent: QWidget) -> QWidget:
        box = QWidget(parent)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(6, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Texts</b>", box))
        self.view.count_label = QLabel("", box)
        self.view.count_label.setObjectName("text_count")
        head.addWidget(self.view.count_label)
        head.addStretch(1)
        self.view.open_button = QPushButton("Open CSV/JSONL…", box)
        self.view.open_button.setToolTip("Classify the texts of a file: one column of a CSV or "
                                    "JSONL file, or the lines of a text file")
        self.view.open_button.clicked.connect(self.view.text_input.open_requested)
        self.view.evaluate_button = QPushButton("Evaluate on a labelled file…", box)
        self.view.evaluate_button.setToolTip(
            "Classify the texts of a CSV/JSONL file with text and label columns and score the "
            "classifier: accuracy, macro-F1, per-label precision/recall, confusion matrix")
        self.view.evaluate_button.clicked.connect(self.view.text_input.evaluate_requested)
        head.addWidget(self.view.open_button)
        head.addWidget(self.view.evaluate_button)
        layout.addLayout(head)

        self.view.file_bar = QWidget(box)
        bar = QHBoxLayout(self.view.file_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        self.view.file_label = QLabel("", self.view.file_bar)
        self.view.file_label.setObjectName("file_label")
        bar.addWidget(self.view.file_label, 1)
        self.view.column_caption = QLabel("Column:", self.view.file_bar)
        bar.addWidget(self.view.column_caption)
        self.view.column_box = QComboBox(self.view.file_bar)
        self.view.column_box.setObjectName("column_box")
        self.view.column_box.setToolTip("The column that holds the texts")
        self.view.column_box.activated.connect(
            lambda i: self.view.text_input.choose_column(self.view.column_box.itemText(i)))
        bar.addWidget(self.view.column_box)
        self.view.close_file_button = QToolButton(self.view.file_bar)
        self.view.close_file_button.setText("✕")
        self.view.close_file_button.setToolTip("Back to the texts typed in the box")
        self.view.close_file_button.clicked.connect(self.view.text_input.close_file)
        bar.addWidget(self.view.close_file_button)
        self.view.file_bar.hide()
        layout.addWidget(self.view.file_bar)

        self.view.texts = QPlainTextEdit(box)
        self.view.texts.setObjectName("classify_texts")
        self.view.texts.setPlaceholderText("Paste texts to classify, one per line…  "
                                      "(Ctrl+Enter runs)")
        self.view._count_timer = QTimer(self.view)
        self.view._count_timer.setSingleShot(True)
        self.view._count_timer.setInterval(150)
        self.view._count_timer.timeout.connect(self.view.text_input._update_count)
        self.view.texts.textChanged.connect(self.view._count_timer.start)
        layout.addWidget(self.view.texts, 1)
        QShortcut(QKeySequence("Ctrl+Return"), self.view.texts, self.view.run,
                  context=Qt.ShortcutContext.WidgetShortcut)
        self.view.whole_box = QCheckBox("Treat the whole box as one text", box)
        self.view.whole_box.setObjectName("whole_box")
        self.view.whole_box.toggled.connect(lambda _on: self.view.text_input._update_count())
        layout.addWidget(self.view.whole_box)

        run_row = QHBoxLayout()
        self.view.run_button = QPushButton("Classify", box)
        self.view.run_button.setObjectName("classify_run")
        self.view.run_button.setToolTip("Classify the texts (Ctrl+Enter in the text box)")
        self.view.run_button.clicked.connect(self.view.run)
        self.view.cancel_button = QPushButton("Cancel", box)
        self.view.cancel_button.setObjectName("classify_cancel")
        self.view.cancel_button.clicked.connect(self.view.cancel)
        self.view.progress = QProgressBar(box)
        self.view.progress.setObjectName("classify_progress")
        self.view.progress.setFormat("")  # "12 / 300" once a run starts
        self.view.progress.setRange(0, 1)
        self.view.progress.setValue(0)
        self.view.progress.setTextVisible(True)
        self.view.status = QLabel("", box)
        self.view.status.setObjectName("classify_status")
        run_row.addWidget(self.view.run_button)
        run_row.addWidget(self.view.cancel_button)
        run_row.addWidget(self.view.progress, 1)
        run_row.addWidget(self.view.status)
        layout.addLayout(run_row)
        self.view.model_note = QLabel("", box)
        self.view.model_note.setObjectName("classify_model_note")
        self.view.model_note.setStyleSheet("QLabel { color: palette(mid); }")
        layout.addWidget(self.view.model_note)
        return box

    def _build_results(self, parent: QWidget) -> QWidget:
        page = QWidget(parent)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 4, 0, 0)
        self.view.results = ResultsModel(self.view)
        self.view.proxy = ResultsFilter(self.view)
        self.view.proxy.setSourceModel(self.view.results)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Label:", page))
        self.view.label_filter = QComboBox(page)
        self.view.label_filter.setObjectName("label_filter")
        self.view.label_filter.currentIndexChanged.connect(
            lambda _i: self.view.proxy.set_label(str(self.view.label_filter.currentData() or "")))
        filters.addWidget(self.view.label_filter)
        filters.addWidget(QLabel("Confidence at least:", page))
        self.view.min_confidence = QDoubleSpinBox(page)
        self.view.min_confidence.setObjectName("min_confidence")
        self.view.min_confidence.setRange(0, 100)
        self.view.min_confidence.setDecimals(0)
        self.view.min_confidence.setSingleStep(5)
        self.view.min_confidence.setSuffix(" %")
        self.view.min_confidence.valueChanged.connect(
            lambda v: self.view.proxy.set_min_confidence(v / 100))
        filters.addWidget(self.view.min_confidence)
        self.view.mistakes_only = QCheckBox("Only mistakes", page)
        self.view.mistakes_only.setObjectName("mistakes_only")
        self.view.mistakes_only.setToolTip("Rows whose label differs from the expected one")
        self.view.mistakes_only.toggled.connect(lambda on: self.view.proxy.set_mistakes_only(on))
        self.view.mistakes_only.hide()
        filters.addWidget(self.view.mistakes_only)
        self.view.shown_label = QLabel("", page)
        self.view.shown_label.setObjectName("shown_label")
        filters.addWidget(self.view.shown_label)
        filters.addStretch(1)
        self.view.export_button = QToolButton(page)
        self.view.export_button.setText("Export ▾")
        self.view.export_button.setObjectName("export_results")
        self.view.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.view.export_button)
        menu.addAction("All results as CSV…", lambda: self.view.review.export_requested("csv"))
        menu.addAction("All results as JSONL…", lambda: self.view.review.export_requested("jsonl"))
        menu.addSeparator()
        export = self.view.review.export_requested
        menu.addAction("Shown rows as CSV…", lambda: export("csv", True))
        menu.addAction("Shown rows as JSONL…", lambda: export("jsonl", True))
        self.view.export_button.setMenu(menu)
        filters.addWidget(self.view.export_button)
        layout.addLayout(filters)

        split = QSplitter(Qt.Orientation.Horizontal, page)
        split.setChildrenCollapsible(False)
        self.view.table = QTableView(split)
        self.view.table.setObjectName("results_table")
        self.view.table.setModel(self.view.proxy)
        self.view.table.setSortingEnabled(True)
        self.view.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until asked
        self.view.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.table.setWordWrap(False)
        self.view.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.table.setItemDelegateForColumn(
            PROBS_COLUMN, ProbabilityBarsDelegate(self.view.table))
        header = self.view.table.horizontalHeader()
        header.setSectionResizeMode(TEXT_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        for col, width in ((LABEL_COLUMN, 90), (CONFIDENCE_COLUMN, 80), (PROBS_COLUMN, 210),
                           (EXPECTED_COLUMN, 90), (REVIEWED_COLUMN, 90)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        self.view.table.setColumnHidden(EXPECTED_COLUMN, True)
        self.view.table.verticalHeader().setDefaultSectionSize(26)
        self.view.table.verticalHeader().setToolTip("Line of the input")
        self.view.table.selectionModel().currentRowChanged.connect(
            lambda _cur, _prev: self.view._show_details())
        self.view.results.dataChanged.connect(lambda *_a: self.view._show_details())
        self.view.results.modelReset.connect(self.view._show_details)
        split.addWidget(self.view.table)
        split.addWidget(self._build_details(split))
        split.setStretchFactor(0, 1)
        split.setSizes([700, 250])
        layout.addWidget(split, 1)
        for n in range(1, 10):
            QShortcut(QKeySequence(str(n)), self.view.table,
                      lambda n=n: self.view.review._correct_to_nth(n - 1),
                      context=Qt.ShortcutContext.WidgetShortcut)
        QShortcut(QKeySequence("A"), self.view.table, self.view.review.accept_selected,
                  context=Qt.ShortcutContext.WidgetShortcut)

        review = QHBoxLayout()
        review.addWidget(QLabel("Save to data set:", page))
        self.view.dataset_box = QComboBox(page)
        self.view.dataset_box.setObjectName("dataset_box")
        self.view.dataset_box.setMinimumWidth(160)
        self.view.dataset_box.setPlaceholderText(f"(new: “{DEFAULT_DATASET}”)")
        review.addWidget(self.view.dataset_box)
        self.view.new_dataset_button = QToolButton(page)
        self.view.new_dataset_button.setText("New…")
        self.view.new_dataset_button.setToolTip("Create a labelled data set")
        self.view.new_dataset_button.clicked.connect(self.view.review.new_dataset_requested)
        review.addWidget(self.view.new_dataset_button)
        self.view.accept_button = QPushButton("Accept", page)
        self.view.accept_button.setObjectName("accept_button")
        self.view.accept_button.setToolTip("Save the selected texts with the model's label (A)")
        self.view.accept_button.clicked.connect(self.view.review.accept_selected)
        review.addWidget(self.view.accept_button)
        review.addWidget(QLabel("or correct to", page))
        self.view.correct_box = QComboBox(page)
        self.view.correct_box.setObjectName("correct_box")
        review.addWidget(self.view.correct_box)
        self.view.correct_button = QPushButton("Save", page)
        self.view.correct_button.setObjectName("correct_button")
        self.view.correct_button.setToolTip(
            "Save the selected texts with this label (keys 1–9 pick the nth label)")
        self.view.correct_button.clicked.connect(
            lambda: self.view.review.correct_selected(self.view.correct_box.currentText()))
        review.addWidget(self.view.correct_button)
        self.view.review_note = QLabel("", page)
        self.view.review_note.setObjectName("review_note")
        review.addWidget(self.view.review_note, 1)
        layout.addLayout(review)
        proxy = self.view.proxy
        for sig in (proxy.rowsInserted, proxy.rowsRemoved, proxy.modelReset,
                    proxy.layoutChanged):
            sig.connect(self.view._update_shown)
        return page

    def _build_details(self, parent: QWidget) -> QWidget:
        scroll = QScrollArea(parent)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(220)
        pane = QWidget(scroll)
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(6, 0, 0, 0)
        self.view.details_title = QLabel("Select a row to see its details.", pane)
        self.view.details_title.setObjectName("details_title")
        self.view.details_title.setWordWrap(True)
        layout.addWidget(self.view.details_title)
        self.view.details_text = QPlainTextEdit(pane)
        self.view.details_text.setObjectName("details_text")
        self.view.details_text.setReadOnly(True)
        self.view.details_text.setMaximumHeight(110)
        layout.addWidget(self.view.details_text)
        self.view.chart = ProbabilityChart(pane)
        self.view.chart.setObjectName("details_chart")
        self.view.chart.setToolTip("Coloured: calibrated probability · grey: the model's raw "
                              "probability")
        layout.addWidget(self.view.chart)
        self.view.details_probs = QLabel("", pane)
        self.view.details_probs.setObjectName("details_probs")
        self.view.details_probs.setWordWrap(True)
        self.view.details_probs.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.view.details_probs)
        self.view.details_notes = QLabel("", pane)
        self.view.details_notes.setObjectName("details_notes")
        self.view.details_notes.setWordWrap(True)
        self.view.details_notes.setStyleSheet("QLabel { color: #b26a00; }")
        layout.addWidget(self.view.details_notes)
        self.view.details_explanation = QLabel("", pane)
        self.view.details_explanation.setObjectName("details_explanation")
        self.view.details_explanation.setWordWrap(True)
        self.view.details_explanation.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.view.details_explanation)
        layout.addStretch(1)
        scroll.setWidget(pane)
        self.view._details_widgets = (self.view.details_text, self.view.chart)
        for w in self.view._details_widgets:
            w.hide()
        return scroll

    def _build_evaluation(self, parent: QWidget) -> QWidget:
        self.view.report_panel = ReportPanel(
            "Evaluate on a labelled file to see accuracy, macro-F1, per-label precision and "
            "recall, and a confusion matrix.", parent)
        self.view.eval_summary = self.view.report_panel.summary
        self.view.per_label = self.view.report_panel.per_label
        self.view.confusion = self.view.report_panel.confusion
        return self.view.report_panel
