"""The Data sets tab: annotate examples by keyboard, filter and search them, undo, find
duplicates, pre-label with a model, import, export, split, and evaluate classifiers on the
test split with a history of runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils
from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.classify.evaluate import EvalReport, evaluate
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.datasets import evaluation, formats, quality
from slmdesk.datasets.splits import assign_splits
from slmdesk.errors import UserFacingError
from slmdesk.store.classifiers import ClassifierRepository
from slmdesk.store.datasets import SPLITS, UNASSIGNED, Dataset, DatasetRepository, Example
from slmdesk.ui.common.classify_run import ClassifyRun
from slmdesk.ui.common.colours import label_colour
from slmdesk.ui.common.file_names import safe_file_stem
from slmdesk.ui.common.metrics import ReportPanel
from slmdesk.ui.common.table_model import percent
from slmdesk.ui.datasets.dialogs import ExportDialog, NewDatasetDialog, SplitDialog
from slmdesk.ui.datasets.import_dialog import ImportDialog
from slmdesk.ui.datasets.labelling_table import LabellingTable
from slmdesk.ui.datasets.table_models import (
    LABEL_COLUMN,
    SOURCE_COLUMN,
    SPLIT_COLUMN,
    SUGGESTION_COLUMN,
    TEXT_COLUMN,
    DatasetListModel,
    EvalHistoryModel,
    ExamplesModel,
    SuggestionBarDelegate,
    spec_summary,
)
from slmdesk.ui.tasks import BackgroundTasks
from slmdesk.ui.widgets import error_banner

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Prediction
    from slmdesk.engine.llama_engine import ModelInfo
    from slmdesk.store.repositories import ModelRecord
    from slmdesk.ui.engine_thread import ClassifyJob, EngineClient

ANY = ""  # "no filter" in the filter combos
OWN_LABELS = ""  # the classifier combo's "labels of this data set"
ROW_LIMIT = 20_000  # rows shown at once; filters narrow the rest
UNDO_DEPTH = 100
FLUSH_MS = 300  # live pre-label suggestions are written in batches this often
EXPORT_SUFFIX = {"csv": "csv", "jsonl": "jsonl", "openai": "jsonl", "sharegpt": "jsonl",
                 "alpaca": "jsonl"}


@dataclass
class UndoStep:
    """One labelling or deleting action, as the rows were before it."""

    kind: str  # "label" | "delete"
    before: list[Example]
    what: str  # "label 3 examples", for the status line


class DatasetsView(QWidget):
    """The Data sets tab. The window calls ``set_model`` whenever the loaded model changes."""

    dataset_changed = Signal(str)  # name ("" when none)
    labelled = Signal(int)  # how many examples one action changed
    run_finished = Signal(str, bool)  # "prelabel" | "evaluate", cancelled (or failed)
    evaluated = Signal(object)  # EvalRun
    imported = Signal(object)  # ImportResult
    exported = Signal(str)  # path
    error_shown = Signal(str)

    def __init__(self, db: sqlite_utils.Database, engine: EngineClient,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.engine = engine
        self.datasets = DatasetRepository(db)
        self.classifiers = ClassifierRepository(db)
        self.model: ModelRecord | None = None
        self.loaded: ModelInfo | None = None
        self.dataset: Dataset | None = None
        self._undo: dict[str, list[UndoStep]] = {}
        self._tasks = BackgroundTasks(self)
        # the engine run in progress (pre-label or evaluate)
        self.mode = "prelabel"
        self.run_ids: list[str] = []
        self.run_gold: list[str] = []
        self.run_spec: ClassifierSpec | None = None
        self.run_model_name = ""
        self.run_classifier_name: str | None = None
        self._pending: dict[str, tuple[str, float]] = {}  # suggestions not yet written
        self._more = 0  # examples the query matched, when more than ROW_LIMIT
        self._overlap = 0  # evaluated texts that are also the classifier's examples
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush_suggestions)
        self.report: EvalReport | None = None
        self._build()
        self.runner = ClassifyRun(engine, self.progress, self.run_status, self)
        self.runner.progressed.connect(self._on_progress)
        self.runner.classified.connect(self._on_classified)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.state_changed.connect(self._update_controls)
        self.refresh_classifiers()
        self.refresh_datasets()
        self._update_controls()

    @property
    def job(self) -> ClassifyJob | None:
        """The pre-labelling or evaluation running now, if any."""
        return self.runner.job

    # layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)
        self.banner = error_banner(self, "datasets_error_banner")
        root.addWidget(self.banner)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("datasets_splitter")
        self.splitter.setChildrenCollapsible(False)
        root.addWidget(self.splitter, 1)
        self.splitter.addWidget(self._build_list(self.splitter))
        right = QSplitter(Qt.Orientation.Vertical, self.splitter)
        right.setChildrenCollapsible(False)
        right.addWidget(self._build_examples(right))
        right.addWidget(self._build_model_pane(right))
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([520, 260])
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([220, 980])

    def _build_list(self, parent: QWidget) -> QWidget:
        box = QWidget(parent)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addWidget(QLabel("<b>Data sets</b>", box))
        self.list_model = DatasetListModel(self)
        self.list_view = QListView(box)
        self.list_view.setObjectName("datasets_list")
        self.list_view.setModel(self.list_model)
        self.list_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list_view.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self._on_list_current(cur))
        layout.addWidget(self.list_view, 1)
        row = QHBoxLayout()
        self.new_button = QToolButton(box)
        self.new_button.setText("New…")
        self.new_button.setToolTip("Create a data set of labelled texts or chat examples")
        self.new_button.clicked.connect(self.new_dataset_requested)
        self.rename_button = QToolButton(box)
        self.rename_button.setText("Rename…")
        self.rename_button.clicked.connect(self.rename_requested)
        self.delete_dataset_button = QToolButton(box)
        self.delete_dataset_button.setText("Delete")
        self.delete_dataset_button.setToolTip("Delete the data set and all its examples")
        self.delete_dataset_button.clicked.connect(self.delete_dataset_requested)
        for b in (self.new_button, self.rename_button, self.delete_dataset_button):
            row.addWidget(b)
        row.addStretch(1)
        layout.addLayout(row)
        return box

    def _build_examples(self, parent: QWidget) -> QWidget:
        page = QWidget(parent)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(6, 0, 0, 0)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Label:", page))
        self.label_filter = QComboBox(page)
        self.label_filter.setObjectName("label_filter")
        self.label_filter.setMinimumContentsLength(8)
        filters.addWidget(self.label_filter)
        filters.addWidget(QLabel("Split:", page))
        self.split_filter = QComboBox(page)
        self.split_filter.setObjectName("split_filter")
        self.split_filter.addItem("All", ANY)
        for name in (*SPLITS, UNASSIGNED):
            self.split_filter.addItem(name, name)
        filters.addWidget(self.split_filter)
        filters.addWidget(QLabel("Source:", page))
        self.source_filter = QComboBox(page)
        self.source_filter.setObjectName("source_filter")
        self.source_filter.setMinimumContentsLength(8)
        filters.addWidget(self.source_filter)
        self.unlabelled_box = QCheckBox("Unlabelled", page)
        self.unlabelled_box.setObjectName("unlabelled_filter")
        self.unlabelled_box.setToolTip("Only examples without a label")
        filters.addWidget(self.unlabelled_box)
        self.disagreement_box = QCheckBox("Disagreement", page)
        self.disagreement_box.setObjectName("disagreement_filter")
        self.disagreement_box.setToolTip(
            "Only examples whose label differs from the model's suggestion")
        filters.addWidget(self.disagreement_box)
        self.search_box = QLineEdit(page)
        self.search_box.setObjectName("search_box")
        self.search_box.setPlaceholderText("Search the texts…")
        self.search_box.setClearButtonEnabled(True)
        filters.addWidget(self.search_box, 1)
        layout.addLayout(filters)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(self.reload)
        self.search_box.textChanged.connect(lambda _t: self._search_timer.start())
        for combo in (self.label_filter, self.split_filter, self.source_filter):
            combo.currentIndexChanged.connect(lambda _i: self._filters_changed())
        for check in (self.unlabelled_box, self.disagreement_box):
            check.toggled.connect(lambda _on: self._filters_changed())

        split = QSplitter(Qt.Orientation.Horizontal, page)
        split.setChildrenCollapsible(False)
        self.examples = ExamplesModel(self)
        self.table = LabellingTable(split)
        self.table.setObjectName("examples_table")
        self.table.setModel(self.examples)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setItemDelegateForColumn(SUGGESTION_COLUMN, SuggestionBarDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(40)
        header.setSectionResizeMode(TEXT_COLUMN, QHeaderView.ResizeMode.Stretch)
        for col, width in ((LABEL_COLUMN, 110), (SUGGESTION_COLUMN, 160), (SPLIT_COLUMN, 80),
                           (SOURCE_COLUMN, 90)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setToolTip("1–9: label · 0: clear · A: accept the suggestion · "
                              "Delete: delete · Ctrl+Z: undo")
        self.table.label_key_pressed.connect(self.label_key)
        self.table.accept_key_pressed.connect(self.accept_selected_suggestions)
        self.table.delete_key_pressed.connect(self.delete_selected)
        self.table.undo_key_pressed.connect(self.undo)
        self.table.selectionModel().currentRowChanged.connect(
            lambda _cur, _prev: self._show_details())
        self.table.selectionModel().selectionChanged.connect(
            lambda _s, _d: self._update_controls())
        self.examples.modelReset.connect(self._show_details)
        self.examples.dataChanged.connect(lambda *_a: self._show_details())
        split.addWidget(self.table)
        split.addWidget(self._build_details(split))
        split.setStretchFactor(0, 1)
        split.setSizes([720, 260])
        layout.addWidget(split, 1)

        self.counts = QLabel("", page)
        self.counts.setObjectName("counts_strip")
        self.counts.setTextFormat(Qt.TextFormat.RichText)
        self.counts.setWordWrap(True)
        self.counts.setToolTip("Click a label or a split to filter by it")
        self.counts.linkActivated.connect(self._count_clicked)
        layout.addWidget(self.counts)

        actions = QHBoxLayout()
        self.import_button = QPushButton("Import…", page)
        self.import_button.setObjectName("import_button")
        self.import_button.setToolTip("Import CSV, TSV, JSONL or plain text with a preview")
        self.import_button.clicked.connect(lambda: self.import_dialog())
        self.export_button = QPushButton("Export…", page)
        self.export_button.setObjectName("export_button")
        self.export_button.setToolTip("Export as OpenAI, ShareGPT, Alpaca, JSONL or CSV, "
                                      "with a data card")
        self.export_button.clicked.connect(self.export_requested)
        self.split_button = QPushButton("Split…", page)
        self.split_button.setObjectName("split_button")
        self.split_button.setToolTip("Assign train / val / test splits at random (seeded)")
        self.split_button.clicked.connect(self.split_requested)
        self.relabel_button = QToolButton(page)
        self.relabel_button.setObjectName("relabel_button")
        self.relabel_button.setText("Set label ▾")
        self.relabel_button.setToolTip("Label the selected examples (keys 1–9; 0 clears)")
        self.relabel_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.relabel_menu = QMenu(self.relabel_button)
        self.relabel_menu.aboutToShow.connect(self._fill_relabel_menu)
        self.relabel_button.setMenu(self.relabel_menu)
        self.delete_button = QPushButton("Delete", page)
        self.delete_button.setObjectName("delete_examples")
        self.delete_button.setToolTip("Delete the selected examples (Delete; Ctrl+Z undoes)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.undo_button = QPushButton("Undo", page)
        self.undo_button.setObjectName("undo_button")
        self.undo_button.clicked.connect(self.undo)
        self.duplicates_button = QPushButton("Duplicates", page)
        self.duplicates_button.setObjectName("duplicates_button")
        self.duplicates_button.setToolTip(
            "Select the later copies of texts that occur more than once")
        self.duplicates_button.clicked.connect(self.select_duplicates)
        self.near_empty_button = QPushButton("Near-empty", page)
        self.near_empty_button.setObjectName("near_empty_button")
        self.near_empty_button.setToolTip("Select the examples with (almost) no text")
        self.near_empty_button.clicked.connect(self.select_near_empty)
        for w in (self.import_button, self.export_button, self.split_button,
                  self.relabel_button, self.delete_button, self.undo_button,
                  self.duplicates_button, self.near_empty_button):
            actions.addWidget(w)
        self.status = QLabel("", page)
        self.status.setObjectName("datasets_status")
        actions.addWidget(self.status, 1)
        layout.addLayout(actions)
        return page

    def _build_details(self, parent: QWidget) -> QWidget:
        pane = QWidget(parent)
        pane.setMinimumWidth(200)
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(6, 0, 0, 0)
        self.details_title = QLabel("Select an example to see it whole.", pane)
        self.details_title.setObjectName("details_title")
        self.details_title.setWordWrap(True)
        layout.addWidget(self.details_title)
        self.details_text = QPlainTextEdit(pane)
        self.details_text.setObjectName("details_text")
        self.details_text.setReadOnly(True)
        layout.addWidget(self.details_text, 1)
        return pane

    def _build_model_pane(self, parent: QWidget) -> QWidget:
        page = QWidget(parent)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(6, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Classifier:", page))
        self.classifier_box = QComboBox(page)
        self.classifier_box.setObjectName("classifier_box")
        self.classifier_box.setMinimumContentsLength(14)
        self.classifier_box.setToolTip(
            "A classifier built from this data set's labels, or one saved in Classify")
        row.addWidget(self.classifier_box)
        self.prelabel_button = QPushButton("Pre-label", page)
        self.prelabel_button.setObjectName("prelabel_button")
        self.prelabel_button.setToolTip(
            "Let the model suggest a label for the unlabelled examples shown")
        self.prelabel_button.clicked.connect(self.prelabel)
        self.evaluate_button = QPushButton("Evaluate", page)
        self.evaluate_button.setObjectName("evaluate_button")
        self.evaluate_button.setToolTip("Classify the test split and score the classifier")
        self.evaluate_button.clicked.connect(self.evaluate_test_split)
        self.cancel_button = QPushButton("Cancel", page)
        self.cancel_button.setObjectName("run_cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(page)
        self.progress.setObjectName("run_progress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        for w in (self.prelabel_button, self.evaluate_button, self.cancel_button):
            row.addWidget(w)
        row.addWidget(self.progress, 1)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.accept_over_button = QPushButton("Accept suggestions over", page)
        self.accept_over_button.setObjectName("accept_over_button")
        self.accept_over_button.setToolTip(
            "Label every unlabelled example whose suggestion is at least this confident")
        self.accept_threshold = QDoubleSpinBox(page)
        self.accept_threshold.setObjectName("accept_threshold")
        self.accept_threshold.setRange(0, 100)
        self.accept_threshold.setDecimals(0)
        self.accept_threshold.setSingleStep(5)
        self.accept_threshold.setValue(90)
        self.accept_threshold.setSuffix(" %")
        self.accept_over_button.clicked.connect(
            lambda: self.accept_suggestions_over(self.accept_threshold.value() / 100))
        row.addWidget(self.accept_over_button)
        row.addWidget(self.accept_threshold)
        self.run_status = QLabel("", page)
        self.run_status.setObjectName("run_status")
        row.addWidget(self.run_status, 1)
        self.model_note = QLabel("", page)
        self.model_note.setObjectName("datasets_model_note")
        self.model_note.setStyleSheet("QLabel { color: palette(mid); }")
        row.addWidget(self.model_note)
        layout.addLayout(row)

        self.tabs = QTabWidget(page)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_evaluation(self.tabs), "Evaluation")
        self.tabs.addTab(self._build_history(self.tabs), "History")
        layout.addWidget(self.tabs, 1)
        return page

    def _build_evaluation(self, parent: QWidget) -> QWidget:
        self.report_panel = ReportPanel(
            "Evaluate a model and classifier on the test split: accuracy, macro-F1, "
            "per-label precision and recall, and a confusion matrix.", parent)
        self.save_png_button = QPushButton("Save PNG…", self.report_panel)
        self.save_png_button.setObjectName("save_png")
        self.save_png_button.setToolTip("Save the confusion matrix as a picture")
        self.save_png_button.clicked.connect(self.save_png_requested)
        self.report_panel.head.addWidget(self.save_png_button)
        self.eval_summary = self.report_panel.summary
        self.per_label, self.confusion = self.report_panel.per_label, self.report_panel.confusion
        return self.report_panel

    def _build_history(self, parent: QWidget) -> QWidget:
        page = QWidget(parent)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 4, 0, 0)
        self.history = EvalHistoryModel(self)
        self.history_table = QTableView(page)
        self.history_table.setObjectName("eval_history")
        self.history_table.setModel(self.history)
        self.history_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.history_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.setWordWrap(False)
        self.history_table.verticalHeader().setVisible(False)
        header = self.history_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.history_table.setToolTip("Every evaluation of this data set; select one to see "
                                      "its report and confusion matrix")
        self.history_table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.show_run(cur.row()) if cur.isValid() else None)
        layout.addWidget(self.history_table, 1)
        return page

    def showEvent(self, event: QShowEvent) -> None:
        # Other tabs add examples (Classify's review) and classifiers: catch up.
        super().showEvent(event)
        if not event.spontaneous():
            self.refresh_classifiers()
            self.refresh_datasets()

    # messages ---------------------------------------------------------------------------
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
        if loaded is None:
            self.model_note.setText("No model is ready.")
        else:
            self.model_note.setText(f"Model: {self._model_name()}")
        self._update_controls()

    def _model_name(self) -> str:
        if self.model is not None:
            return self.model.name
        return self.loaded.name if self.loaded is not None else ""

    # data sets --------------------------------------------------------------------------
    def refresh_datasets(self, select: str | None = None) -> None:
        """Reread the list of data sets; keep (or move to ``select``) the current one."""
        current = select or (self.dataset.name if self.dataset is not None else None)
        items = [(ds, self.datasets.count(ds)) for ds in self.datasets.all()]
        self.list_model.set_items(items)
        row = self.list_model.row_of(current) if current else -1
        if row < 0 and items:
            row = 0
        if row >= 0:
            self.list_view.setCurrentIndex(self.list_model.index(row, 0))
            # setCurrentIndex to the same row emits nothing after a reset: load it anyway.
            ds = self.list_model.dataset(row)
            if self.dataset is None or self.dataset.id != ds.id or self.dataset != ds:
                self._open(ds)
            else:
                self.reload()
        else:
            self._open(None)

    def _on_list_current(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        ds = self.list_model.dataset(index.row())
        if self.dataset is None or ds.id != self.dataset.id:
            self._open(ds)

    def select_dataset(self, name: str) -> bool:
        row = self.list_model.row_of(name)
        if row < 0:
            return False
        self.list_view.setCurrentIndex(self.list_model.index(row, 0))
        return True

    def _open(self, ds: Dataset | None) -> None:
        switching = ds is None or self.dataset is None or ds.id != self.dataset.id
        self.dataset = ds
        if switching:
            self._reset_filters()
            self.report = None
            self._clear_report()
        self._refill_filters()
        self.reload()
        self.refresh_history()
        self._update_controls()
        if switching:
            self.dataset_changed.emit(ds.name if ds is not None else "")

    def _reload_dataset(self) -> None:
        """Reread the current data set's row (its labels may have grown)."""
        if self.dataset is not None:
            found = self.datasets.find(self.dataset.name)
            self.dataset = found
            self._refill_filters()

    def create_dataset(self, name: str, kind: str = "labels",
                       labels: Sequence[str] = ()) -> Dataset | None:
        try:
            ds = self.datasets.create(name, kind=kind, labels=list(labels))
        except UserFacingError as exc:
            self.show_error(exc.message)
            return None
        self.clear_error()
        self.refresh_datasets(select=ds.name)
        return ds

    def new_dataset_requested(self) -> None:
        dialog = NewDatasetDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.name_edit.text().strip():
            self.create_dataset(dialog.name_edit.text(), str(dialog.kind_box.currentData()),
                                dialog.labels())

    def rename_dataset(self, new_name: str) -> bool:
        if self.dataset is None:
            return False
        try:
            self.datasets.rename_dataset(self.dataset, new_name)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return False
        self.clear_error()
        self.dataset = None
        self.refresh_datasets(select=" ".join(new_name.split()))
        return True

    def rename_requested(self) -> None:
        if self.dataset is None:
            return
        name, ok = QInputDialog.getText(self, "Rename data set", "New name:",
                                        text=self.dataset.name)
        if ok and name.strip() and name.strip() != self.dataset.name:
            self.rename_dataset(name)

    def delete_dataset(self) -> None:
        if self.dataset is None:
            return
        ds = self.dataset
        try:
            self.datasets.delete_dataset(ds)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self._undo.pop(ds.id, None)
        self.dataset = None
        self.refresh_datasets()
        self.status.setText(f"Deleted “{ds.name}”.")

    def delete_dataset_requested(self) -> None:
        if self.dataset is None:
            return
        count = self.datasets.count(self.dataset)
        answer = QMessageBox.question(
            self, "Delete data set",
            f"Delete “{self.dataset.name}” and its {count} examples? This cannot be undone.")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_dataset()

    # filters ----------------------------------------------------------------------------
    def _reset_filters(self) -> None:
        widgets: list[QObject] = [self.label_filter, self.split_filter, self.source_filter,
                                  self.unlabelled_box, self.disagreement_box, self.search_box]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            self.label_filter.setCurrentIndex(0)
            self.split_filter.setCurrentIndex(0)
            self.source_filter.setCurrentIndex(0)
            self.unlabelled_box.setChecked(False)
            self.disagreement_box.setChecked(False)
            self.search_box.clear()
        finally:
            for w, b in zip(widgets, blocked, strict=True):
                w.blockSignals(b)
        self._search_timer.stop()

    def clear_filters(self) -> None:
        self._reset_filters()
        self.label_filter.setEnabled(True)
        self.reload()

    def _refill_filters(self) -> None:
        labels = self.dataset.labels if self.dataset is not None else []
        sources: list[str] = []
        if self.dataset is not None:
            sources = [str(s) for s in self.datasets.stats(self.dataset).per_source]
        for box, items, all_text in ((self.label_filter, labels, "All labels"),
                                     (self.source_filter, sources, "All sources")):
            current = box.currentData()
            blocked = box.blockSignals(True)
            try:
                box.clear()
                box.addItem(all_text, ANY)
                for n, item in enumerate(items, start=1):
                    box.addItem(f"{n}: {item}" if box is self.label_filter and n <= 9
                                else item, item)
                at = box.findData(current) if current else 0
                box.setCurrentIndex(max(at, 0))
            finally:
                box.blockSignals(blocked)

    def _filters_changed(self) -> None:
        self.label_filter.setEnabled(not self.unlabelled_box.isChecked())
        self.reload()

    def set_label_filter(self, label: str) -> None:
        self.label_filter.setCurrentIndex(max(self.label_filter.findData(label), 0))

    def set_split_filter(self, split: str) -> None:
        self.split_filter.setCurrentIndex(max(self.split_filter.findData(split), 0))

    def set_source_filter(self, source: str) -> None:
        self.source_filter.setCurrentIndex(max(self.source_filter.findData(source), 0))

    def set_search(self, text: str) -> None:
        """Search now (the box otherwise waits for typing to pause)."""
        self.search_box.setText(text)
        self._search_timer.stop()
        self.reload()

    def _count_clicked(self, link: str) -> None:
        kind, _, value = link.partition(":")
        if kind == "label":
            self.unlabelled_box.setChecked(False)
            self.set_label_filter(value)
        elif kind == "split":
            self.set_split_filter(value)
        elif kind == "unlabelled":
            self.unlabelled_box.setChecked(True)

    def query_kwargs(self) -> dict[str, Any]:
        unlabelled = self.unlabelled_box.isChecked()
        return {
            "label": None if unlabelled else (self.label_filter.currentData() or None),
            "unlabelled": unlabelled,
            "split": self.split_filter.currentData() or None,
            "source": self.source_filter.currentData() or None,
            "disagreement": self.disagreement_box.isChecked(),
            "search": self.search_box.text().strip() or None,
        }

    # the table ------------------------------------------------------------------------
    def reload(self, select_ids: Sequence[str] | None = None) -> None:
        """Run the current query again; keep the selection (or select ``select_ids``)."""
        keep = list(select_ids) if select_ids is not None else [
            e.id for e in self.selected_examples()]
        current = self._current_example()
        self._flush_suggestions()  # so that the rows read back carry them
        if self.dataset is None:
            self.examples.clear()
            self._update_counts()
            return
        try:
            rows = self.datasets.query(self.dataset, limit=ROW_LIMIT, **self.query_kwargs())
        except UserFacingError as exc:
            # e.g. a search the full-text index cannot parse: say so, show nothing
            self.show_error(exc.message)
            rows = []
        self.examples.set_rows(rows, self.dataset.labels)
        self._more = (self.datasets.query_count(self.dataset, **self.query_kwargs())
                      if len(rows) >= ROW_LIMIT else len(rows))
        current_id = keep[0] if select_ids is not None and keep else (
            current.id if current is not None else None)
        self.select_ids(keep, current_id=current_id)
        self._update_counts()
        self._update_controls()

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

    def _next_id_after(self, rows: Sequence[int]) -> tuple[str | None, int]:
        """The example after the last of ``rows`` (where the cursor goes next), and that
        row number (for when it is gone after the refresh)."""
        if not rows:
            return None, 0
        after = max(rows) + 1
        if after < self.examples.rowCount():
            return self.examples.example(after).id, after
        return None, max(rows)

    def _move_after(self, next_id: str | None, fallback_row: int, removed: int = 0) -> None:
        if next_id is not None and self.examples.row_of(next_id) >= 0:
            self.select_row(self.examples.row_of(next_id))
        elif self.examples.rowCount():
            self.select_row(min(max(fallback_row - removed, 0), self.examples.rowCount() - 1))

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

    def _update_counts(self) -> None:
        if self.dataset is None:
            self.counts.setText("No data set yet: create one (New…) or import a file.")
            return
        stats = self.datasets.stats(self.dataset)
        shown = self.examples.rowCount()
        parts = [f"<b>{stats.total}</b> examples"]
        if self._more > shown:
            parts[0] += f" (the first {shown} of {self._more} matching shown: filter more)"
        elif shown != stats.total:
            parts[0] += f" ({shown} shown)"
        if self.dataset.kind == "labels":
            parts.append(f"{stats.labelled} labelled · "
                         f"<a href='unlabelled:'>{stats.unlabelled} unlabelled</a>")
            labels = [*self.dataset.labels,
                      *[k for k in stats.per_label if k and k not in self.dataset.labels]]
            chips = []
            for n, lab in enumerate(labels):
                colour = label_colour(n).name()
                chips.append(f"<span style='color:{colour}'>■</span> "
                             f"<a href='label:{_escape(lab)}'>{_escape(lab)}</a> "
                             f"{stats.per_label.get(lab, 0)}")
            if chips:
                parts.append(" ".join(chips))
        splits = [f"<a href='split:{s}'>{s}</a> {stats.per_split.get(s, 0)}" for s in SPLITS
                  if stats.per_split.get(s)]
        unsplit = stats.total - sum(stats.per_split.get(s, 0) for s in SPLITS)
        if splits:
            if unsplit:
                splits.append(f"<a href='split:{UNASSIGNED}'>{UNASSIGNED}</a> {unsplit}")
            parts.append(" · ".join(splits))
        elif stats.total:
            parts.append("no splits yet (Split…)")
        self.counts.setText(" &nbsp;|&nbsp; ".join(parts))

    def _update_controls(self) -> None:
        ds = self.dataset
        have = ds is not None
        labels = have and ds is not None and ds.kind == "labels"
        busy = self.runner.busy
        selected = bool(self.selected_rows())
        self.rename_button.setEnabled(have)
        self.delete_dataset_button.setEnabled(have and not busy)
        self.export_button.setEnabled(have)
        self.split_button.setEnabled(have and not busy)
        # Labelling goes on while the model works; only the data set stays put.
        self.relabel_button.setEnabled(labels and selected)
        self.delete_button.setEnabled(selected)
        steps = self._undo.get(ds.id, []) if ds is not None else []
        self.undo_button.setEnabled(bool(steps))
        self.undo_button.setToolTip(f"Undo: {steps[-1].what} (Ctrl+Z)" if steps
                                    else "Nothing to undo")
        self.duplicates_button.setEnabled(have)
        self.near_empty_button.setEnabled(have)
        ready = self.loaded is not None
        self.prelabel_button.setEnabled(labels and ready and not busy)
        self.evaluate_button.setEnabled(labels and ready and not busy)
        self.cancel_button.setEnabled(busy and not self.runner.cancelling)
        self.accept_over_button.setEnabled(labels and not busy)
        self.classifier_box.setEnabled(not busy)
        self.save_png_button.setEnabled(bool(self.confusion.labels))
        self.list_view.setEnabled(not busy)

    # labelling --------------------------------------------------------------------------
    def label_key(self, n: int) -> None:
        """Key ``n``: 1-9 label the selected examples with the nth label, 0 clears."""
        if self.dataset is None:
            return
        if n == 0:
            self.set_label_selected(None)
            return
        labels = self.dataset.labels
        if n > len(labels):
            self.show_error(f"There is no label {n}: this data set has "
                            f"{len(labels)} label{'s' if len(labels) != 1 else ''}"
                            + (f" ({', '.join(labels)})." if labels else
                               "; add one with Set label ▸ New label…"))
            return
        self.set_label_selected(labels[n - 1])

    def set_label_selected(self, label: str | None) -> int:
        """Label (or, with None, unlabel) the selected examples; undoable. The cursor then
        moves to the example after them."""
        if self.dataset is None:
            return 0
        rows = self.selected_rows()
        if not rows:
            self.show_error("Select one or more examples first.")
            return 0
        if self.dataset.kind != "labels":
            self.show_error("Chat examples have no labels.")
            return 0
        chosen = [self.examples.example(r) for r in rows]
        return self._apply_labels({e.id: (label, "person") for e in chosen}, rows,
                                  "clear the label of" if label is None else f"label {label}")

    def _apply_labels(self, labels: dict[str, tuple[str | None, str]], rows: Sequence[int],
                      what: str) -> int:
        """Set each example's (label, labelled by), one call per distinct pair, in one
        transaction; one undo step. The cursor moves to the example after ``rows``."""
        assert self.dataset is not None
        groups: dict[tuple[str | None, str], list[str]] = {}
        for eid, pair in labels.items():
            groups.setdefault(pair, []).append(eid)
        next_id, fallback = self._next_id_after(rows)
        before: list[Example] = []
        try:
            with self.db.atomic():
                for (lab, by), ids in groups.items():
                    before.extend(self.datasets.set_label(ids, lab, labelled_by=by))
        except UserFacingError as exc:
            self.show_error(exc.message)
            return 0
        self.clear_error()
        n = len(labels)
        text = f"{what} {n} example{'s' if n != 1 else ''}"
        self._push_undo(UndoStep("label", before, text))
        self._reload_dataset()  # a new label joins the label set
        shown_before = self.examples.rowCount()
        self.reload(select_ids=[])
        removed = shown_before - self.examples.rowCount()
        self._move_after(next_id, fallback, removed if next_id is None else 0)
        self.status.setText(text[0].upper() + text[1:] + ". Ctrl+Z undoes.")
        self._focus_table()
        self.labelled.emit(n)
        return n

    def accept_selected_suggestions(self) -> int:
        """Give the selected examples the label the model suggested (the person agrees)."""
        if self.dataset is None:
            return 0
        rows = self.selected_rows()
        chosen: dict[str, tuple[str | None, str]] = {
            e.id: (e.model_label, "person") for e in (self.examples.example(r) for r in rows)
            if e.model_label is not None}
        if not chosen:
            self.show_error("The selected examples have no model suggestion to accept.")
            return 0
        return self._apply_labels(chosen, rows, "accept the suggestion for")

    def accept_suggestions_over(self, threshold: float) -> int:
        """Label every unlabelled example of the data set whose suggestion is at least
        ``threshold`` confident with that suggestion; one undo step. Nobody looked at
        each of them, so the model is recorded as the labeller."""
        if self.dataset is None or self.runner.busy:
            return 0
        todo: dict[str, tuple[str | None, str]] = {
            e.id: (e.model_label, f"model:{e.model_name or 'unknown'}")
            for e in self.datasets.query(self.dataset, unlabelled=True)
            if e.model_label is not None and (e.model_confidence or 0.0) >= threshold}
        if not todo:
            self.show_error(f"No unlabelled example has a suggestion of {threshold:.0%} or "
                            "more.")
            return 0
        return self._apply_labels(todo, self.selected_rows(),
                                  f"accept suggestions over {threshold:.0%} for")

    def _fill_relabel_menu(self) -> None:
        menu = self.relabel_menu
        menu.clear()
        labels = self.dataset.labels if self.dataset is not None else []
        for n, lab in enumerate(labels, start=1):
            action = menu.addAction(lab, partial(self.set_label_selected, lab))
            if n <= 9:
                action.setShortcut(str(n))
        menu.addSeparator()
        menu.addAction("New label…", self._new_label_requested)
        clear = menu.addAction("Clear the label", lambda: self.set_label_selected(None))
        clear.setShortcut("0")

    def _new_label_requested(self) -> None:
        name, ok = QInputDialog.getText(self, "New label", "Label:")
        if ok and name.strip():
            self.set_label_selected(" ".join(name.split()))

    def delete_selected(self) -> int:
        """Delete the selected examples; undoable."""
        if self.dataset is None:
            return 0
        rows = self.selected_rows()
        if not rows:
            self.show_error("Select one or more examples first.")
            return 0
        ids = [self.examples.example(r).id for r in rows]
        next_id, _fallback = self._next_id_after(rows)
        try:
            deleted = self.datasets.delete_examples(ids)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return 0
        self.clear_error()
        self._forget_in_run({e.id for e in deleted})
        n = len(deleted)
        text = f"deleted {n} example{'s' if n != 1 else ''}"
        self._push_undo(UndoStep("delete", list(deleted), text))
        self.reload(select_ids=[])
        # The example after them, else the one now where the first of them was.
        self._move_after(next_id, min(rows))
        self.status.setText(f"{text[0].upper()}{text[1:]}. Ctrl+Z brings "
                            f"{'them' if n != 1 else 'it'} back.")
        self._refresh_list_counts()
        self._focus_table()
        return n

    def _forget_in_run(self, ids: set[str]) -> None:
        """Deleted while a pre-label run goes on: no suggestion is written for them."""
        for eid in ids:
            self._pending.pop(eid, None)
        self.run_ids = ["" if eid in ids else eid for eid in self.run_ids]

    def _push_undo(self, step: UndoStep) -> None:
        assert self.dataset is not None
        stack = self._undo.setdefault(self.dataset.id, [])
        stack.append(step)
        del stack[:-UNDO_DEPTH]
        self._update_controls()

    def undo(self) -> bool:
        """Put back the rows the last label or delete action changed."""
        if self.dataset is None:
            return False
        stack = self._undo.get(self.dataset.id, [])
        if not stack:
            self.status.setText("Nothing to undo.")
            return False
        step = stack.pop()
        try:
            self.datasets.restore_examples(step.before)
        except UserFacingError as exc:
            stack.append(step)
            self.show_error(exc.message)
            return False
        self.clear_error()
        ids = [e.id for e in step.before]
        self.reload(select_ids=ids)
        self.status.setText(f"Undid: {step.what}.")
        if step.kind == "delete":
            self._refresh_list_counts()
        self._update_controls()
        self._focus_table()
        return True

    def _focus_table(self) -> None:
        """Back to the table after a button or a menu, so the keys go on working."""
        if self.isVisible() and not self.table.hasFocus():
            self.table.setFocus(Qt.FocusReason.OtherFocusReason)

    def undo_steps(self) -> list[UndoStep]:
        return list(self._undo.get(self.dataset.id, [])) if self.dataset is not None else []

    def _refresh_list_counts(self) -> None:
        if self.dataset is None:
            return
        row = self.list_model.row_of(self.dataset.name)
        if row >= 0:
            items = list(self.list_model.items)
            items[row] = (items[row][0], self.datasets.count(self.dataset))
            # Same rows, new counts: tell the view without resetting its selection.
            self.list_model.items = items
            index = self.list_model.index(row, 0)
            self.list_model.dataChanged.emit(index, index)

    # quality ----------------------------------------------------------------------------
    def select_duplicates(self) -> int:
        """Show every example and select the later copies of repeated texts."""
        if self.dataset is None:
            return 0
        groups = quality.find_duplicates(self.datasets.examples(self.dataset))
        extras = [eid for group in groups for eid in group[1:]]
        if not extras:
            self.status.setText("No duplicates.")
            return 0
        self._reset_filters()
        self.label_filter.setEnabled(True)
        self.reload(select_ids=extras)
        self.status.setText(
            f"{len(groups)} text{'s' if len(groups) != 1 else ''} occur more than once: "
            f"selected the {len(extras)} later cop{'ies' if len(extras) != 1 else 'y'} "
            "(Delete removes them).")
        return len(extras)

    def select_near_empty(self) -> int:
        """Show every example and select those with (almost) no text."""
        if self.dataset is None:
            return 0
        ids = quality.find_near_empty(self.datasets.examples(self.dataset))
        if not ids:
            self.status.setText("No near-empty examples.")
            return 0
        self._reset_filters()
        self.label_filter.setEnabled(True)
        self.reload(select_ids=ids)
        self.status.setText(f"Selected {len(ids)} near-empty example"
                            f"{'s' if len(ids) != 1 else ''}.")
        return len(ids)

    # splits -----------------------------------------------------------------------------
    def assign_splits(self, *, seed: int = 0,
                      fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                      overwrite: bool = False) -> bool:
        if self.dataset is None:
            return False
        try:
            stats = assign_splits(self.datasets, self.dataset, seed=seed, fractions=fractions,
                                                overwrite=overwrite)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return False
        self.clear_error()
        self.reload()
        self.status.setText("Splits: " + ", ".join(
            f"{s} {stats.per_split.get(s, 0)}" for s in SPLITS) + ".")
        return True

    def split_requested(self) -> None:
        dialog = SplitDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.assign_splits(seed=dialog.seed.value(), fractions=dialog.fractions(),
                               overwrite=dialog.overwrite.isChecked())

    # import -----------------------------------------------------------------------------
    def import_dialog(self, path: str | None = None) -> ImportDialog:
        """Open the import dialog (window-modal, not blocking); with ``path``, preview it."""
        dialog = ImportDialog(self.db, self.dataset.name if self.dataset else None, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.imported.connect(self._on_imported)
        dialog.open()
        if path is not None:
            dialog.open_file(path)
        return dialog

    def _on_imported(self, result: Any) -> None:
        name = result.dataset.name if hasattr(result.dataset, "name") else str(result.dataset)
        self.clear_error()
        self.dataset = None  # its labels may have grown: open it afresh
        self.refresh_datasets(select=name)
        skipped = (f" ({result.skipped_blank} blank line"
                   f"{'s' if result.skipped_blank != 1 else ''} skipped)"
                   if result.skipped_blank else "")
        self.status.setText(f"Imported {result.added} example"
                            f"{'s' if result.added != 1 else ''} into “{name}”{skipped}.")
        self.imported.emit(result)

    # export -----------------------------------------------------------------------------
    def export_requested(self) -> None:
        if self.dataset is None:
            return
        dialog = ExportDialog(self.dataset.kind, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        fmt = str(dialog.format_box.currentData())
        split = str(dialog.split_box.currentData())
        suffix = EXPORT_SUFFIX.get(fmt, "jsonl")
        safe = safe_file_stem(self.dataset.name, "dataset")
        stem = safe if split == "all" else f"{safe}-{split}"
        # "Reviews.csv", "Reviews-test.jsonl", "Reviews.openai.jsonl"
        default = f"{stem}.{fmt}" if fmt == suffix else f"{stem}.{fmt}.{suffix}"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export data set", default,
            "CSV (*.csv)" if suffix == "csv" else "JSON Lines (*.jsonl)")
        if path:
            self.export_to(path, fmt, split, card=dialog.card.isChecked(),
                           include_unlabelled=dialog.unlabelled.isChecked())

    def export_to(self, path: str, fmt: str, split: str = "all", *, card: bool = False,
                  include_unlabelled: bool = False) -> bool:
        """Write the data set (or one split) in ``fmt``; the text is built here, where the
        database lives, and written on the thread pool. With ``card``, a data card goes
        next to it as ``<name>.md``."""
        if self.dataset is None:
            return False
        try:
            text = formats.export(self.db, self.dataset.name, fmt, split=split,
                                  include_unlabelled=include_unlabelled)
            card_text = formats.data_card(self.db, self.dataset.name) if card else None
        except UserFacingError as exc:
            self.show_error(exc.message)
            return False
        target = Path(path)
        card_path = target.with_suffix(".md") if card_text is not None else None
        if card_path == target:
            card_path = target.with_name(target.name + ".card.md")
        lines = text.count("\n")

        def work() -> None:
            target.write_text(text, encoding="utf-8", newline="")
            if card_path is not None and card_text is not None:
                card_path.write_text(card_text, encoding="utf-8")

        def then(_result: Any, error: str) -> None:
            if error:
                self.show_error(error)
                return
            extra = f" and its data card to {card_path.name}" if card_path else ""
            self.status.setText(f"Exported {fmt} ({lines} lines) to {target.name}{extra}.")
            self.exported.emit(str(target))

        self._tasks.start(work, f"write {target.name}", then)
        return True

    # pre-labelling and evaluation on the engine -----------------------------------------
    def refresh_classifiers(self) -> None:
        current = self.classifier_box.currentData()
        blocked = self.classifier_box.blockSignals(True)
        try:
            self.classifier_box.clear()
            self.classifier_box.addItem("This data set's labels", OWN_LABELS)
            self.classifier_box.setItemData(
                0, "A zero-shot classifier: the data set's labels, no instructions",
                Qt.ItemDataRole.ToolTipRole)
            for saved in self.classifiers.list():
                self.classifier_box.addItem(f"Saved: {saved.name}", saved.name)
            at = self.classifier_box.findData(current) if current else 0
            self.classifier_box.setCurrentIndex(max(at, 0))
        finally:
            self.classifier_box.blockSignals(blocked)

    def classifier_spec(self) -> ClassifierSpec | None:
        """The chosen classifier, checked; None (with a message) when it cannot be built."""
        if self.dataset is None:
            return None
        name = self.classifier_box.currentData()
        try:
            if name:
                return ClassifierSpec.from_json(self.classifiers.get(str(name)).spec)
            return ClassifierSpec(labels=tuple(Label(lab) for lab in self.dataset.labels)
                                  ).validate()
        except UserFacingError as exc:
            self.show_error(f"Cannot build the classifier: {exc.message}")
            return None

    def _ready_to_run(self) -> bool:
        if self.runner.busy:
            return False
        if self.dataset is None or self.dataset.kind != "labels":
            self.show_error("Pick a data set of labelled texts first.")
            return False
        if self.loaded is None:
            self.show_error("No model is loaded yet. Pick one in the model list above.")
            return False
        return True

    def prelabel(self) -> bool:
        """Ask the model for a label for every unlabelled example shown."""
        if not self._ready_to_run():
            return False
        spec = self.classifier_spec()
        if spec is None:
            return False
        assert self.dataset is not None
        foreign = [lab for lab in spec.label_names if lab not in self.dataset.labels]
        if self.dataset.labels and foreign:
            self.show_error(
                f"The classifier's labels {', '.join(foreign[:8])} are not labels of "
                f"“{self.dataset.name}” ({', '.join(self.dataset.labels)}). Pick a "
                "classifier with the data set's labels.")
            return False
        todo = [e for e in self.examples.rows if e.label is None and (e.text or "").strip()]
        if not todo:
            self.show_error("No unlabelled examples are shown: tick “Unlabelled” or clear "
                            "the filters.")
            return False
        return self._start("prelabel", spec, todo, [])

    def evaluate_test_split(self) -> bool:
        """Classify the labelled examples of the test split and score the classifier."""
        if not self._ready_to_run():
            return False
        assert self.dataset is not None
        spec = self.classifier_spec()
        if spec is None:
            return False
        rows = [e for e in self.datasets.query(self.dataset, split="test")
                if e.label is not None and (e.text or "").strip()]
        if not rows:
            self.show_error("The test split has no labelled examples: label some and press "
                            "Split… first.")
            return False
        unknown = sorted({str(e.label) for e in rows} - set(spec.label_names))
        if unknown:
            self.show_error(
                f"The test split uses labels this classifier does not know: "
                f"{', '.join(unknown[:8])}. Pick a classifier with these labels.")
            return False
        self._overlap = evaluation.few_shot_overlap(spec, rows)
        return self._start("evaluate", spec, rows, [str(e.label) for e in rows])

    def _start(self, mode: str, spec: ClassifierSpec, rows: Sequence[Example],
               gold: list[str]) -> bool:
        self.clear_error()
        self.mode = mode
        self.run_spec = spec
        self.run_ids = [e.id for e in rows]
        self.run_gold = gold
        self.run_model_name = self._model_name()
        self.run_classifier_name = str(self.classifier_box.currentData() or "") or None
        self._pending.clear()
        error = self.runner.try_start(spec, [e.text or "" for e in rows])
        if error:
            self.show_error(error)
            return False
        if mode == "prelabel":
            self._flush_timer.start()
        self._update_controls()
        return True

    def cancel(self) -> None:
        self.runner.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        elapsed = self.runner.elapsed()
        rate = done / elapsed if elapsed > 0 and done else 0.0
        self.run_status.setText(f"{rate:.1f} texts/s" if rate else "Working…")

    def _on_classified(self, index: int, prediction: Prediction) -> None:
        if self.mode != "prelabel":
            return
        if 0 <= index < len(self.run_ids) and self.run_ids[index] \
                and prediction.error is None and prediction.label is not None:
            eid = self.run_ids[index]
            self._pending[eid] = (prediction.label, float(prediction.confidence))
            row = self.examples.row_of(eid)
            if row >= 0:  # show it now; it is written with the next batch
                self.examples.update_example(replace(
                    self.examples.example(row), model_label=prediction.label,
                    model_confidence=float(prediction.confidence)))

    def _flush_suggestions(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            self.datasets.set_model_suggestions(
                [(eid, label, confidence) for eid, (label, confidence) in pending.items()],
                model_name=self.run_model_name)
        except UserFacingError as exc:
            self.show_error(exc.message)

    def _on_finished(self, predictions: list[Prediction], cancelled: bool,
                     seconds: float) -> None:
        self._flush_timer.stop()
        done = len(predictions)
        self.progress.setValue(min(done, self.progress.maximum()))
        if self.mode == "prelabel":
            # The final predictions (batch-calibrated) replace the live ones.
            for i, pred in enumerate(predictions):
                if i < len(self.run_ids) and self.run_ids[i] and pred.error is None \
                        and pred.label is not None:
                    self._pending[self.run_ids[i]] = (pred.label, float(pred.confidence))
            self._flush_suggestions()
            failed = sum(1 for p in predictions if p.error)
            fails = f" · {failed} failed" if failed else ""
            if cancelled:
                self.run_status.setText(
                    f"Cancelled after {done} of {len(self.run_ids)}: their suggestions are "
                    f"kept{fails}.")
            else:
                self.run_status.setText(f"Suggested labels for {done} examples in "
                                        f"{seconds:.1f} s{fails}.")
            self.reload()
        elif cancelled:
            self.run_status.setText("The evaluation was cancelled: no scores.")
        else:
            self._finish_evaluation(predictions, seconds)
        self._update_controls()
        self.run_finished.emit(self.mode, cancelled)

    def _on_failed(self, message: str) -> None:
        self._flush_timer.stop()
        self._flush_suggestions()
        self.show_error(message)
        self._update_controls()
        self.run_finished.emit(self.mode, True)

    def _finish_evaluation(self, predictions: Sequence[Prediction], seconds: float) -> None:
        assert self.dataset is not None and self.run_spec is not None
        predicted = [p.label if p.label is not None else "" for p in predictions]
        try:
            report = evaluate(self.run_gold[: len(predicted)], predicted,
                              list(self.run_spec.label_names))
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        report.seconds = seconds
        report.texts_per_s = report.n / seconds if seconds > 0 else 0.0
        self.report = report
        try:
            run = evaluation.record_eval(
                self.db, self.dataset, model_name=self.run_model_name,
                classifier_spec=self.run_spec, report=report, split="test",
                classifier_name=self.run_classifier_name,
                model_id=self.model.id if self.model is not None else None,
                extra={"few_shot_overlap": self._overlap} if self._overlap else None)
        except UserFacingError as exc:
            self.show_error(f"Scored, but the run could not be kept: {exc.message}")
            run = None
        self.run_status.setText(f"Evaluated {report.n} texts in {seconds:.1f} s.")
        shown = report.to_json()
        if self._overlap:
            shown["few_shot_overlap"] = self._overlap
        self._show_report(shown, self.run_model_name, self.run_spec)
        self.refresh_history()
        if run is not None:
            for r, kept in enumerate(self.history.runs):
                if kept.id == run.id:
                    blocked = self.history_table.selectionModel().blockSignals(True)
                    try:
                        self.history_table.selectRow(r)
                    finally:
                        self.history_table.selectionModel().blockSignals(blocked)
            self.evaluated.emit(run)
        self.tabs.setCurrentIndex(0)

    def _show_report(self, report: dict[str, Any], model_name: str, spec: Any) -> None:
        labels = [str(x) for x in report.get("labels", [])]
        per_label = report.get("per_label", {})
        n = int(report.get("n", 0))
        rate = float(report.get("texts_per_s") or 0.0)
        speed = f" · {rate:.1f} texts/s" if rate else ""
        overlap = int(report.get("few_shot_overlap", 0))
        warning = (f"\n⚠ {overlap} of the texts are also the classifier's few-shot examples: "
                   "the score looks better than it is." if overlap else "")
        self.report_panel.show_report(
            f"Accuracy {float(report.get('accuracy', 0.0)):.1%} · macro-F1 "
            f"{float(report.get('macro_f1', 0.0)):.3f} · {n} texts{speed}\n"
            f"{model_name} · {spec_summary(spec)}{warning}",
            labels, per_label, report.get("confusion", []))
        self._update_controls()

    def _clear_report(self) -> None:
        self.report_panel.clear()

    def refresh_history(self) -> None:
        runs = evaluation.list_evals(self.db, self.dataset) if self.dataset is not None else []
        self.history.set_runs(runs)

    def show_run(self, row: int) -> None:
        """Show a kept run's report and confusion matrix."""
        if 0 <= row < self.history.rowCount():
            run = self.history.run(row)
            self._show_report(dict(run.report or {}), run.model_name, run.spec)
            self.tabs.setCurrentIndex(0)

    def save_png(self, path: str) -> bool:
        """Save the confusion matrix as it is drawn, as a PNG file."""
        if not self.confusion.labels:
            self.show_error("Evaluate first: there is no confusion matrix to save.")
            return False
        if not self.confusion.grab().save(path, "PNG"):
            self.show_error(f"Cannot write {Path(path).name}.")
            return False
        self.status.setText(f"Saved the confusion matrix to {Path(path).name}.")
        return True

    def save_png_requested(self) -> None:
        name = self.dataset.name if self.dataset is not None else "confusion"
        stem = safe_file_stem(name, "confusion")
        path, _ = QFileDialog.getSaveFileName(self, "Save the confusion matrix",
                                              f"{stem} confusion.png",
                                              "PNG image (*.png)")
        if path:
            self.save_png(path)


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&#39;").replace('"', "&quot;"))
