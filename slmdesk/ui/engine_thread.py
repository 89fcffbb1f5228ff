"""The engine thread: a worker QObject in a QThread owns the LlamaEngine; jobs run in order.

Requests travel as queued signals carrying an ``EngineJob``. Cancel sets the job's event from
the GUI thread directly, because the worker's event loop is busy while it generates.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from slmdesk.engine.core import Cancelled, LlamaEngine
from slmdesk.engine.params import GenerationResult, LoadParams, SamplingParams
from slmdesk.errors import UserFacingError

if TYPE_CHECKING:
    from slmdesk.classify.spec import ClassifierSpec

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 1 / 30  # coalesce streamed text to ~30 updates a second

_job_ids = itertools.count(1)


@dataclass
class EngineJob:
    kind: str  # "load" | "generate" | "unload" | "classify"
    payload: dict[str, Any]
    id: int = field(default_factory=lambda: next(_job_ids))
    cancel: threading.Event = field(default_factory=threading.Event)


class EngineWorker(QObject):
    """Lives on the engine thread; never touches the database or widgets."""

    loading_started = Signal(int, str)  # job id, path
    loaded = Signal(int, object)  # job id, ModelInfo
    load_failed = Signal(int, str)  # job id, message
    unloaded = Signal(int)
    prompt_progressed = Signal(int, int, int)  # job id, done, total
    text_received = Signal(int, str)  # job id, coalesced text
    generation_finished = Signal(int, object)  # job id, GenerationResult
    generation_failed = Signal(int, str)  # job id, message
    classify_progressed = Signal(int, int, int)  # job id, done, total
    text_classified = Signal(int, int, object)  # job id, index, Prediction
    classification_finished = Signal(int, object, bool)  # job id, list[Prediction], cancelled
    classification_failed = Signal(int, str)  # job id, message

    def __init__(self, engine: LlamaEngine | None = None) -> None:
        super().__init__()
        self.engine = engine or LlamaEngine()
        # The last classifier and the model it was built for: running the same spec again
        # keeps its prompt tokens and content-free prediction.
        self._classifier: Any = None
        self._classifier_key: tuple[Any, Any] | None = None

    @Slot(object)
    def run_job(self, job: EngineJob) -> None:
        try:
            if job.kind == "load":
                self._load(job)
            elif job.kind == "generate":
                self._generate(job)
            elif job.kind == "classify":
                self._classify(job)
            elif job.kind == "unload":
                self.engine.unload()
                self.unloaded.emit(job.id)
            else:
                raise ValueError(f"unknown job kind {job.kind}")
        except Exception as exc:
            log.exception("engine job %s failed", job.kind)
            message = f"Internal error in the engine: {type(exc).__name__}: {exc}"
            if job.kind == "load":
                self.load_failed.emit(job.id, message)
            elif job.kind == "classify":
                self.classification_failed.emit(job.id, message)
            else:
                self.generation_failed.emit(job.id, message)

    def _load(self, job: EngineJob) -> None:
        path = str(job.payload["path"])
        if job.cancel.is_set():
            self.load_failed.emit(job.id, "Loading was cancelled.")
            return
        self.loading_started.emit(job.id, path)
        try:
            info = self.engine.load(path, job.payload.get("params") or LoadParams())
        except UserFacingError as exc:
            self.load_failed.emit(job.id, exc.message)
            return
        self.loaded.emit(job.id, info)

    def _generate(self, job: EngineJob) -> None:
        if job.cancel.is_set():
            self.generation_finished.emit(job.id, GenerationResult(finish_reason="cancelled"))
            return
        buffer: list[str] = []
        last_emit = 0.0

        def on_text(text: str) -> None:
            nonlocal last_emit
            buffer.append(text)
            now = time.monotonic()
            if now - last_emit >= EMIT_INTERVAL_S:
                self.text_received.emit(job.id, "".join(buffer))
                buffer.clear()
                last_emit = now

        def on_progress(done: int, total: int) -> None:
            self.prompt_progressed.emit(job.id, done, total)

        try:
            result = self.engine.stream_chat(
                job.payload["messages"],
                job.payload.get("sampling") or SamplingParams(),
                cancel=job.cancel,
                on_text=on_text,
                on_prompt_progress=on_progress,
            )
        except UserFacingError as exc:
            self.generation_failed.emit(job.id, exc.message)
            return
        if buffer:
            self.text_received.emit(job.id, "".join(buffer))
        self.generation_finished.emit(job.id, result)

    def _classify(self, job: EngineJob) -> None:
        from slmdesk.classify.classifier import Classifier

        spec = job.payload["spec"]
        texts: list[str] = list(job.payload["texts"])
        if job.cancel.is_set():
            self.classification_finished.emit(job.id, [], True)
            return
        try:
            key = (spec, self.engine.info)
            if self._classifier is None or self._classifier_key != key:
                self._classifier = Classifier(self.engine, spec)
                self._classifier_key = key
            preds = self._classifier.classify_many(
                texts,
                cancel=job.cancel,
                on_result=lambda i, pred: self.text_classified.emit(job.id, i, pred),
                on_progress=lambda done, total: self.classify_progressed.emit(
                    job.id, done, total
                ),
            )
        except Cancelled:
            self.classification_finished.emit(job.id, [], True)
            return
        except UserFacingError as exc:
            self.classification_failed.emit(job.id, exc.message)
            return
        self.classification_finished.emit(job.id, preds, len(preds) < len(texts))


class EngineClient(QObject):
    """The GUI-side handle: starts the engine thread and sends it jobs.

    It repeats the worker's signals as its own, queued, so whoever listens to the client
    is called on the GUI thread.
    """

    job_requested = Signal(object)
    loading_started = Signal(int, str)
    loaded = Signal(int, object)
    load_failed = Signal(int, str)
    unloaded = Signal(int)
    prompt_progressed = Signal(int, int, int)
    text_received = Signal(int, str)
    generation_finished = Signal(int, object)
    generation_failed = Signal(int, str)
    classify_progressed = Signal(int, int, int)  # job id, done, total
    text_classified = Signal(int, int, object)  # job id, index, Prediction
    classification_finished = Signal(int, object, bool)  # job id, list[Prediction], cancelled
    classification_failed = Signal(int, str)  # job id, message

    def __init__(self, engine: LlamaEngine | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("slmdesk-engine")
        self.worker = EngineWorker(engine)
        self.engine = self.worker.engine
        self.worker.moveToThread(self._thread)
        # The worker belongs to the engine thread: delete it there, as that thread ends.
        self._thread.finished.connect(self.worker.deleteLater)
        self.job_requested.connect(self.worker.run_job)
        self._jobs: dict[int, EngineJob] = {}
        queued = Qt.ConnectionType.QueuedConnection
        for name in ("loading_started", "loaded", "load_failed", "unloaded",
                     "prompt_progressed", "text_received", "generation_finished",
                     "generation_failed", "classify_progressed", "text_classified",
                     "classification_finished", "classification_failed"):
            getattr(self.worker, name).connect(getattr(self, name), queued)
        for sig in (self.loaded, self.load_failed, self.unloaded,
                    self.generation_finished, self.generation_failed,
                    self.classification_finished, self.classification_failed):
            sig.connect(self._forget)
        self._thread.start()

    def _submit(self, job: EngineJob) -> EngineJob:
        self._jobs[job.id] = job
        self.job_requested.emit(job)
        return job

    def _forget(self, job_id: int, *_args: Any) -> None:
        self._jobs.pop(job_id, None)

    def load(self, path: str, params: LoadParams | None = None) -> EngineJob:
        return self._submit(EngineJob("load", {"path": path, "params": params}))

    def generate(
        self, messages: list[dict[str, str]], sampling: SamplingParams | None = None
    ) -> EngineJob:
        return self._submit(
            EngineJob("generate", {"messages": messages, "sampling": sampling})
        )

    def classify(self, spec: ClassifierSpec, texts: list[str]) -> EngineJob:
        """Classify ``texts`` on the engine thread with the loaded model.

        Signals: ``text_classified`` per text as it is scored (contextually calibrated),
        ``classify_progressed``, then ``classification_finished`` with the final list
        (batch-calibrated where that applies; shorter when cancelled) or
        ``classification_failed``.
        """
        return self._submit(EngineJob("classify", {"spec": spec, "texts": list(texts)}))

    def unload(self) -> EngineJob:
        return self._submit(EngineJob("unload", {}))

    def measure_prompt(self, messages: list[dict[str, str]]) -> int | None:
        """Prompt tokens for ``messages``, counted on the calling (GUI) thread.

        Only the tokenizer is used, which reads the immutable vocabulary; the engine's
        swap lock keeps the model from being freed meanwhile. None while it is swapped.
        """
        return self.engine.measure_prompt(messages)

    def measure_text(self, text: str) -> int | None:
        """Tokens in ``text``, counted on the calling thread like ``measure_prompt``."""
        return self.engine.measure_text(text)

    def cancel(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.cancel.set()

    def cancel_all(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel.set()

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Cancel jobs, stop the thread, and only then free the model."""
        self.cancel_all()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.error("the engine thread did not stop in time")
            return
        self.engine.unload()
