"""The engine thread: a worker QObject in a QThread owns the LlamaEngine; jobs run in order.

A request is a typed job, one small class per operation (``LoadJob``, ``ChatJob``,
``ClassifyJob``, ``UnloadJob``) with its own inputs and its own signals; whoever starts a job
connects to that job, so nobody filters by id. The job's ``run`` executes on the engine thread
and reports through ``report``; the client re-emits each report as the job's own signal on
the GUI thread, so listeners are always called there. Cancel sets the job's event from the GUI
thread directly, because the worker's event loop is busy while it generates.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from slmdesk.engine.llama_engine import Cancelled, LlamaEngine
from slmdesk.engine.params import GenerationResult, LoadParams, SamplingParams
from slmdesk.errors import UserFacingError

if TYPE_CHECKING:
    from slmdesk.classify.spec import ClassifierSpec
    from slmdesk.engine.remote.client import RemoteEngine

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 1 / 30  # coalesce streamed text to ~30 updates a second
REMOTE_STOP_WAIT_S = 5.0  # how long shutdown waits for a cancelled remote reply to end

# (job, name of one of its signals, the signal's arguments): one engine-thread report.
Report = Callable[["EngineJob", str, tuple[Any, ...]], None]


class EngineJob(QObject):
    """One request to the engine thread. Subclasses declare their signals and ``run``.

    ``failed(message)`` is every job's: a person-readable reason. ``FINAL`` names the
    signals after which the job is over (the client then forgets it).
    """

    failed = Signal(str)
    FINAL: ClassVar[frozenset[str]] = frozenset({"failed"})

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()
        self.done = False

    def cancel(self) -> None:
        """Ask the job to stop; callable from any thread, seen within one token."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self, worker: EngineWorker, report: Report) -> None:  # engine thread
        raise NotImplementedError


class LoadJob(EngineJob):
    """Load a model, replacing the loaded one."""

    started = Signal(str)  # path
    loaded = Signal(object)  # ModelInfo
    FINAL = frozenset({"loaded", "failed"})

    def __init__(self, path: str, params: LoadParams | None = None) -> None:
        super().__init__()
        self.path = path
        self.params = params or LoadParams()

    def run(self, worker: EngineWorker, report: Report) -> None:
        if self.cancelled:
            report(self, "failed", ("Loading was cancelled.",))
            return
        report(self, "started", (self.path,))
        try:
            info = worker.engine.load(self.path, self.params)
        except UserFacingError as exc:
            report(self, "failed", (exc.message,))
            return
        report(self, "loaded", (info,))


class UnloadJob(EngineJob):
    """Free the loaded model."""

    finished = Signal()
    FINAL = frozenset({"finished", "failed"})

    def run(self, worker: EngineWorker, report: Report) -> None:
        worker.engine.unload()
        report(self, "finished", ())


class ChatJob(EngineJob):
    """Stream one chat reply; text arrives coalesced, ~30 pieces a second.

    With ``remote`` the reply streams from that remote engine instead of the local one (on
    a thread of its own: see ``EngineClient.generate``).
    """

    prompt_progressed = Signal(int, int)  # done, total prompt tokens
    text_arrived = Signal(str)
    finished = Signal(object)  # GenerationResult (finish_reason "cancelled" when stopped)
    FINAL = frozenset({"finished", "failed"})

    def __init__(
        self, messages: list[dict[str, str]], sampling: SamplingParams | None = None,
        continue_from: str = "", remote: RemoteEngine | None = None,
    ) -> None:
        super().__init__()
        self.messages = messages
        self.sampling = sampling or SamplingParams()
        self.continue_from = continue_from  # the reply's start, already written
        self.remote = remote

    def run(self, worker: EngineWorker, report: Report) -> None:
        if self.cancelled:
            report(self, "finished", (GenerationResult(finish_reason="cancelled"),))
            return
        buffer: list[str] = []
        last_emit = 0.0

        def on_text(text: str) -> None:
            nonlocal last_emit
            buffer.append(text)
            now = time.monotonic()
            if now - last_emit >= EMIT_INTERVAL_S:
                report(self, "text_arrived", ("".join(buffer),))
                buffer.clear()
                last_emit = now

        engine = self.remote if self.remote is not None else worker.engine
        try:
            result = engine.stream_chat(
                self.messages, self.sampling, cancel=self.cancel_event, on_text=on_text,
                on_prompt_progress=lambda done, total: report(
                    self, "prompt_progressed", (done, total)),
                continue_from=self.continue_from,
            )
        except UserFacingError as exc:
            report(self, "failed", (exc.message,))
            return
        if buffer:
            report(self, "text_arrived", ("".join(buffer),))
        report(self, "finished", (result,))


