"""One classification run on the engine thread, as the Classify and Data sets tabs drive it:
start a ClassifyJob, follow that job's signals with a progress bar and a status line, cancel."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QProgressBar

from slmdesk.errors import UserFacingError

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Prediction
    from slmdesk.classify.spec import ClassifierSpec
    from slmdesk.ui.common.model_choice import ModelChoice
    from slmdesk.ui.engine_thread import ClassifyJob, EngineClient


class ClassifyRun(QObject):
    """Runs one ClassifyJob at a time and re-emits what that job reports.

    ``progressed(done, total)`` after the progress bar moved (not while cancelling: the status
    line then says "Cancelling…"), ``classified(index, prediction)`` per text as it arrives,
    ``finished(predictions, cancelled, seconds)`` or ``failed(message)`` at the end, and
    ``state_changed()`` whenever the run starts, is being cancelled, or ends. Each run uses
    the model ``choice()`` names when it starts (a remote one's engine, else the local one).
    """

    progressed = Signal(int, int)
    classified = Signal(int, object)  # index, Prediction
    finished = Signal(object, bool, float)  # list[Prediction], cancelled, seconds
    failed = Signal(str)
    state_changed = Signal()

    def __init__(self, engine: EngineClient, choice: Callable[[], ModelChoice],
                 progress: QProgressBar, status: QLabel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.choice = choice
        self.progress = progress
        self.status = status
        self.job: ClassifyJob | None = None
        self.cancelling = False
        self._started = 0.0

    @property
    def busy(self) -> bool:
        return self.job is not None

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self._started

    def start(self, spec: ClassifierSpec, texts: list[str]) -> bool:
        """Send the texts to the engine; False (with the reason raised) when it refuses."""
        self.cancelling = False
        self.progress.setRange(0, len(texts))
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.status.setText("Waiting for the engine…")
        # may raise UserFacingError
        job = self.engine.classify(spec, texts, self.choice().remote_engine)
        job.progressed.connect(self._on_progressed)
        job.classified.connect(self.classified)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        self.job = job
        self._started = time.monotonic()
        self.state_changed.emit()
        return True

    def try_start(self, spec: ClassifierSpec, texts: list[str]) -> str:
        """``start``, with a refusal turned into its message ("" when the run started)."""
        try:
            self.start(spec, texts)
        except UserFacingError as exc:
            self.job = None
            self.state_changed.emit()
            return exc.message
        return ""

    def cancel(self) -> None:
        """Ask the running job to stop; its ``finished`` follows with what was done."""
        if self.job is not None and not self.cancelling:
            self.cancelling = True
            self.job.cancel()
            self.status.setText("Cancelling…")
            self.state_changed.emit()

    def _on_progressed(self, done: int, total: int) -> None:
        if total and self.progress.maximum() != total:
            self.progress.setMaximum(total)
        self.progress.setValue(min(done, total or done))
        if not self.cancelling:
            self.progressed.emit(done, total)

    def _end(self) -> None:
        self.job = None
        self.cancelling = False

    def _on_finished(self, predictions: list[Prediction], cancelled: bool) -> None:
        seconds = self.elapsed()
        self._end()
        self.finished.emit(predictions, cancelled, seconds)
        self.state_changed.emit()

    def _on_failed(self, message: str) -> None:
        self._end()
        self.status.setText("Failed.")
        self.failed.emit(message)
        self.state_changed.emit()
