"""The Data sets tab's runs on the model: pre-labelling, and evaluation with its history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    Qt,
)
from PySide6.QtWidgets import (
    QFileDialog,
)

from slmdesk.classify.evaluate import evaluate
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.datasets import evaluation
from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import Example
from slmdesk.ui.common.file_names import safe_file_stem
from slmdesk.ui.datasets.table_models import (
    spec_summary,
)

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Prediction

if TYPE_CHECKING:
    from slmdesk.ui.datasets.view import DatasetsView


OWN_LABELS = ""  # the classifier combo's "labels of this data set"


FLUSH_MS = 300  # live pre-label suggestions are written in batches this often


class ModelRuns:
    """Pre-label the unlabelled examples shown, or evaluate a classifier on the test split;
    keep, list and show the evaluation reports."""

    def __init__(self, view: DatasetsView) -> None:
        self.view = view

    def refresh_classifiers(self) -> None:
        current = self.view.classifier_box.currentData()
        blocked = self.view.classifier_box.blockSignals(True)
        try:
            self.view.classifier_box.clear()
            self.view.classifier_box.addItem("This data set's labels", OWN_LABELS)
            self.view.classifier_box.setItemData(
                0, "A zero-shot classifier: the data set's labels, no instructions",
                Qt.ItemDataRole.ToolTipRole)
            for saved in self.view.classifiers.list():
                self.view.classifier_box.addItem(f"Saved: {saved.name}", saved.name)
            at = self.view.classifier_box.findData(current) if current else 0
            self.view.classifier_box.setCurrentIndex(max(at, 0))
        finally:
            self.view.classifier_box.blockSignals(blocked)

    def classifier_spec(self) -> ClassifierSpec | None:
        """The chosen classifier, checked; None (with a message) when it cannot be built."""
        if self.view.dataset is None:
            return None
        name = self.view.classifier_box.currentData()
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
            self.view.show_error("Pick a data set of labelled texts first.")
            return False
        if self.view.loaded is None:
            self.view.show_error("No model is loaded yet. Pick one in the model list above.")
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
                            "the filters.")
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
        self.view._overlap = evaluation.few_shot_overlap(spec, rows)
        return self._start("evaluate", spec, rows, [str(e.label) for e in rows])

    def _start(self, mode: str, spec: ClassifierSpec, rows: Sequence[Example],
               gold: list[str]) -> bool:
        self.view.clear_error()
        self.view.mode = mode
        self.view.run_spec = spec
        self.view.run_ids = [e.id for e in rows]
        self.view.run_gold = gold
        self.view.run_model_name = self.view.model_name()
        self.view.run_classifier_name = str(self.view.classifier_box.currentData() or "") or None
        self.view._pending.clear()
        error = self.view.runner.try_start(spec, [e.text or "" for e in rows])
        if error:
            self.view.show_error(error)
            return False
        if mode == "prelabel":
            self.view._flush_timer.start()
        self.view.update_controls()
        return True

    def cancel(self) -> None:
        self.view.runner.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        elapsed = self.view.runner.elapsed()
        rate = done / elapsed if elapsed > 0 and done else 0.0
        self.view.run_status.setText(f"{rate:.1f} texts/s" if rate else "Working…")

    def _on_classified(self, index: int, prediction: Prediction) -> None:
        if self.view.mode != "prelabel":
            return
        if 0 <= index < len(self.view.run_ids) and self.view.run_ids[index] \
                and prediction.error is None and prediction.label is not None:
            eid = self.view.run_ids[index]
            self.view._pending[eid] = (prediction.label, float(prediction.confidence))
            row = self.view.examples.row_of(eid)
            if row >= 0:  # show it now; it is written with the next batch
                self.view.examples.update_example(replace(
                    self.view.examples.example(row), model_label=prediction.label,
                    model_confidence=float(prediction.confidence)))

    def _flush_suggestions(self) -> None:
        if not self.view._pending:
            return
        pending, self.view._pending = self.view._pending, {}
        try:
            self.view.datasets.set_model_suggestions(
                [(eid, label, confidence) for eid, (label, confidence) in pending.items()],
                model_name=self.view.run_model_name)
        except UserFacingError as exc:
            self.view.show_error(exc.message)

    def _on_finished(self, predictions: list[Prediction], cancelled: bool,
                     seconds: float) -> None:
        self.view._flush_timer.stop()
        done = len(predictions)
        self.view.progress.setValue(min(done, self.view.progress.maximum()))
        if self.view.mode == "prelabel":
            # The final predictions (batch-calibrated) replace the live ones.
            for i, pred in enumerate(predictions):
                if i < len(self.view.run_ids) and self.view.run_ids[i] and pred.error is None \
                        and pred.label is not None:
                    self.view._pending[self.view.run_ids[i]] = (pred.label, float(pred.confidence))
            self._flush_suggestions()
            failed = sum(1 for p in predictions if p.error)
            fails = f" · {failed} failed" if failed else ""
            if cancelled:
                self.view.run_status.setText(
                    f"Cancelled after {done} of {len(self.view.run_ids)}: their suggestions are "
                    f"kept{fails}.")
            else:
                self.view.run_status.setText(f"Suggested labels for {done} examples in "
                                        f"{seconds:.1f} s{fails}.")
            self.view.reload()
        elif cancelled:
            self.view.run_status.setText("The evaluation was cancelled: no scores.")
        else:
            self._finish_evaluation(predictions, seconds)
        self.view.update_controls()
        self.view.run_finished.emit(self.view.mode, cancelled)

    def _on_failed(self, message: str) -> None:
        self.view._flush_timer.stop()
        self._flush_suggestions()
        self.view.show_error(message)
        self.view.update_controls()
        self.view.run_finished.emit(self.view.mode, True)

    def _finish_evaluation(self, predictions: Sequence[Prediction], seconds: float) -> None:
        assert self.view.dataset is not None and self.view.run_spec is not None
        predicted = [p.label if p.label is not None else "" for p in predictions]
        try:
            report = evaluate(self.view.run_gold[: len(predicted)], predicted,
                              list(self.view.run_spec.label_names))
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return
        report.seconds = seconds
        report.texts_per_s = report.n / seconds if seconds > 0 else 0.0
        self.view.report = report
        try:
            run = evaluation.record_eval(
                self.view.db, self.view.dataset, model_name=self.view.run_model_name,
                classifier_spec=self.view.run_spec, report=report, split="test",
                classifier_name=self.view.run_classifier_name,
                model_id=self.view.model.id if self.view.model is not None else None,
                extra={"few_shot_overlap": self.view._overlap} if self.view._overlap else None)
        except UserFacingError as exc:
            self.view.show_error(f"Scored, but the run could not be kept: {exc.message}")
            run = None
        self.view.run_status.setText(f"Evaluated {report.n} texts in {seconds:.1f} s.")
        shown = report.to_json()
        if self.view._overlap:
            shown["few_shot_overlap"] = self.view._overlap
        self._show_report(shown, self.view.run_model_name, self.view.run_spec)
        self.refresh_history()
        if run is not None:
            for r, kept in enumerate(self.view.history.runs):
                if kept.id == run.id:
                    blocked = self.view.history_table.selectionModel().blockSignals(True)
                    try:
                        self.view.history_table.selectRow(r)
                    finally:
                        self.view.history_table.selectionModel().blockSignals(blocked)
            self.view.evaluated.emit(run)
        self.view.tabs.setCurrentIndex(0)

    def _show_report(self, report: dict[str, Any], model_name: str, spec: Any) -> None:
        labels = [str(x) for x in report.get("labels", [])]
        per_label = report.get("per_label", {})
        n = int(report.get("n", 0))
        rate = float(report.get("texts_per_s") or 0.0)
        speed = f" · {rate:.1f} texts/s" if rate else ""
        overlap = int(report.get("few_shot_overlap", 0))
        warning = (f"\n⚠ {overlap} of the texts are also the classifier's few-shot examples: "
                   "the score looks better than it is." if overlap else "")
        self.view.report_panel.show_report(
            f"Accuracy {float(report.get('accuracy', 0.0)):.1%} · macro-F1 "
            f"{float(report.get('macro_f1', 0.0)):.3f} · {n} texts{speed}\n"
            f"{model_name} · {spec_summary(spec)}{warning}",
            labels, per_label, report.get("confusion", []))
        self.view.update_controls()

    def _clear_report(self) -> None:
        self.view.report_panel.clear()

    def refresh_history(self) -> None:
        dataset = self.view.dataset
        runs = evaluation.list_evals(self.view.db, dataset) if dataset is not None else []
        self.view.history.set_runs(runs)

    def show_run(self, row: int) -> None:
        """Show a kept run's report and confusion matrix."""
        if 0 <= row < self.view.history.rowCount():
            run = self.view.history.run(row)
            self._show_report(dict(run.report or {}), run.model_name, run.spec)
            self.view.tabs.setCurrentIndex(0)

    def save_png(self, path: str) -> bool:
        """Save the confusion matrix as it is drawn, as a PNG file."""
        if not self.view.confusion.labels:
            self.view.show_error("Evaluate first: there is no confusion matrix to save.")
            return False
        if not self.view.confusion.grab().save(path, "PNG"):
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
