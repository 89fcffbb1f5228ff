"""The Classify workbench: set up labels, classify pasted or loaded texts on the engine
thread with live results, review them into a labelled data set, export, and evaluate."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal

from slmdesk.classify.evaluate import evaluate
from slmdesk.classify.spec import ClassifierSpec
from slmdesk.errors import UserFacingError
from slmdesk.store.models import ModelRepository
from slmdesk.ui.classify.layout import ClassifyLayout
from slmdesk.ui.classify.review import ResultsReview
from slmdesk.ui.classify.room import FOLD_BELOW
from slmdesk.ui.classify.saved import SavedClassifiers
from slmdesk.ui.classify.table_models import ANY_LABEL, EXPECTED_COLUMN, FAILED, NO_LABEL, ResultRow
from slmdesk.ui.classify.text_input import TextInput
from slmdesk.ui.common.forwarding import forward_to
from slmdesk.ui.common.model_tab import ModelTab
from slmdesk.ui.common.table_model import percent

if TYPE_CHECKING:
    from PySide6.QtWidgets import (
        QCheckBox,
        QDoubleSpinBox,
        QLabel,
        QPlainTextEdit,
        QPushButton,
    )

    from slmdesk.classify.classifier import Prediction
    from slmdesk.ui.classify.room import DetailsPlacement, FoldingInput
    from slmdesk.ui.classify.setup import SetupPanel
    from slmdesk.ui.classify.table_models import ResultsFilter, ResultsModel
    from slmdesk.ui.common.probability_bars import ProbabilityChart

log = logging.getLogger(__name__)


class ClassifyView(ModelTab):
    """The Classify tab. The window calls ``set_model`` whenever its model changes."""

    model_requested = Signal(str)  # a saved classifier's model id: "please load this one"
    input_loaded = Signal(str, int)  # path, number of texts
    run_finished = Signal(bool)  # cancelled

    # the widgets, built by the layout part
    details_widgets: tuple[QPlainTextEdit, ProbabilityChart]
    setup: SetupPanel
    run_button: QPushButton
    results: ResultsModel
    proxy: ResultsFilter
    min_confidence: QDoubleSpinBox
    mistakes_only: QCheckBox
    shown_label: QLabel
    chart: ProbabilityChart
    details_probs: QLabel
    details_notes: QLabel
    details_explanation: QLabel
    input_fold: FoldingInput
    details_place: DetailsPlacement

    def add_parts(self) -> ClassifyLayout:
        # Its parts: saved classifiers, the texts to classify, the review of results.
        self.saved = SavedClassifiers(self)
        self.text_input = TextInput(self)
        self.review = ResultsReview(self)
        self.models = ModelRepository(self.db)
        self.classifier_name: str | None = None
        self.saved_model_id: str | None = None
        # the run in progress
        self.mode = "classify"  # or "evaluate"
        self.run_labels: list[str] = []
        self.run_gold: list[str] | None = None
        self.run_total = 0
        self._run_seconds = 0.0
        self.eval_source = ""  # the labelled file an evaluation reads, in words
        # input read from a file
        self.file_path: str | None = None
        self.file_columns: list[str] = []
        self.file_column: str | None = None
        self.file_texts: list[str] = []
        return ClassifyLayout(self)

    def join_parts(self) -> None:
        self.start_runner(self.progress, self.status)
        self.runner.progressed.connect(self._on_progress)
        self.runner.classified.connect(self._on_classified)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.saved.refresh_saved()
        self.review.refresh_datasets()
        self.refill_label_choices()
        self.update_shown()

    # what the Train view asks of the tab; the rest of its API is its parts' own
    load_classifier = forward_to("saved", SavedClassifiers.load_classifier)

    # the model --------------------------------------------------------------------------
    def model_changed(self) -> None:
        self.saved.update_model_notes()

    def build_spec(self) -> ClassifierSpec | None:
        try:
            return self.setup.spec()
        except UserFacingError as exc:
            self.show_error(exc.message)
            return None

    # running ----------------------------------------------------------------------------
    def update_controls(self) -> None:
        busy = self.runner.busy
        idle = not busy and self.text_input.reading == 0
        ready = self.ready
        self.run_button.setEnabled(idle and ready)
        self.evaluate_button.setEnabled(idle and ready)
        self.cancel_button.setEnabled(busy and not self.runner.cancelling)
        self.text_input.set_idle(idle)
        self.run_button.setToolTip(
            "Classify the texts (Ctrl+Enter in the text box)" if ready
            else self.not_ready_text())

    def ready_to_run(self) -> bool:
        if self.runner.busy or self.text_input.reading:
            return False
        if not self.ready:
            self.say_not_ready()
            return False
        return True

    def run(self) -> None:
        """Classify the texts of the box (or of the opened file)."""
        if not self.ready_to_run():
            return
        spec = self.build_spec()
        if spec is None:
            return
        texts = (list(self.file_texts) if self.file_path is not None
                 else self.text_input.texts_from_box())
        if not texts:
            self.show_error("There is nothing to classify: paste texts (one per line) or "
                            "open a CSV/JSONL file.", until=self.text_input.texts.textChanged)
            return
        self.start_run(spec, texts, None)

    def start_run(self, spec: ClassifierSpec, texts: list[str], gold: list[str] | None,
                  *, eval_source: str = "") -> None:
        """Classify ``texts``; with ``gold`` (the labels of ``eval_source``), score them."""
        self.clear_error()
        self.eval_source = eval_source
        self.mode = "evaluate" if gold is not None else "classify"
        self.run_labels = list(spec.label_names)
        self.run_gold = gold
        self.run_total = len(texts)
        self.results.reset(self.run_labels)
        self.refill_label_choices()
        self.table.setColumnHidden(EXPECTED_COLUMN, gold is None)
        self.column_fitter.fit()
        self.mistakes_only.setChecked(False)
        self.mistakes_only.setVisible(gold is not None)
        self.review.note.setText("")
        self.tabs.setCurrentIndex(0)
        error = self.runner.try_start(spec, texts)
        if error:
            self.show_error(error)
        self.update_controls()

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
            if self.height() < FOLD_BELOW:  # a short window: the results take the height
                self.input_fold.fold()

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
        self.update_controls()
        self.update_shown()
        self.run_finished.emit(cancelled)

    def _on_failed(self, message: str) -> None:
        self.show_error(message)
        self.update_controls()
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
            f"{report.n} texts · {report.texts_per_s:.1f} texts/s\n{self.eval_source}",
            list(report.labels), report.per_label, report.confusion)
        self.tabs.setCurrentIndex(1)
        self.evaluated.emit(report)

    # results: filter and details --------------------------------------------------------
    def refill_label_choices(self) -> None:
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
        self.review.set_labels(self.run_labels)

    def set_label_filter(self, label: str) -> None:
        at = self.label_filter.findData(label)
        self.label_filter.setCurrentIndex(max(at, 0))

    def update_shown(self, *_args: Any) -> None:
        total, shown = self.results.rowCount(), self.proxy.rowCount()
        self.review.set_results_present(total > 0)
        self.shown_label.setText(f"{shown} of {total} shown" if shown != total
                                 else f"{total} result{'s' if total != 1 else ''}")

    def _current_result(self) -> ResultRow | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        source = self.proxy.mapToSource(index)
        return self.results.result(source.row()) if source.isValid() else None

    def show_details(self) -> None:
        row = self._current_result()
        if row is None:
            self.details_title.setText("Select a row to see its details.")
            for w in self.details_widgets:
                w.hide()
            self.details_probs.setText("")
            self.details_notes.setText("")
            self.details_explanation.setText("")
            return
        pred = row.prediction
        for w in self.details_widgets:
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

