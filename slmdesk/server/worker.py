"""One engine, one queue: a thread that owns the ``LlamaEngine`` and runs requests in order,
decoding waiting chat and completion requests together where the engine holds several
sequences."""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from slmdesk.engine.llama_engine import LlamaEngine, SequenceRequest
from slmdesk.engine.params import GenerationResult
from slmdesk.store.models import ModelRecord

log = logging.getLogger(__name__)

T = TypeVar("T")
ModelLoader = Callable[[LlamaEngine, ModelRecord], None]
# A job's reply as one sequence of a batch: given the engine, where its result goes and
# where an error goes, the engine's ``SequenceRequest`` (raises if the request is refused).
SequenceFactory = Callable[
    [LlamaEngine, Callable[[GenerationResult], None], Callable[[BaseException], None]],
    SequenceRequest,
]


class QueueFullError(Exception):
    """More requests wait for the engine than the queue holds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the engine's queue is full; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class WorkerStoppedError(Exception):
    """The worker was stopped before it ran the job."""


@dataclass
class EngineJob(Generic[T]):
    """A piece of work for the engine: run ``work`` with ``model`` loaded.

    A job with a ``sequence`` (a chat or text completion) may instead be decoded together
    with other such jobs; its future then gets the ``GenerationResult`` ``work`` would
    have returned.
    """

    work: Callable[[LlamaEngine], T]
    model: ModelRecord | None
    cancel: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future[T] = field(default_factory=concurrent.futures.Future)
    sequence: SequenceFactory | None = None


_STOP = object()


class EngineWorker:
    """Owns one engine on one thread; jobs run one at a time in the order they came, except
    that jobs with a ``sequence`` run together when the loaded engine holds several
    sequences: while one runs, the ones that wait behind it join its batch between two
    tokens (up to the engine's sequences; a job of another kind waits for the batch to end
    and closes it to newcomers, so nothing is overtaken for long).

    ``submit`` never blocks: beyond ``queue_size`` waiting jobs it raises
    ``QueueFullError`` (the server answers 429 with Retry-After). A job whose cancel event
    is set before it starts is skipped; one that runs sees the event between tokens. A
    job for another model than the loaded one loads it first, with ``load_model``.
    """

    def __init__(self, load_model: ModelLoader, *, queue_size: int = 8,
                 engine: LlamaEngine | None = None) -> None:
        self.engine = engine or LlamaEngine()
        self._load_model = load_model
        self._queue: queue.Queue[Any] = queue.Queue()  # bounded by ``_waiting``
        self.queue_size = queue_size
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._waiting = 0
        self._running: EngineJob[Any] | None = None
        self._together: list[EngineJob[Any]] = []  # the jobs that joined the running one
        self._held: Any = None  # taken from the queue while a batch ran, runs next
        self._loaded: ModelRecord | None = None
        self._mean_job_s = 1.0

    # lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="slmdesk-engine",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Cancel what waits and what runs, end the thread, then free the model."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with self._lock:
            for job in [self._running, *self._together]:
                if job is not None:
                    job.cancel.set()
        self._drain()
        self._queue.put(_STOP)
        thread.join(timeout)
        self.engine.unload()

    @property
    def loaded_model(self) -> ModelRecord | None:
        return self._loaded

    @property
    def busy(self) -> bool:
        """Whether a job runs now."""
        return self._running is not None

    @property
    def waiting(self) -> int:
        """Jobs accepted but not started yet."""
        return self._waiting

    # jobs ----------------------------------------------------------------------------
    def submit(self, job: EngineJob[T]) -> EngineJob[T]:
        if self._thread is None:
            raise WorkerStoppedError("the engine worker is not running")
        with self._lock:
            if self._waiting >= self.queue_size:
                raise QueueFullError(self._retry_after())
            self._waiting += 1
        self._queue.put(job)
        return job

    def call(self, work: Callable[[LlamaEngine], T], model: ModelRecord | None = None) -> T:
        """Run ``work`` on the engine thread and wait for its result (blocking)."""
        return self.submit(EngineJob(work, model)).future.result()

    def _retry_after(self) -> int:
        return max(1, round(self._mean_job_s * (self._waiting + 1)))

    def _drain(self) -> None:
        with self._lock:
            held, self._held = self._held, None
        if isinstance(held, EngineJob):
            _refuse(held)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, EngineJob):
                with self._lock:
                    self._waiting -= 1
                _refuse(job)

    def _next_job(self) -> Any:
        """The job held back from the last batch, else the next in the queue (waits)."""
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            return held
        job = self._queue.get()
        if job is not _STOP:
            with self._lock:
                self._waiting -= 1
        return job

    def _run(self) -> None:
        while True:
            job = self._next_job()
            if job is _STOP:
                return
            with self._lock:
                self._running = job
            try:
                self._run_job(job)
            finally:
                with self._lock:
                    self._running = None
                    self._together = []

    def _run_job(self, job: EngineJob[Any]) -> None:
        if job.cancel.is_set() or not job.future.set_running_or_notify_cancel():
            return
        started = time.perf_counter()
        try:
            if job.model is not None and (
                self._loaded is None or self._loaded.path != job.model.path
                or not self.engine.is_loaded
            ):
                self._loaded = None
                self._load_model(self.engine, job.model)
                self._loaded = job.model
            if job.sequence is not None and self.engine.parallel_sequences > 1:
                self._run_together(job)
            else:
                job.future.set_result(job.work(self.engine))
        except BaseException as exc:  # noqa: BLE001 - thread boundary: handed to the caller
            if not job.future.done():
                job.future.set_exception(exc)
        finally:
            took = time.perf_counter() - started
            self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * took

    # decoding together ---------------------------------------------------------------
    def _run_together(self, first: EngineJob[Any]) -> None:
        """Decode ``first`` and the sequence jobs that wait now or come while it runs."""
        pending = [first]

        def admit(free: int) -> list[SequenceRequest]:
            requests: list[SequenceRequest] = []
            while len(requests) < free:
                job = pending.pop() if pending else self._take_joining()
                if job is None:
                    break
                request = self._sequence_of(job)
                if request is not None:
                    requests.append(request)
            return requests

        self.engine.generate_together(admit)

    def _take_joining(self) -> EngineJob[Any] | None:
        """The next waiting job if it can join the batch; None when none waits or the next
        cannot join (that one is held back and runs after the batch; none joins after it)."""
        while True:
            with self._lock:
                if self._held is not None:
                    return None
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return None
                if not isinstance(item, EngineJob):  # the stop mark
                    self._held = item
                    return None
                job: EngineJob[Any] = item
                self._waiting -= 1
                if job.sequence is None or (job.model is not None and (
                        self._loaded is None or job.model.path != self._loaded.path)):
                    self._held = job
                    return None
                self._together.append(job)
            if not job.cancel.is_set() and job.future.set_running_or_notify_cancel():
                return job

    def _sequence_of(self, job: EngineJob[Any]) -> SequenceRequest | None:
        """The job's reply as a sequence, or None when it was refused (its future says why)."""
        assert job.sequence is not None
        try:
            return job.sequence(self.engine, job.future.set_result, job.future.set_exception)
        except BaseException as exc:  # noqa: BLE001 - this job's error, handed to its caller
            job.future.set_exception(exc)
            return None


def _refuse(job: EngineJob[Any]) -> None:
    """End a job that will not run: the server stops."""
    job.cancel.set()
    if job.future.set_running_or_notify_cancel():
        job.future.set_exception(WorkerStoppedError("the server is stopping"))
