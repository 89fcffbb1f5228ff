"""One engine, one queue: a thread that owns the ``LlamaEngine`` and runs requests in order."""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.store.models import ModelRecord

log = logging.getLogger(__name__)

T = TypeVar("T")
ModelLoader = Callable[[LlamaEngine, ModelRecord], None]


class QueueFullError(Exception):
    """More requests wait for the engine than the queue holds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the engine's queue is full; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class WorkerStoppedError(Exception):
    """The worker was stopped before it ran the job."""


@dataclass
class EngineJob(Generic[T]):
    """A piece of work for the engine: run ``work`` with ``model`` loaded."""

    work: Callable[[LlamaEngine], T]
    model: ModelRecord | None
    cancel: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future[T] = field(default_factory=concurrent.futures.Future)


_STOP = object()


class EngineWorker:
    """Owns one engine on one thread; jobs run one at a time in the order they came.

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
            if self._running is not None:
                self._running.cancel.set()
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
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, EngineJob):
                with self._lock:
                    self._waiting -= 1
                job.cancel.set()
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(WorkerStoppedError("the server is stopping"))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            with self._lock:
                self._waiting -= 1
                self._running = job
            try:
                self._run_job(job)
            finally:
                with self._lock:
                    self._running = None

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
            job.future.set_result(job.work(self.engine))
        except BaseException as exc:  # noqa: BLE001 - thread boundary: handed to the caller
            job.future.set_exception(exc)
        finally:
            took = time.perf_counter() - started
            self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * took
