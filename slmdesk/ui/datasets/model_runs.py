"""The Data sets tab's runs on the model: pre-labelling, and evaluation with its history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHeaderView,
    QPushButton,
    QTableView,
    QTabWidget,
    QWidget,
)

from slmdesk.classify.evaluate import evaluate
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.datasets import evaluation
from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import Example
from slmdesk.ui.common.file_names import safe_file_stem
from slmdesk.ui.common.flow_layout import FlowLayout, captioned
from slmdesk.ui.common.labels import ElidedLabel
from slmdesk.ui.common.metrics import ReportPanel
from slmdesk.ui.common.tab_frame import (
    QUIET_STYLE,
    cancel_and_progress,
    pane_column,
    percent_box,
    push_button,
    text_label,
)
from slmdesk.ui.datasets.table_models import EvalHistoryModel, spec_summary

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Prediction
    from slmdesk.ui.common.classify_run import ClassifyRun
    from slmdesk.ui.datasets.view import DatasetsView


OWN_LABELS = ""  # the classifier combo's "labels of this data set"


FLUSH_MS = 300  # live pre-label suggestions are written in batches this often


class ModelRuns(QObject):
    """Pre-label the unlabelled examples shown, or evaluate a classifier on the test split;
    keep, list and show the evaluation reports. It keeps the state of the run in progress
    and builds its pane; ``accept_over_requested(threshold)`` asks to accept the suggestions
    at least that confident."""

    accept_over_requested = Signal(float)

    def __init__(self, view: DatasetsView) -> None:
        super().__init__(view)
        self.view = view
        self.mode = "prelabel"  # or "evaluate"
        self.run_ids: list[str] = []  # "" where the example was deleted meanwhile
        self.run_gold: list[str] = []
        self.run_spec: ClassifierSpec | None = None
        self.run_model_name = ""
        self.run_classifier_name: str | None = None
        self._pending: dict[str, tuple[str, float]] = {}  # suggestions not yet written
        self._overlap = 0  # evaluated texts that are also the classifier's examples
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self.flush_suggestions)

    def follow(self, runner: ClassifyRun) -> None:
        """Show what the tab's engine runs report."""
        runner.progressed.connect(self._on_progress)
        runner.classified.connect(self._on_classified)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)

    def forget(self, ids: set[str]) -> None:
        """Deleted while a pre-label run goes on: no suggestion is written for them."""
        for eid in ids:
            self._pending.pop(eid, None)
        self.run_ids = ["" if eid in ids else eid for eid in self.run_ids]

    def build(self, parent: QWidget) -> QWidget:
        """The pane of the runs: the classifier, its buttons and progress, the evaluation
        report and the history of evaluations."""
        page, layout = pane_column(parent)
        row = FlowLayout()  # both rows wrap at narrow widths instead of widening the window
        self.classifier_box = QComboBox(page)
        self.classifier_box.setObjectName("classifier_box")
        self.classifier_box.setMinimumContentsLength(14)
        self.classifier_box.setToolTip(
            "A classifier built from this data set's labels, or one saved in Classify")
        row.addWidget(captioned("Classifier:", self.classifier_box, page))
        self.prelabel_button = push_button(
            "Pre-label", "Let the model suggest a label for the unlabelled examples shown", page,
            name="prelabel_button", clicked=self.prelabel)
        self.evaluate_button = push_button(
            "Evaluate", "Classify the test split and score the classifier", page,
            name="evaluate_button", clicked=self.evaluate_test_split)
        self.cancel_button, self.progress = cancel_and_progress(
            page, self.cancel, cancel_name="run_cancel", progress_name="run_progress")
        for w in (self.prelabel_button, self.evaluate_button, self.cancel_button):
            row.addWidget(w)
        row.addWidget(self.progress)
        layout.addLayout(row)
        row = FlowLayout()
        self.accept_over_button = QPushButton("Accept suggestions over", page)
        self.accept_over_button.setObjectName("accept_over_button")
        self.accept_over_button.setToolTip(
            "Label every unlabelled example whose suggestion is at least this confident")
        self.accept_threshold = percent_box(page, "accept_threshold", 90)
        self.accept_over_button.clicked.connect(
            lambda: self.accept_over_requested.emit(self.accept_threshold.value() / 100))
        row.addWidget(self.accept_over_button)
        row.addWidget(self.accept_threshold)
        self.run_status = ElidedLabel("", page)
        self.run_status.setObjectName("run_status")
        row.addWidget(self.run_status)
        self.model_note = text_label(page, "datasets_model_note", wrap=False,
                                          style=QUIET_STYLE)
        row.addWidget(self.model_note)
        layout.addLayout(row)

        self.tabs = QTabWidget(page)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_evaluation(self.tabs), "Evaluation")
        self.tabs.addTab(self._build_history(self.tabs), "History")
        layout.addWidget(self.tabs, 1)
        return page

    def update_controls(self, *, labels: bool, ready: bool, busy: bool) -> None:
        """Runs need a labels data set and a ready model, one at a time; the classifier
        stays put while one runs; a matrix shown can be saved."""
        self.prelabel_button.setEnabled(labels and ready and not busy)
        self.evaluate_button.setEnabled(labels and ready and not busy)
        self.cancel_button.setEnabled(busy and not self.view.runner.cancelling)
        self.accept_over_button.setEnabled(labels and not busy)
        self.classifier_box.setEnabled(not busy)
        self.save_png_button.setEnabled(bool(self.confusion.labels))

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
        self.per_label = self.report_panel.per_label
        self.confusion = self.report_panel.confusion
        return self.report_panel

    def _build_history(self, parent: QWidget) -> QWidget:
        page, layout = pane_column(parent, (0, 4, 0, 0))
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

    def refresh_classifiers(self) -> None:
        current = self.classifier_box.currentData()
        blocked = self.classifier_box.blockSignals(True)
        try:
            self.classifier_box.clear()
            self.classifier_box.addItem("This data set's labels", OWN_LABELS)
            self.classifier_box.setItemData(
                0, "A zero-shot classifier: the data set's labels, no instructions",
                Qt.ItemDataRole.ToolTipRole)
            for saved in self.view.classifiers.list():
                self.classifier_box.addItem(f"Saved: {saved.name}", saved.name)
            at = self.classifier_box.findData(current) if current else 0
            self.classifier_box.setCurrentIndex(max(at, 0))
        finally:
            self.classifier_box.blockSignals(blocked)

    def classifier_spec(self) -> ClassifierSpec | None:
        """The chosen classifier, checked; None (with a message) when it cannot be built."""
        if self.view.dataset is None:
            return None
        name = self.classifier_box.currentData()
        try:
            if name:
                return ClassifierSpec.from_json(self.view.classifiers.get(str(name)).spec)
            return ClassifierSpec(labels=tuple(Label(lab) for lab in self.view.dataset.labels)
                                  ).validate()
        except UserFacingError as exc:
            self.view.show_error(f"Cannot build the classifier: {exc.message}")
            return None

    def _ready_to_run(self) -> bool:
        if self.view.runner.busy:
            return False
        if self.view.dataset is None or self.view.dataset.kind != "labels":
            self.view.show_error("Pick a data set of labelled texts first.",
                                 until=self.view.dataset_changed)
            return False
        if not self.view.ready:
            self.view.say_not_ready()
            return False
        return True

    def prelabel(self) -> bool:
        """Ask the model for a label for every unlabelled example shown."""
        if not self._ready_to_run():
            return False
        spec = self.classifier_spec()
        if spec is None:
            return False
        assert self.view.dataset is not None
        foreign = [lab for lab in spec.label_names if lab not in self.view.dataset.labels]
        if self.view.dataset.labels and foreign:
            self.view.show_error(
                f"The classifier's labels {', '.join(foreign[:8])} are not labels of "
                f"“{self.view.dataset.name}” ({', '.join(self.view.dataset.labels)}). Pick a "
                "classifier with the data set's labels.")
            return False
        todo = [e for e in self.view.examples.rows if e.label is None and (e.text or "").strip()]
        if not todo:
            self.view.show_error("No unlabelled examples are shown: tick “Unlabelled” or clear "
                                 "the filters.", until=self.view.examples.modelReset)
            return False
        return self._start("prelabel", spec, todo, [])

    def evaluate_test_split(self) -> bool:
        """Classify the labelled examples of the test split and score the classifier."""
        if not self._ready_to_run():
            return False
        assert self.view.dataset is not None
        spec = self.classifier_spec()
        if spec is None:
            return False
        rows = [e for e in self.view.datasets.query(self.view.dataset, split="test")
                if e.label is not None and (e.text or "").strip()]
        if not rows:
            self.view.show_error("The test split has no labelled examples: label some and press "
                            "Split… first.")
            return False
        unknown = sorted({str(e.label) for e in rows} - set(spec.label_names))
        if unknown:
            self.view.show_error(
                f"The test split uses labels this classifier does not know: "
                f"{', '.join(unknown[:8])}. Pick a classifier with these labels.")
            return False
        self._overlap = evaluation.few_shot_overlap(spec, rows)
        return self._start("evaluate", spec, rows, [str(e.label) for e in rows])

    def _start(self, mode: str, spec: ClassifierSpec, rows: Sequence[Example],
               gold: list[str]) -> bool:
        self.view.clear_error()
        self.mode = mode
        self.run_spec = spec
        self.run_ids = [e.id for e in rows]
        self.run_gold = gold
        self.run_model_name = self.view.choice.name
        self.run_classifier_name = str(self.classifier_box.currentData() or "") or None
        self._pending.clear()
        error = self.view.runner.try_start(spec, [e.text or "" for e in rows])
        if error:
            self.view.show_error(error)
            return False
        if mode == "prelabel":
            self._flush_timer.start()
        self.view.update_controls()
        return True

    def cancel(self) -> None:
        self.view.runner.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        elapsed = self.view.runner.elapsed()
        rate = done / elapsed if elapsed > 0 and done else 0.0
        self.run_status.setText(f"{rate:.1f} texts/s" if rate else "Working…")

    def _on_classified(self, index: int, prediction: Prediction) -> None:
        if self.mode != "prelabel":
            return
        if 0 <= index < len(self.run_ids) and self.run_ids[index] \
                and prediction.error is None and prediction.label is not None:
            eid = self.run_ids[index]
            self._pending[eid] = (prediction.label, float(prediction.confidence))
            row = self.view.examples.row_of(eid)
            if row >= 0:  # show it now; it is written with the next batch
                self.view.examples.update_example(replace(
                    self.view.examples.example(row), model_label=prediction.label,
                    model_confidence=float(prediction.confidence)))

    def flush_suggestions(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            self.view.datasets.set_model_suggestions(
                [(eid, label, confidence) for eid, (label, confidence) in pending.items()],
                model_name=self.run_model_name)
        except UserFacingError as exc:
            self.view.show_error(exc.message)

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
            self.flush_suggestions()
            failed = sum(1 for p in predictions if p.error)
            fails = f" · {failed} failed" if failed else ""
            if cancelled:
                self.run_status.setText(
                    f"Cancelled after {done} of {len(self.run_ids)}: their suggestions are "
                    f"kept{fails}.")
            else:
                self.run_status.setText(f"Suggested labels for {done} examples in "
                                        f"{seconds:.1f} s{fails}.")
            self.view.reload()
        elif cancelled:
            self.run_status.setText("The evaluation was cancelled: no scores.")
        else:
            self._finish_evaluation(predictions, seconds)
        self.view.update_controls()
        self.view.run_finished.emit(self.mode, cancelled)

    def _on_failed(self, message: str) -> None:
        self._flush_timer.stop()
        self.flush_suggestions()
        self.view.show_error(message)
        self.view.update_controls()
        self.view.run_finished.emit(self.mode, True)

    def _finish_evaluation(self, predictions: Sequence[Prediction], seconds: float) -> None:
        assert self.view.dataset is not None and self.run_spec is not None
        predicted = [p.label if p.label is not None else "" for p in predictions]
        try:
            report = evaluate(self.run_gold[: len(predicted)], predicted,
                              list(self.run_spec.label_names))
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return
        report.seconds = seconds
        report.texts_per_s = report.n / seconds if seconds > 0 else 0.0
        self.view.report = report
        try:
            run = evaluation.record_eval(
                self.view.db, self.view.dataset, model_name=self.run_model_name,
                classifier_spec=self.run_spec, report=report, split="test",
                classifier_name=self.run_classifier_name,
                model_id=self.view.choice.model_id,
                extra={"few_shot_overlap": self._overlap} if self._overlap else None)
        except UserFacingError as exc:
            self.view.show_error(f"Scored, but the run could not be kept: {exc.message}")
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
            self.view.evaluated.emit(run)
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
        self.view.update_controls()

    def clear_report(self) -> None:
        self.report_panel.clear()

    def refresh_history(self) -> None:
        dataset = self.view.dataset
        runs = evaluation.list_evals(self.view.db, dataset) if dataset is not None else []
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
            self.view.show_error("Evaluate first: there is no confusion matrix to save.")
            return False
        if not self.confusion.grab().save(path, "PNG"):
            self.view.show_error(f"Cannot write {Path(path).name}.")
            return False
        self.view.status.setText(f"Saved the confusion matrix to {Path(path).name}.")
        return True

    def save_png_requested(self) -> None:
        name = self.view.dataset.name if self.view.dataset is not None else "confusion"
        stem = safe_file_stem(name, "confusion")
        path, _ = QFileDialog.getSaveFileName(self.view, "Save the confusion matrix",
                                              f"{stem} confusion.png",
                                              "PNG image (*.png)")
        if path:
            self.save_png(path)