class ClassifyJob(EngineJob):
    """Classify texts with the loaded model, or with label scores from ``remote`` (a remote
    engine, on a thread of its own: see ``EngineClient.classify``).

    ``classified(index, prediction)`` per text as it is scored (contextually calibrated),
    ``progressed(done, total)``, then ``finished(predictions, cancelled)`` with the final
    list (batch-calibrated where that applies; shorter when cancelled) or ``failed``.
    """

    progressed = Signal(int, int)
    classified = Signal(int, object)  # index, Prediction
    finished = Signal(object, bool)  # list[Prediction], cancelled
    FINAL = frozenset({"finished", "failed"})

    def __init__(self, spec: ClassifierSpec, texts: list[str],
                 remote: RemoteEngine | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.texts = list(texts)
        self.remote = remote

    def run(self, worker: EngineWorker, report: Report) -> None:
        if self.cancelled:
            report(self, "finished", ([], True))
            return
        try:
            preds = self._classifier(worker).classify_many(
                self.texts,
                cancel=self.cancel_event,
                on_result=lambda i, pred: report(self, "classified", (i, pred)),
                on_progress=lambda done, total: report(self, "progressed", (done, total)),
            )
        except Cancelled:
            report(self, "finished", ([], True))
            return
        except UserFacingError as exc:
            report(self, "failed", (exc.message,))
            return
        report(self, "finished", (preds, len(preds) < len(self.texts)))

    def _classifier(self, worker: EngineWorker) -> Any:
        if self.remote is None:
            return worker.classifier_for(self.spec)
        from slmdesk.remote.classify import RemoteClassifier

        # Refused (UnsupportedFeatureError) when the engine lacks the label scores.
        return RemoteClassifier(self.remote, self.spec)


def bind(job: EngineJob, **handlers: Callable[..., None]) -> EngineJob:
    """Connect each handler to the job's signal of that name, called with the job first, so a
    handler can tell the job it follows from a later one (``bind(job, finished=self._done)``
    calls ``self._done(job, result)``)."""
    for name, handler in handlers.items():
        getattr(job, name).connect(functools.partial(handler, job))
    return job


class EngineWorker(QObject):
    """Lives on the engine thread; never touches the database or widgets."""

    reported = Signal(object, str, object)  # job, signal name, arguments

    def __init__(self, engine: LlamaEngine | None = None) -> None:
        super().__init__()
        self.engine = engine or LlamaEngine()
        # The last classifier and the model it was built for: running the same spec again
        # keeps its prompt tokens and content-free prediction.
        self._classifier: Any = None
        self._classifier_key: tuple[Any, Any] | None = None

    def classifier_for(self, spec: ClassifierSpec) -> Any:
        from slmdesk.classify.classifier import Classifier

        key = (spec, self.engine.info)
        if self._classifier is None or self._classifier_key != key:
            self._classifier = Classifier(self.engine, spec)
            self._classifier_key = key
        return self._classifier

    def _report(self, job: EngineJob, name: str, args: tuple[Any, ...]) -> None:
        self.reported.emit(job, name, args)

    @Slot(object)
    def run_job(self, job: EngineJob) -> None:
        try:
            job.run(self, self._report)
        except Exception as exc:
            log.exception("engine job %s failed", type(job).__name__)
            self._report(job, "failed",
                         (f"Internal error in the engine: {type(exc).__name__}: {exc}",))


class EngineClient(QObject):
    """The GUI-side handle: starts the engine thread and sends it jobs.

    Each job's signals fire on the GUI thread. Besides, for whoever watches the engine as a
    whole: ``job_submitted(job)``, ``model_loaded(info)`` and ``model_unloaded()`` whoever
    asked, and ``busy()`` on every report of any job (the window's idle unload waits for
    quiet).
    """

    job_requested = Signal(object)
    job_submitted = Signal(object)  # EngineJob: observers may connect to its signals
    model_loaded = Signal(object)  # ModelInfo
    model_unloaded = Signal()
    busy = Signal()

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
        self.worker.reported.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._jobs: list[EngineJob] = []
        self._remote_threads: list[threading.Thread] = []  # remote replies streaming
        self._thread.start()

    def _deliver(self, job: EngineJob, name: str, args: tuple[Any, ...]) -> None:
        """On the GUI thread: one report of the engine thread, as the job's own signal."""
        if job.done:
            return
        if name in job.FINAL:
            job.done = True
            if job in self._jobs:
                self._jobs.remove(job)
        getattr(job, name).emit(*args)
        if isinstance(job, LoadJob) and name == "loaded":
            self.model_loaded.emit(args[0])
        elif isinstance(job, UnloadJob) and name == "finished":
            self.model_unloaded.emit()
        self.busy.emit()

    def submit(self, job: EngineJob) -> EngineJob:
        self._jobs.append(job)
        self.job_requested.emit(job)
        # Nothing of the job has reached the GUI thread yet (its reports are queued), so an
        # observer connected now sees all of them.
        self.job_submitted.emit(job)
        return job

    def load(self, path: str, params: LoadParams | None = None) -> LoadJob:
        job = LoadJob(path, params)
        self.submit(job)
        return job

    def generate(
        self, messages: list[dict[str, str]], sampling: SamplingParams | None = None,
        continue_from: str = "", remote: RemoteEngine | None = None,
    ) -> ChatJob:
        """Stream a reply: on the engine thread, or from ``remote`` on a thread of its own,
        so that a remote reply (which may wait on the network for minutes) holds neither
        the local model's queue nor the window; its reports still arrive in order."""
        job = ChatJob(messages, sampling, continue_from, remote)
        if remote is None:
            self.submit(job)
        else:
            self._run_remote(job, "slmdesk-remote-chat")
        return job

    def classify(self, spec: ClassifierSpec, texts: list[str],
                 remote: RemoteEngine | None = None) -> ClassifyJob:
        """Classify ``texts``: on the engine thread, or with label scores from ``remote`` on
        a thread of its own (as ``generate``)."""
        job = ClassifyJob(spec, texts, remote)
        if remote is None:
            self.submit(job)
        else:
            self._run_remote(job, "slmdesk-remote-classify")
        return job

    def _run_remote(self, job: EngineJob, name: str) -> None:
        """Run a job against a remote engine on a thread of its own; its reports still
        arrive in order, on the GUI thread."""
        self._jobs.append(job)
        thread = threading.Thread(target=self.worker.run_job, args=(job,), daemon=True,
                                  name=name)
        self._remote_threads = [t for t in self._remote_threads if t.is_alive()] + [thread]
        thread.start()
        self.job_submitted.emit(job)

    def unload(self) -> UnloadJob:
        job = UnloadJob()
        self.submit(job)
        return job

    def measure_prompt(self, messages: list[dict[str, str]]) -> int | None:
        """Prompt tokens for ``messages``, counted on the calling (GUI) thread.

        Only the tokenizer is used, which reads the immutable vocabulary; the engine's
        swap lock keeps the model from being freed meanwhile. None while it is swapped.
        """
        return self.engine.measure_prompt(messages)

    def measure_text(self, text: str) -> int | None:
        """Tokens in ``text``, counted on the calling thread like ``measure_prompt``."""
        return self.engine.measure_text(text)

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Cancel jobs, stop the thread, and only then free the model."""
        self.cancel_all()
        # A cancelled remote reply ends at the engine's next event; one that went quiet
        # ends at its read timeout, and is left behind (a daemon thread) after this wait.
        for thread in self._remote_threads:
            thread.join(REMOTE_STOP_WAIT_S)
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.error("the engine thread did not stop in time")
            return
        self.engine.unload()
