"""The Train view: a window beside the main one that runs `slmdesk train … --events` in a
child process (training never runs in the app's own process) and shows its stages, progress,
time left and live loss curve, then the result card, or the failure in plain words."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from slmdesk.store.datasets import Dataset
from slmdesk.store.models import ModelRecord
from slmdesk.training.lora.addon import trainer_unavailable_reason
from slmdesk.ui.common.signals import connect_handlers
from slmdesk.ui.common.widgets import error_banner
from slmdesk.ui.train.command import CommandBuilder, TrainOptions, train_argv
from slmdesk.ui.train.form import TrainForm
from slmdesk.ui.train.loss_curve import LossCurve
from slmdesk.ui.train.process import TrainProcess
from slmdesk.ui.train.result_card import ResultCard

STOPPED_WITH_CHECKPOINT = "stopped — checkpoint kept"
STOPPED_NOTHING_SAVED = "stopped — nothing was saved"


def time_left_text(eta_s: Any) -> str:
    """"about 3 min left" (or seconds under two minutes); "" without an estimate."""
    if not isinstance(eta_s, (int, float)) or eta_s < 0:
        return ""
    if eta_s < 120:
        return f"about {eta_s:.0f} s left"
    return f"about {eta_s / 60:.0f} min left"


class TrainDialog(QDialog):
    """Train a classifier (labels data set) or a chat model (chat data set) by name.

    ``command`` builds the child's argv from the options (``train_argv`` by default; tests
    give a fake command that prints the same events). ``trainer_check`` says why LoRA cannot
    run here (no trainer add-on next to the packaged app, no ``slmdesk[train]``), or None."""

    use_in_classify_requested = Signal(str)  # classifier name
    chat_requested = Signal(str)  # model name
    trained = Signal(object)  # the finished report (dict)

    def __init__(self, datasets: Sequence[Dataset], models: Sequence[ModelRecord], *,
                 dataset: str | None = None, model: str | None = None,
                 command: CommandBuilder | None = None,
                 trainer_check: Callable[[], str | None] = trainer_unavailable_reason,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train")
        self.setObjectName("train_dialog")
        self.command: CommandBuilder = command or train_argv
        self.options: TrainOptions | None = None  # of the run going on (or the last one)
        self.process = TrainProcess(self)
        self.checkpoint_note = ""  # the last LoRA checkpoint of this run, in words
        self._build(datasets, models, trainer_check())
        self.form.select(dataset, model)
        self._follow_process()
        self.resize(860, 820)
        self.update_controls()

    def _build(self, datasets: Sequence[Dataset], models: Sequence[ModelRecord],
               lora_unavailable: str | None) -> None:
        layout = QVBoxLayout(self)
        self.form = TrainForm(datasets, models, self, lora_unavailable=lora_unavailable)
        layout.addWidget(self.form)
        buttons = QHBoxLayout()
        self.start_button = self._button("Start", "train_start", "Start training", self.start)
        self.cancel_button = self._button(
            "Cancel", "train_cancel", "Stop training (a LoRA run keeps its checkpoint)",
            self.cancel)
        self.resume_button = self._button(
            "Resume", "train_resume",
            "Continue the newest interrupted LoRA run of this name from its last checkpoint",
            lambda: self.start(resume=True))
        for b in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addLayout(self._build_progress_row())
        self.banner = error_banner(self, "train_error_banner")
        layout.addWidget(self.banner)
        self.stderr_box = QPlainTextEdit(self)
        self.stderr_box.setObjectName("train_stderr")
        self.stderr_box.setReadOnly(True)
        self.stderr_box.setMaximumHeight(110)
        self.stderr_box.hide()
        layout.addWidget(self.stderr_box)
        # The curve and the result card scroll together: the card of a finished run is taller
        # than a small screen (at 800×600 it made the window 707 px tall).
        results = QScrollArea(self)
        results.setObjectName("train_results_area")
        results.setWidgetResizable(True)
        results.setFrameShape(QFrame.Shape.NoFrame)
        inner = QWidget(results)
        column = QVBoxLayout(inner)
        column.setContentsMargins(0, 0, 0, 0)
        self.curve = LossCurve(inner)
        self.curve.setObjectName("loss_curve")
        column.addWidget(self.curve, 1)
        self.result_card = ResultCard(inner)
        self.result_card.setObjectName("result_card")
        self.result_card.use_in_classify_requested.connect(self.use_in_classify_requested)
        self.result_card.chat_requested.connect(self.chat_requested)
        self.result_card.hide()
        column.addWidget(self.result_card, 2)
        results.setWidget(inner)
        layout.addWidget(results, 1)

    def _button(self, text: str, name: str, tip: str, slot: Any) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.setAutoDefault(False)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _build_progress_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.stage_label = QLabel("", self)
        self.stage_label.setObjectName("train_stage")
        row.addWidget(self.stage_label, 1)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("train_progress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        row.addWidget(self.progress, 1)
        self.time_left = QLabel("", self)
        self.time_left.setObjectName("train_time_left")
        row.addWidget(self.time_left)
        return row

    def _follow_process(self) -> None:
        connect_handlers(self.process, self, "stage_changed", "progressed", "evaluated",
                         "checkpointed", "finished", "failed", "cancelled", "running_changed")

    # running ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process.running

    def start(self, *, resume: bool = False) -> bool:
        """Start the run the form describes (``resume``: from the last checkpoint)."""
        options = self.form.options(resume=resume)
        if options is None or self.running:
            if options is None:
                self.banner.show_error("Choose a data set and a name to save the result as.")
            return False
        self.options = options
        self.banner.clear_error()
        self.stderr_box.hide()
        self.result_card.clear()
        self.result_card.hide()
        self.curve.clear()
        self.progress.setRange(0, 0)  # busy until the first progress event
        self.time_left.setText("")
        self.checkpoint_note = ""
        self.stage_label.setText("Resuming…" if resume else "Starting…")
        self.process.start(self.command(options))
        return True

    def cancel(self) -> None:
        if self.running:
            self.stage_label.setText("Stopping… (a LoRA run saves its checkpoint first)")
            self.process.cancel()
            self.update_controls()

    def shutdown(self) -> None:
        """The app quits: stop the child, letting it keep its checkpoint."""
        self.process.shutdown()

    def update_controls(self) -> None:
        running = self.running
        self.form.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.cancel_button.setEnabled(running and not self.process.cancelling)

    # events ----------------------------------------------------------------------------------
    def _on_running_changed(self, _running: bool) -> None:
        self.update_controls()

    def _on_stage_changed(self, stage: str, message: str) -> None:
        self.stage_label.setText(message or stage)

    def _on_progressed(self, event: Mapping[str, Any]) -> None:
        if "step" in event:
            step, total = int(event.get("step") or 0), int(event.get("total_steps") or 0)
            loss = event.get("loss")
            if isinstance(loss, (int, float)):
                self.curve.add_loss(step, loss, total)
            self.time_left.setText(" · ".join(
                t for t in (time_left_text(event.get("eta_s")), self.checkpoint_note) if t))
        else:
            step, total = int(event.get("done") or 0), int(event.get("total") or 0)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(step, max(1, total)))

    def _on_evaluated(self, event: Mapping[str, Any]) -> None:
        if event.get("split") != "validation":
            return
        f1 = event.get("macro_f1")
        loss = event.get("loss")
        if isinstance(f1, (int, float)):
            self.curve.add_validation(str(event.get("method", "?")), f1,
                                      loss if isinstance(loss, (int, float)) else None)

    def _on_checkpointed(self, event: Mapping[str, Any]) -> None:
        self.checkpoint_note = f"checkpoint at step {event.get('step', '?')}"

    def _on_finished(self, report: Mapping[str, Any]) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.time_left.setText("")
        self.stage_label.setText(f"Finished: saved as “{report.get('name', '')}”.")
        self.result_card.show_report(report)
        self.result_card.show()
        self.trained.emit(dict(report))

    def _on_failed(self, message: str, stderr_tail: str) -> None:
        self._stopped("failed")
        self.banner.show_error(message)
        if stderr_tail.strip():
            self.stderr_box.setPlainText(stderr_tail)
            self.stderr_box.show()

    def _on_cancelled(self, job: str) -> None:
        self._stopped(STOPPED_WITH_CHECKPOINT if job else STOPPED_NOTHING_SAVED)

    def _stopped(self, what: str) -> None:
        if self.progress.maximum() == 0:  # still busy: no progress event came
            self.progress.setRange(0, 1)
        self.time_left.setText("")
        self.stage_label.setText(f"Training {what}.")
        self.update_controls()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running:
            answer = QMessageBox.question(
                self, "Train", "Training is running. Stop it? (A LoRA run keeps its "
                "checkpoint, and Resume continues it.)")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.shutdown()
        super().closeEvent(event)
