"""The Classify workbench: set up labels, classify pasted or loaded texts on the engine
thread with live results, review them into a labelled data set, export, and evaluate."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils
from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.classify.evaluate import EvalReport, evaluate
from slmdesk.classify.io import read_columns, read_labelled, read_texts
from slmdesk.classify.spec import ClassifierSpec
from slmdesk.errors import UserFacingError
from slmdesk.store.classifiers import ClassifierRepository
from slmdesk.store.datasets import Dataset, DatasetRepository
from slmdesk.store.repositories import ModelRecord, ModelRepository
from slmdesk.ui.classify.export import export_text
from slmdesk.ui.classify.setup import EXAMPLES_FROM_DATASET, SetupPanel
from slmdesk.ui.classify.table_models import (
    ANY_LABEL,
    CONFIDENCE_COLUMN,
    EXPECTED_COLUMN,
    FAILED,
    LABEL_COLUMN,
    NO_LABEL,
    PROBS_COLUMN,
    REVIEWED_COLUMN,
    TEXT_COLUMN,
    ResultRow,
    ResultsFilter,
    ResultsModel,
)
from slmdesk.ui.common.classify_run import ClassifyRun
from slmdesk.ui.common.file_names import safe_file_stem
from slmdesk.ui.common.metrics import ReportPanel
from slmdesk.ui.common.probability_bars import ProbabilityBarsDelegate, ProbabilityChart
from slmdesk.ui.common.table_model import percent
from slmdesk.ui.tasks import BackgroundTasks
from slmdesk.ui.widgets import error_banner

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Prediction
    from slmdesk.engine.llama_engine import ModelInfo
    from slmdesk.ui.engine_thread import ClassifyJob, EngineClient

log = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".ndjson"}
TEXT_COLUMN_GUESSES = ("text", "sentence", "content", "review", "message", "body", "comment",
                       "document", "input", "question", "title")
LABEL_COLUMN_GUESSES = ("label", "labels", "class", "category", "target", "gold", "sentiment",
                        "intent", "topic", "y")
DEFAULT_DATASET = "Reviewed labels"


def texts_from_lines(text: str, *, whole: bool) -> list[str]:
    """One text per non-empty line, or the whole box as one text."""
    if whole:
        return [text.strip()] if text.strip() else []
    return [line.strip() for line in text.splitlines() if line.strip()]


def guess_column(columns: Sequence[str], guesses: Sequence[str],
                 avoid: str | None = None) -> str | None:
    """The column whose name looks like one of ``guesses``, else None."""
    folded = {c.casefold().strip(): c for c in columns if c != avoid}
    for guess in guesses:
        if guess in folded:
            return folded[guess]
    return None


class ClassifyView(QWidget):
    """The Classify tab. The window calls ``set_model`` whenever the loaded model changes."""

    model_requested = Signal(str)  # a saved classifier's model id: "please load this one"
    input_loaded = Signal(str, int)  # path, number of texts
    run_finished = Signal(bool)  # cancelled
    evaluated = Signal(object)  # EvalReport
    exported = Signal(str)  # path
    error_shown = Signal(str)

    def __init__(self, db: sqlite_utils.Database, engine: EngineClient,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.engine = engine
        self.classifiers = ClassifierRepository(db)
        self.datasets = DatasetRepository(db)
        self.models = ModelRepository(db)
        self.model: ModelRecord | None = None
        self.loaded: ModelInfo | None = None
        self.classifier_name: str | None = None
        self.saved_model_id: str | None = None
        # the run in progress
        self.mode = "classify"  # or "evaluate"
        self.run_labels: list[str] = []
        self.run_gold: list[str] | None = None
        self.run_total = 0
        self._run_seconds = 0.0
        self._eval_source = ""
        self.report: EvalReport | None = None
        # input read from a file
        self.file_path: str | None = None
        self.file_columns: list[str] = []
        self.file_column: str | None = None
        self.file_texts: list[str] = []
        # background tasks
        self._tasks = BackgroundTasks(self)
        self._reading = 0  # input reads in flight
        self._build()
        self.runner = ClassifyRun(engine, self.progress, self.status, self)
        self.runner.progressed.connect(self._on_progress)
        self.runner.classified.connect(self._on_classified)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.state_changed.connect(self._update_controls)
        self.refresh_saved()
        self.refresh_datasets()
        self._refill_label_choices()
        self._update_shown()
        self._update_controls()

    @property
    def job(self) -> ClassifyJob | None:
        """The classification running now, if any."""
        return self.runner.job

    # layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)
        self.banner = error_banner(self, "classify_error_banner")
        root.addWidget(self.banner)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("classify_splitter")
        self.splitter.setChildrenCollapsible(False)
        root.addWidget(self.splitter, 1)
        self.splitter.addWidget(self._build_setup())
        right = QSplitter(Qt.Orientation.Vertical, self.splitter)
        right.setChildrenCollapsible(False)
        right.addWidget(self._build_input(right))
        self.tabs = QTabWidget(right)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_results(self.tabs), "Results")
        self.tabs.addTab(self._build_evaluation(self.tabs), "Evaluation")
        right.addWidget(self.tabs)
        right.setStretchFactor(1, 1)
        right.setSizes([230, 500])
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 820])

    def _build_setup(self) -> QWidget:
        scroll = QScrollArea(self.splitter)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(300)
        inner = QWidget(scroll)
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 6, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Classifier</b>", inner))
        row.addStretch(1)
        self.save_button = QToolButton(inner)
        self.save_button.setText("Save…")
        self.save_button.setToolTip("Save this classifier (with the loaded model) by name")
        self.save_button.clicked.connect(self.save_requested)
        self.delete_button = QToolButton(inner)
        self.delete_button.setText("Delete")
        self.delete_button.setToolTip("Delete the selected saved classifier")
        self.delete_button.clicked.connect(self.delete_requested)
        row.addWidget(self.save_button)
        row.addWidget(self.delete_button)
        layout.addLayout(row)
        self.saved_box = QComboBox(inner)
        self.saved_box.setObjectName("saved_classifiers")
        self.saved_box.setPlaceholderText("Open a saved classifier…")
        self.saved_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.saved_box.setMinimumContentsLength(8)
        self.saved_box.setToolTip("Pick a saved classifier to load its labels, instructions, "
                                  "examples and options")
        self.saved_box.activated.connect(
            lambda i: self.load_classifier(str(self.saved_box.itemData(i))))
        layout.addWidget(self.saved_box)
        hint = QHBoxLayout()
        self.saved_model_note = QLabel("", inner)
        self.saved_model_note.setObjectName("saved_model_note")
        self.saved_model_note.setWordWrap(True)
        self.saved_model_note.setStyleSheet("QLabel { color: #b26a00; }")
        self.use_model_button = QPushButton("Load that model", inner)
        self.use_model_button.clicked.connect(self._request_saved_model)
        hint.addWidget(self.saved_model_note, 1)
        hint.addWidget(self.use_model_button)
        self.saved_model_note.hide()
        self.use_model_button.hide()
        layout.addLayout(hint)
        self.setup = SetupPanel(inner)
        self.setup.examples_from_dataset_requested.connect(self._fill_dataset_menu)
        layout.addWidget(self.setup)
        layout.addStretch(1)
        scroll.setWidget(inner)
        return scroll

    def _build_input(self, parent: QWidget) -> QWidget:
        box = QWidget(parent)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(6, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Texts</b>", box))
        self.count_label = QLabel("", box)
        self.count_label.setObjectName("text_count")
        head.addWidget(self.count_label)
        head.addStretch(1)
        self.open_button = QPushButton("Open CSV/JSONL…", box)
        self.open_button.setToolTip("Classify the texts of a file: one column of a CSV or "
                                    "JSONL file, or the lines of a text file")
        self.open_button.clicked.connect(self.open_requested)
        self.evaluate_button = QPushButton("Evaluate on a labelled file…", box)
        self.evaluate_button.setToolTip(
            "Classify the texts of a CSV/JSONL file with text and label columns and score the "
            "classifier: accuracy, macro-F1, per-label precision/recall, confusion matrix")
        self.evaluate_button.clicked.connect(self.evaluate_requested)
        head.addWidget(self.open_button)
        head.addWidget(self.evaluate_button)
        layout.addLayout(head)

        self.file_bar = QWidget(box)
        bar = QHBoxLayout(self.file_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        self.file_label = QLabel("", self.file_bar)
        self.file_label.setObjectName("file_label")
        bar.addWidget(self.file_label, 1)
        self.column_caption = QLabel("Column:", self.file_bar)
        bar.addWidget(self.column_caption)
        self.column_box = QComboBox(self.file_bar)
        self.column_box.setObjectName("column_box")
        self.column_box.setToolTip("The column that holds the texts")
        self.column_box.activated.connect(
            lambda i: self.choose_column(self.column_box.itemText(i)))
        bar.addWidget(self.column_box)
        self.close_file_button = QToolButton(self.file_bar)
        self.close_file_button.setText("✕")
        self.close_file_button.setToolTip("Back to the texts typed in the box")
        self.close_file_button.clicked.connect(self.close_file)
        bar.addWidget(self.close_file_button)
        self.file_bar.hide()
        layout.addWidget(self.file_bar)

        self.texts = QPlainTextEdit(box)
        self.texts.setObjectName("classify_texts")
        self.texts.setPlaceholderText("Paste texts to classify, one per line…  "
                                      "(Ctrl+Enter runs)")
        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(150)
        self._count_timer.timeout.connect(self._update_count)
        self.texts.textChanged.connect(self._count_timer.start)
        layout.addWidget(self.texts, 1)
        QShortcut(QKeySequence("Ctrl+Return"), self.texts, self.run,
                  context=Qt.ShortcutContext.WidgetShortcut)
        self.whole_box = QCheckBox("Treat the whole box as one text", box)
        self.whole_box.setObjectName("whole_box")
        self.whole_box.toggled.connect(lambda _on: self._update_count())
        layout.addWidget(self.whole_box)

        run_row = QHBoxLayout()
        self.run_button = QPushButton("Classify", box)
        self.run_button.setObjectName("classify_run")
        self.run_button.setToolTip("Classify the texts (Ctrl+Enter in the text box)")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel", box)
        self.cancel_button.setObjectName("classify_cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(box)
        self.progress.setObjectName("classify_progress")
        self.progress.setFormat("")  # "12 / 300" once a run starts
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.status = QLabel("", box)
        self.status.setObjectName("classify_status")
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)
        run_row.addWidget(self.status)
        layout.addLayout(run_row)
        self.model_note = QLabel("", box)
        self.model_note.setObjectName("classify_model_note")
        self.model_note.setStyleSheet("QLabel { color: palette(mid); }")
        layout.addWidget(self.model_note)
        return box

    def _build_results(self, parent: QWidget) -> QWidget:
        page = QWidget(parent)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 4, 0, 0)
        self.results = ResultsModel(self)
        self.proxy = ResultsFilter(self)
        self.proxy.setSourceModel(self.results)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Label:", page))
        self.label_filter = QComboBox(page)
        self.label_filter.setObjectName("label_filter")
        self.label_filter.currentIndexChanged.connect(
            lambda _i: self.proxy.set_label(str(self.label_filter.currentData() or "")))
        filters.addWidget(self.label_filter)
        filters.addWidget(QLabel("Confidence at least:", page))
        self.min_confidence = QDoubleSpinBox(page)
        self.min_confidence.setObjectName("min_confidence")
        self.min_confidence.setRange(0, 100)
        self.min_confidence.setDecimals(0)
        self.min_confidence.setSingleStep(5)
        self.min_confidence.setSuffix(" %")
        self.min_confidence.valueChanged.connect(
            lambda v: self.proxy.set_min_confidence(v / 100))
        filters.addWidget(self.min_confidence)
        self.mistakes_only = QCheckBox("Only mistakes", page)
        self.mistakes_only.setObjectName("mistakes_only")
        self.mistakes_only.setToolTip("Rows whose label differs from the expected one")
        self.mistakes_only.toggled.connect(lambda on: self.proxy.set_mistakes_only(on))
        self.mistakes_only.hide()
        filters.addWidget(self.mistakes_only)
        self.shown_label = QLabel("", page)
        self.shown_label.setObjectName("shown_label")
        filters.addWidget(self.shown_label)
        filters.addStretch(1)
        self.export_button = QToolButton(page)
        self.export_button.setText("Export ▾")
        self.export_button.setObjectName("export_results")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("All results as CSV…", lambda: self.export_requested("csv"))
        menu.addAction("All results as JSONL…", lambda: self.export_requested("jsonl"))
        menu.addSeparator()
        menu.addAction("Shown rows as CSV…", lambda: self.export_requested("csv", True))
        menu.addAction("Shown rows as JSONL…", lambda: self.export_requested("jsonl", True))
        self.export_button.setMenu(menu)
        filters.addWidget(self.export_button)
        layout.addLayout(filters)

        split = QSplitter(Qt.Orientation.Horizontal, page)
        split.setChildrenCollapsible(False)
        self.table = QTableView(split)
        self.table.setObjectName("results_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until asked
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setItemDelegateForColumn(PROBS_COLUMN, ProbabilityBarsDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(TEXT_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        for col, width in ((LABEL_COLUMN, 90), (CONFIDENCE_COLUMN, 80), (PROBS_COLUMN, 210),
                           (EXPECTED_COLUMN, 90), (REVIEWED_COLUMN, 90)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        self.table.setColumnHidden(EXPECTED_COLUMN, True)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.verticalHeader().setToolTip("Line of the input")
        self.table.selectionModel().currentRowChanged.connect(
            lambda _cur, _prev: self._show_details())
        self.results.dataChanged.connect(lambda *_a: self._show_details())
        self.results.modelReset.connect(self._show_details)
        split.addWidget(self.table)
        split.addWidget(self._build_details(split))
        split.setStretchFactor(0, 1)
        split.setSizes([700, 250])
        layout.addWidget(split, 1)
        for n in range(1, 10):
            QShortcut(QKeySequence(str(n)), self.table,
                      lambda n=n: self._correct_to_nth(n - 1),
                      context=Qt.ShortcutContext.WidgetShortcut)
        QShortcut(QKeySequence("A"), self.table, self.accept_selected,
                  context=Qt.ShortcutContext.WidgetShortcut)

        review = QHBoxLayout()
        review.addWidget(QLabel("Save to data set:", page))
        self.dataset_box = QComboBox(page)
        self.dataset_box.setObjectName("dataset_box")
        self.dataset_box.setMinimumWidth(160)
        self.dataset_box.setPlaceholderText(f"(new: “{DEFAULT_DATASET}”)")
        review.addWidget(self.dataset_box)
        self.new_dataset_button = QToolButton(page)
        self.new_dataset_button.setText("New…")
        self.new_dataset_button.setToolTip("Create a labelled data set")
        self.new_dataset_button.clicked.connect(self.new_dataset_requested)
        review.addWidget(self.new_dataset_button)
        self.accept_button = QPushButton("Accept", page)
        self.accept_button.setObjectName("accept_button")
        self.accept_button.setToolTip("Save the selected texts with the model's label (A)")
        self.accept_button.clicked.connect(self.accept_selected)
        review.addWidget(self.accept_button)
        review.addWidget(QLabel("or correct to", page))
        self.correct_box = QComboBox(page)
        self.correct_box.setObjectName("correct_box")
        review.addWidget(self.correct_box)
        self.correct_button = QPushButton("Save", page)
        self.correct_button.setObjectName("correct_button")
        self.correct_button.setToolTip(
            "Save the selected texts with this label (keys 1–9 pick the nth label)")
        self.correct_button.clicked.connect(
            lambda: self.correct_selected(self.correct_box.currentText()))
        review.addWidget(self.correct_button)
        self.review_note = QLabel("", page)
        self.review_note.setObjectName("review_note")
        review.addWidget(self.review_note, 1)
        layout.addLayout(review)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                    self.proxy.layoutChanged):
            sig.connect(self._update_shown)
        return page

    def _build_details(self, parent: QWidget) -> QWidget:
        scroll = QScrollArea(parent)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(220)
        pane = QWidget(scroll)
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(6, 0, 0, 0)
        self.details_title = QLabel("Select a row to see its details.", pane)
        self.details_title.setObjectName("details_title")
        self.details_title.setWordWrap(True)
        layout.addWidget(self.details_title)
        self.details_text = QPlainTextEdit(pane)
        self.details_text.setObjectName("details_text")
        self.details_text.setReadOnly(True)
        self.details_text.setMaximumHeight(110)
        layout.addWidget(self.details_text)
        self.chart = ProbabilityChart(pane)
        self.chart.setObjectName("details_chart")
        self.chart.setToolTip("Coloured: calibrated probability · grey: the model's raw "
                              "probability")
        layout.addWidget(self.chart)
        self.details_probs = QLabel("", pane)
        self.details_probs.setObjectName("details_probs")
        self.details_probs.setWordWrap(True)
        self.details_probs.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details_probs)
        self.details_notes = QLabel("", pane)
        self.details_notes.setObjectName("details_notes")
        self.details_notes.setWordWrap(True)
        self.details_notes.setStyleSheet("QLabel { color: #b26a00; }")
        layout.addWidget(self.details_notes)
        self.details_explanation = QLabel("", pane)
        self.details_explanation.setObjectName("details_explanation")
        self.details_explanation.setWordWrap(True)
        self.details_explanation.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details_explanation)
        layout.addStretch(1)
        scroll.setWidget(pane)
        self._details_widgets = (self.details_text, self.chart)
        for w in self._details_widgets:
            w.hide()
        return scroll

    def _build_evaluation(self, parent: QWidget) -> QWidget:
        self.report_panel = ReportPanel(
            "Evaluate on a labelled file to see accuracy, macro-F1, per-label precision and "
            "recall, and a confusion matrix.", parent)
        self.eval_summary = self.report_panel.summary
        self.per_label, self.confusion = self.report_panel.per_label, self.report_panel.confusion
        return self.report_panel

    # messages to the person -------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()
        self.error_shown.emit(text)

    def clear_error(self) -> None:
        self.banner.clear()
        self.banner.hide()

    # the model --------------------------------------------------------------------------
    def set_model(self, model: ModelRecord | None, loaded: ModelInfo | None) -> None:
        """The window's loaded model changed (``loaded`` is None while none is ready)."""
        self.model = model
        self.loaded = loaded
        self._update_model_notes()
        self._update_controls()

    def _update_model_notes(self) -> None:
        if self.loaded is None:
            self.model_note.setText("No model is ready: pick one in the model list above.")
        else:
            name = self.model.name if self.model is not None else self.loaded.name
            self.model_note.setText(f"Classifying with {name}.")
        saved = self.saved_model_id
        current = self.model.id if self.model is not None and self.loaded is not None else None
        if saved is None or saved == current:
            self.saved_model_note.hide()
            self.use_model_button.hide()
            return
        record = self._model_record(saved)
        if record is None:
            self.saved_model_note.setText(
                "This classifier was saved with a model that is no longer in the library; "
                "it runs with the loaded one.")
            self.use_model_button.hide()
        else:
            self.saved_model_note.setText(
                f"This classifier was saved with {record.name}; it runs with the model "
                "that is loaded.")
            self.use_model_button.show()
        self.saved_model_note.show()

    def _model_record(self, model_id: str) -> ModelRecord | None:
        for record in self.models.list():
            if record.id == model_id:
                return record
        return None

    def _request_saved_model(self) -> None:
        if self.saved_model_id is not None:
            self.model_requested.emit(self.saved_model_id)

    # saved classifiers ----------------------------------------------------------------
    def refresh_saved(self) -> None:
        self.saved_box.clear()
        for saved in self.classifiers.list():
            self.saved_box.addItem(saved.name, saved.name)
            record = self._model_record(saved.model_id) if saved.model_id else None
            labels = ", ".join(str(lab.get("name", "")) for lab in
                               saved.spec.get("labels", []) if isinstance(lab, dict))
            tip = f"{labels}\nmodel: {record.name if record else 'any'}"
            self.saved_box.setItemData(self.saved_box.count() - 1, tip,
                                       Qt.ItemDataRole.ToolTipRole)
        at = self.saved_box.findData(self.classifier_name) if self.classifier_name else -1
        self.saved_box.setCurrentIndex(at)
        self.delete_button.setEnabled(self.saved_box.count() > 0)

    def _build_spec(self) -> ClassifierSpec | None:
        try:
            return self.setup.spec()
        except UserFacingError as exc:
            self.show_error(exc.message)
            return None

    def save_classifier(self, name: str) -> bool:
        spec = self._build_spec()
        if spec is None:
            return False
        model_id = self.model.id if self.model is not None else None
        try:
            saved = self.classifiers.save(name, spec.to_json(), model_id=model_id)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return False
        self.clear_error()
        self.classifier_name = saved.name
        self.saved_model_id = saved.model_id
        self.refresh_saved()
        self._update_model_notes()
        self.status.setText(f"Saved “{saved.name}”.")
        return True

    def save_requested(self) -> None:
        if self._build_spec() is None:
            return
        name, ok = QInputDialog.getText(self, "Save classifier", "Name:",
                                        text=self.classifier_name or "")
        if ok and name.strip():
            existing = self.classifiers.find(name)
            if existing is not None and existing.name != self.classifier_name:
                answer = QMessageBox.question(
                    self, "Save classifier", f"Replace the saved classifier “{existing.name}”?")
                if answer != QMessageBox.StandardButton.Yes:
                    return
            self.save_classifier(name)

    def load_classifier(self, name: str) -> bool:
        try:
            saved = self.classifiers.get(name)
            spec = ClassifierSpec.from_json(saved.spec)
        except UserFacingError as exc:
            self.show_error(f"Cannot open the classifier “{name}”: {exc.message}")
            self.refresh_saved()
            return False
        self.clear_error()
        self.setup.load_spec(spec)
        self.classifier_name = saved.name
        self.saved_model_id = saved.model_id
        self.refresh_saved()
        self._update_model_notes()
        self.status.setText(f"Opened “{saved.name}”.")
        return True

    def delete_classifier(self, name: str) -> None:
        try:
            self.classifiers.delete(name)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        if self.classifier_name is not None and self.classifier_name.casefold() == \
                name.casefold():
            self.classifier_name = None
            self.saved_model_id = None
            self._update_model_notes()
        self.refresh_saved()

    def delete_requested(self) -> None:
        name = self.saved_box.currentData()
        if not name:
            self.show_error("Pick the saved classifier to delete in the list first.")
            return
        answer = QMessageBox.question(self, "Delete classifier",
                                      f"Delete the saved classifier “{name}”?")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_classifier(str(name))

    # examples from a data set -----------------------------------------------------------
    def _fill_dataset_menu(self) -> None:
        menu = self.setup.dataset_menu
        menu.clear()
        sets = [d for d in self.datasets.all() if d.kind == "labels"]
        if not sets:
            action = menu.addAction("No labelled data sets yet")
            action.setEnabled(False)
        for ds in sets:
            menu.addAction(f"{ds.name} ({self.datasets.count(ds)})",
                           partial(self.add_examples_from, ds.name))

    def add_examples_from(self, dataset_name: str,
                          per_label: int = EXAMPLES_FROM_DATASET) -> int:
        """Add up to ``per_label`` examples of each defined label; returns how many."""
        try:
            ds = self.datasets.get(dataset_name)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return 0
        names = self.setup.label_names()
        if not names:
            self.show_error("Define the labels first; examples are picked for each label.")
            return 0
        have = {(self.setup.examples_table.item(r, 0) or QTableWidgetItem()).text()
                for r in range(self.setup.examples_table.rowCount())}
        taken: dict[str, int] = dict.fromkeys(names, 0)
        added = 0
        for example in self.datasets.examples(ds):
            if (example.text and example.label in taken and example.text not in have
                    and taken[example.label] < per_label):
                self.setup.add_example_row(example.text, example.label)
                taken[example.label] += 1
                have.add(example.text)
                added += 1
        if not added:
            self.show_error(f"“{ds.name}” has no new examples for these labels.")
        return added

    # input ------------------------------------------------------------------------------
    def texts_from_box(self) -> list[str]:
        return texts_from_lines(self.texts.toPlainText(), whole=self.whole_box.isChecked())

    def _update_count(self) -> None:
        if self.file_path is not None:
            self.count_label.setText(f"· {len(self.file_texts)} from a file")
            return
        n = len(self.texts_from_box())
        self.count_label.setText(f"· {n} text{'s' if n != 1 else ''}" if n else "")

    def open_requested(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open texts to classify", "",
            "Texts (*.csv *.tsv *.jsonl *.ndjson *.txt);;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str, column: str | None = None) -> None:
        """Read the texts of ``path`` in the background (its text column guessed)."""
        suffix = Path(path).suffix.lower()

        def work() -> tuple[list[str], str | None, list[str]]:
            columns = list(read_columns(path)) if suffix in TABLE_SUFFIXES else []
            chosen = column if column in columns else None
            if columns and chosen is None:
                chosen = guess_column(columns, TEXT_COLUMN_GUESSES) or columns[0]
            return columns, chosen, list(read_texts(path, chosen))

        def then(result: Any, error: str) -> None:
            self._reading -= 1
            if error:
                self.show_error(error)
            else:
                columns, chosen, texts = result
                if not texts:
                    self.show_error(f"{Path(path).name} has no texts"
                                    + (f" in the column “{chosen}”." if chosen else "."))
                else:
                    self.clear_error()
                    self._use_file(path, columns, chosen, texts)
            self._update_controls()

        self._reading += 1
        self._update_controls()
        self.status.setText(f"Reading {Path(path).name}…")
        self._tasks.start(work, f"read {Path(path).name}", then)

    def _use_file(self, path: str, columns: list[str], column: str | None,
                  texts: list[str]) -> None:
        self.file_path, self.file_columns, self.file_column = path, columns, column
        self.file_texts = texts
        self.column_box.clear()
        self.column_box.addItems(columns)
        if column is not None:
            self.column_box.setCurrentIndex(self.column_box.findText(column))
        self.column_box.setVisible(bool(columns))
        self.column_caption.setVisible(bool(columns))
        self.file_label.setText(f"{len(texts)} texts from {Path(path).name}")
        self.file_label.setToolTip(path)
        self.file_bar.show()
        self.texts.setEnabled(False)
        self.whole_box.setEnabled(False)
        self.status.setText("")
        self._update_count()
        self.input_loaded.emit(path, len(texts))

    def choose_column(self, column: str) -> None:
        if self.file_path is not None and column != self.file_column:
            self.open_file(self.file_path, column)

    def close_file(self) -> None:
        self.file_path, self.file_columns, self.file_column = None, [], None
        self.file_texts = []
        self.file_bar.hide()
        self.texts.setEnabled(True)
        self.whole_box.setEnabled(True)
        self._update_count()

    # running ----------------------------------------------------------------------------
    def _update_controls(self) -> None:
        busy = self.runner.busy
        idle = not busy and self._reading == 0
        ready = self.loaded is not None
        self.run_button.setEnabled(idle and ready)
        self.evaluate_button.setEnabled(idle and ready)
        self.cancel_button.setEnabled(busy and not self.runner.cancelling)
        self.open_button.setEnabled(idle)
        self.column_box.setEnabled(idle)
        self.close_file_button.setEnabled(idle)
        self.run_button.setToolTip(
            "Classify the texts (Ctrl+Enter in the text box)" if ready
            else "Load a model first (the model list above)")

    def _ready_to_run(self) -> bool:
        if self.runner.busy or self._reading:
            return False
        if self.loaded is None:
            self.show_error("No model is loaded yet. Pick one in the model list above.")
            return False
        return True

    def run(self) -> None:
        """Classify the texts of the box (or of the opened file)."""
        if not self._ready_to_run():
            return
        spec = self._build_spec()
        if spec is None:
            return
        texts = list(self.file_texts) if self.file_path is not None else self.texts_from_box()
        if not texts:
            self.show_error("There is nothing to classify: paste texts (one per line) or "
                            "open a CSV/JSONL file.")
            return
        self._start(spec, texts, None)

    def evaluate_requested(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Evaluate on a labelled file", "",
            "Labelled texts (*.csv *.tsv *.jsonl *.ndjson);;All files (*)")
        if path:
            self.evaluate_file(path)

    def evaluate_file(self, path: str) -> None:
        """Classify a labelled file's texts and score the predictions against its labels."""
        if not self._ready_to_run():
            return
        spec = self._build_spec()
        if spec is None:
            return
        name = Path(path).name

        def work() -> tuple[str, str, list[tuple[str, str]]]:
            columns = list(read_columns(path))
            text_col = guess_column(columns, TEXT_COLUMN_GUESSES) or "text"
            label_col = guess_column(columns, LABEL_COLUMN_GUESSES, avoid=text_col) or "label"
            pairs = [(str(t), str(lab)) for t, lab in read_labelled(
                path, text_column=text_col, label_column=label_col)]
            return text_col, label_col, pairs

        def then(result: Any, error: str) -> None:
            self._reading -= 1
            self._update_controls()
            if error:
                self.show_error(error)
                return
            text_col, label_col, pairs = result
            if not pairs:
                self.show_error(f"{name} has no labelled texts.")
                return
            unknown = sorted({lab for _t, lab in pairs} - set(spec.label_names))
            if unknown:
                self.show_error(
                    f"{name} uses labels this classifier does not define: "
                    f"{', '.join(unknown[:8])}{'…' if len(unknown) > 8 else ''}. Add them to "
                    "the labels (or fix the file) and evaluate again.")
                return
            if not self._ready_to_run():
                return
            self._eval_source = f"{name} (text: “{text_col}”, label: “{label_col}”)"
            self._start(spec, [t for t, _lab in pairs], [lab for _t, lab in pairs])

        self._reading += 1
        self._update_controls()
        self.status.setText(f"Reading {name}…")
        self._tasks.start(work, f"read {name}", then)

    def _start(self, spec: ClassifierSpec, texts: list[str], gold: list[str] | None) -> None:
        self.clear_error()
        self.mode = "evaluate" if gold is not None else "classify"
        self.run_labels = list(spec.label_names)
        self.run_gold = gold
        self.run_total = len(texts)
        self.results.reset(self.run_labels)
        self._refill_label_choices()
        self.table.setColumnHidden(EXPECTED_COLUMN, gold is None)
        self.mistakes_only.setChecked(False)
        self.mistakes_only.setVisible(gold is not None)
        self.review_note.setText("")
        self.tabs.setCurrentIndex(0)
        error = self.runner.try_start(spec, texts)
        if error:
            self.show_error(error)
        self._update_controls()

    def cancel(self) -> None:
        self.runner.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        if total > self.run_total and done > self.run_total:
            # Batch calibration with explanations: a second pass writes the reasons.
            self.status.setText(f"Writing explanations… {done - self.run_total} of "
                                f"{total - self.run_total}")
        else:
            self.status.setText(self._speed_text(done, total))

    def _speed_text(self, done: int, total: int) -> str:
        elapsed = self.runner.elapsed()
        if done <= 0 or elapsed <= 0:
            return "Working…"
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 else 0
        eta = f" · about {left:.0f} s left" if total > done else ""
        return f"{rate:.1f} texts/s{eta}"

    def _on_classified(self, index: int, prediction: Prediction) -> None:
        gold = self.run_gold[index] if self.run_gold is not None and 0 <= index < len(
            self.run_gold) else None
        self.results.put(index, prediction, gold)
        if self.results.rowCount() == 1 and not self.table.currentIndex().isValid():
            self.table.selectRow(0)

    def _on_finished(self, predictions: list[Prediction], cancelled: bool,
                     seconds: float) -> None:
        self._run_seconds = seconds
        # A cancelled run may report fewer results than arrived live: keep those rows.
        self.results.replace_all(predictions, self.run_gold, keep_missing=cancelled)
        done = self.results.rowCount() if cancelled else len(predictions)
        self.progress.setValue(min(done, self.progress.maximum()))
        failed = sum(1 for p in predictions if p.error)
        failures = f" · {failed} failed (see their rows)" if failed else ""
        if cancelled:
            self.status.setText(f"Cancelled after {done} of {self.run_total}{failures}.")
        else:
            rate = f" · {done / seconds:.1f} texts/s" if seconds > 0 else ""
            self.status.setText(f"Done: {done} texts in {seconds:.1f} s{rate}{failures}.")
        if self.mode == "evaluate" and not cancelled and self.run_gold is not None:
            self._show_report(predictions, self.run_gold)
        elif self.mode == "evaluate":
            self.eval_summary.setText("The evaluation was cancelled before the end: no scores.")
        self._update_controls()
        self._update_shown()
        self.run_finished.emit(cancelled)

    def _on_failed(self, message: str) -> None:
        self.show_error(message)
        self._update_controls()
        self.run_finished.emit(True)

    # evaluation -------------------------------------------------------------------------
    def _show_report(self, predictions: Sequence[Prediction], gold: Sequence[str]) -> None:
        predicted = [p.label if p.label is not None else "" for p in predictions]
        try:
            report = evaluate(list(gold[: len(predicted)]), predicted, self.run_labels)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        if not report.seconds:
            report.seconds = self._run_seconds
            report.texts_per_s = report.n / self._run_seconds if self._run_seconds else 0.0
        self.report = report
        self.report_panel.show_report(
            f"Accuracy {report.accuracy:.1%} · macro-F1 {report.macro_f1:.3f} · "
            f"{report.n} texts · {report.texts_per_s:.1f} texts/s\n{self._eval_source}",
            list(report.labels), report.per_label, report.confusion)
        self.tabs.setCurrentIndex(1)
        self.evaluated.emit(report)

    # results: filter and details --------------------------------------------------------
    def _refill_label_choices(self) -> None:
        blocked = self.label_filter.blockSignals(True)
        try:
            self.label_filter.clear()
            self.label_filter.addItem("All labels", ANY_LABEL)
            for lab in self.run_labels:
                self.label_filter.addItem(lab, lab)
            self.label_filter.addItem("(no label)", NO_LABEL)
            self.label_filter.addItem("Failed", FAILED)
        finally:
            self.label_filter.blockSignals(blocked)
        self.proxy.set_label(ANY_LABEL)
        self.correct_box.clear()
        for n, lab in enumerate(self.run_labels, start=1):
            self.correct_box.addItem(lab)
            if n <= 9:
                self.correct_box.setItemData(n - 1, f"key {n}", Qt.ItemDataRole.ToolTipRole)

    def set_label_filter(self, label: str) -> None:
        at = self.label_filter.findData(label)
        self.label_filter.setCurrentIndex(max(at, 0))

    def _update_shown(self, *_args: Any) -> None:
        total, shown = self.results.rowCount(), self.proxy.rowCount()
        for button in (self.accept_button, self.correct_button, self.export_button):
            button.setEnabled(total > 0)
        self.shown_label.setText(f"{shown} of {total} shown" if shown != total
                                 else f"{total} result{'s' if total != 1 else ''}")

    def _current_result(self) -> ResultRow | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        source = self.proxy.mapToSource(index)
        return self.results.result(source.row()) if source.isValid() else None

    def _show_details(self) -> None:
        row = self._current_result()
        if row is None:
            self.details_title.setText("Select a row to see its details.")
            for w in self._details_widgets:
                w.hide()
            self.details_probs.setText("")
            self.details_notes.setText("")
            self.details_explanation.setText("")
            return
        pred = row.prediction
        for w in self._details_widgets:
            w.show()
        if row.failed:
            title = f"Line {row.index + 1}: failed"
        else:
            title = f"Line {row.index + 1}: {row.label_text} ({percent(row.confidence)})"
        if row.gold is not None:
            title += f" · expected {row.gold}"
        self.details_title.setText(title)
        if self.details_text.toPlainText() != row.text:
            self.details_text.setPlainText(row.text)
        bars = row.probabilities(self.results.labels)
        self.chart.set_bars(bars, row.labels)
        lines = [f"{lab}: {percent(p)} (raw {percent(raw)})" for lab, p, raw in bars]
        lines.append(f"Calibration: {pred.calibration}")
        self.details_probs.setText("\n".join(lines))
        notes = list(pred.notes or [])
        if pred.truncated and not any("trunc" in n.lower() for n in notes):
            notes.insert(0, "The text was too long for the context and was shortened.")
        if pred.error:
            notes.insert(0, str(pred.error))
        self.details_notes.setText("\n".join(notes))
        self.details_explanation.setText(
            f"Why: {pred.explanation}" if pred.explanation else "")

    # review: accept or correct into a data set -----------------------------------------
    def refresh_datasets(self, select: str | None = None) -> None:
        current = select or self.dataset_box.currentData()
        self.dataset_box.clear()
        for ds in self.datasets.all():
            if ds.kind == "labels":
                self.dataset_box.addItem(ds.name, ds.name)
        at = self.dataset_box.findData(current) if current else -1
        self.dataset_box.setCurrentIndex(at if at >= 0 else (0 if self.dataset_box.count()
                                                             else -1))

    def create_dataset(self, name: str) -> Dataset | None:
        try:
            ds = self.datasets.create(name, kind="labels", labels=self.run_labels or
                                      self.setup.label_names())
        except UserFacingError as exc:
            self.show_error(exc.message)
            return None
        self.refresh_datasets(select=ds.name)
        return ds

    def new_dataset_requested(self) -> None:
        name, ok = QInputDialog.getText(self, "New data set", "Name:",
                                        text=self._default_dataset_name())
        if ok and name.strip():
            self.create_dataset(name)

    def _default_dataset_name(self) -> str:
        base = f"{self.classifier_name} labels" if self.classifier_name else DEFAULT_DATASET
        name, n = base, 2
        while self.datasets.find(name) is not None:
            name, n = f"{base} {n}", n + 1
        return name

    def _target_dataset(self) -> Dataset | None:
        name = self.dataset_box.currentData()
        if name:
            found = self.datasets.find(str(name))
            if found is not None:
                return found
        return self.create_dataset(self._default_dataset_name())

    def _selected_rows(self) -> list[int]:
        rows = {self.proxy.mapToSource(i).row()
                for i in self.table.selectionModel().selectedRows()}
        if not rows and self.table.currentIndex().isValid():
            rows = {self.proxy.mapToSource(self.table.currentIndex()).row()}
        return sorted(r for r in rows if r >= 0)

    def accept_selected(self) -> int:
        """Save the selected rows with the model's label; returns how many were saved."""
        return self._review(None)

    def correct_selected(self, label: str) -> int:
        """Save the selected rows with ``label``; returns how many were saved."""
        if label not in self.results.labels:
            self.show_error(f"Pick one of the labels: {', '.join(self.results.labels)}.")
            return 0
        return self._review(label)

    def _correct_to_nth(self, n: int) -> None:
        if 0 <= n < len(self.results.labels):
            self.correct_selected(self.results.labels[n])

    def _review(self, label: str | None) -> int:
        rows = self._selected_rows()
        if not rows:
            self.show_error("Select one or more results first.")
            return 0
        dataset = self._target_dataset()
        if dataset is None:
            return 0
        saved, skipped = 0, []
        for r in rows:
            row = self.results.result(r)
            pred = row.prediction
            chosen = label if label is not None else pred.label
            if chosen is None:
                skipped.append(f"line {row.index + 1} has no label to accept")
                continue
            if row.reviewed is not None:
                skipped.append(f"line {row.index + 1} was already saved as {row.reviewed}")
                continue
            try:
                self.datasets.add_labelled_text(
                    dataset, row.text, chosen, source="classification", labelled_by="person",
                    model_label=pred.label, model_confidence=row.confidence)
            except UserFacingError as exc:
                skipped.append(f"line {row.index + 1}: {exc.message}")
                continue
            self.results.mark_reviewed(r, chosen, dataset.name)
            saved += 1
        if skipped:
            self.show_error("Not saved: " + "; ".join(skipped[:5])
                            + ("…" if len(skipped) > 5 else "") + ".")
        else:
            self.clear_error()
        if saved:
            total = self.datasets.count(self.datasets.get(dataset.name))
            self.review_note.setText(
                f"Saved {saved} to “{dataset.name}” ({total} texts).")
            if len(rows) == 1:
                self._select_next()
        return saved

    def _select_next(self) -> None:
        current = self.table.currentIndex()
        if current.isValid() and current.row() + 1 < self.proxy.rowCount():
            nxt = self.proxy.index(current.row() + 1, 0)
            self.table.selectionModel().setCurrentIndex(
                nxt, QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)

    def select_result(self, source_row: int) -> None:
        """Make the row of the results model at ``source_row`` the selected one."""
        index = self.proxy.mapFromSource(self.results.index(source_row, 0))
        if index.isValid():
            self.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
        else:
            self.table.selectionModel().setCurrentIndex(
                QModelIndex(), QItemSelectionModel.SelectionFlag.Clear)

    # export -----------------------------------------------------------------------------
    def export_requested(self, fmt: str, only_shown: bool = False) -> None:
        if not self.results.rowCount():
            self.show_error("There are no results to export yet.")
            return
        suffix = "jsonl" if fmt == "jsonl" else "csv"
        stem = safe_file_stem(self.classifier_name or "classified", "classified")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export results", f"{stem}.{suffix}",
            "JSON Lines (*.jsonl)" if fmt == "jsonl" else "CSV (*.csv)")
        if path:
            self.export_to(path, fmt, only_shown=only_shown)

    def export_to(self, path: str, fmt: str, *, only_shown: bool = False) -> None:
        """Write the results (all, or those the filter shows, in the shown order)."""
        if only_shown:
            rows = [self.results.result(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
                    for r in range(self.proxy.rowCount())]
        else:
            rows = list(self.results.rows)
        # Build the text here, where the rows live; write it on the pool.
        text = export_text(rows, self.results.labels, fmt)
        name = Path(path).name

        def work() -> None:
            Path(path).write_text(text, encoding="utf-8", newline="")

        def then(_result: Any, error: str) -> None:
            if error:
                self.show_error(error)
                return
            self.status.setText(f"Exported {len(rows)} rows to {name}.")
            self.exported.emit(path)

        self._tasks.start(work, f"write {name}", then)
