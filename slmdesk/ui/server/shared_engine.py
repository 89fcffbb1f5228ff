"""One engine for the window and its server: the server's requests run on the window's engine
thread, in the same queue as the window's own jobs, on the model the window has loaded.

The server (slmdesk/server/) is plain Python over an ``EngineWorker`` that owns an engine on
its own thread. In the window that would load the model a second time, so the window hands the
server a ``SharedEngineWorker`` instead: each server request becomes a ``ServedRequestJob`` of
the window's engine thread, which runs jobs one at a time in the order they came, whoever sent
them (chat, classify, the server). The server never loads or swaps a model here: it serves the
model the window has chosen (``WindowModelLibrary``), and a request for another one gets 404
naming the served model.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import Signal

from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.errors import NotFoundError
from slmdesk.paths import Paths
from slmdesk.server.errors import ApiError
from slmdesk.server.models import ModelLibrary
from slmdesk.server.worker import EngineJob as ServerJob
from slmdesk.server.worker import EngineWorker as ServerWorker
from slmdesk.server.worker import QueueFullError, WorkerStoppedError
from slmdesk.store.models import ModelRecord
from slmdesk.ui.engine_thread import EngineClient, Report
from slmdesk.ui.engine_thread import EngineJob as WindowJob
from slmdesk.ui.engine_thread import EngineWorker as WindowWorker

log = logging.getLogger(__name__)

T = TypeVar("T")
ServedModel = Callable[[], ModelRecord | None]


def same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def not_loaded(model: ModelRecord) -> ApiError:
    """503: the window's model is not loaded at the moment (loading, failed, switched)."""
    return ApiError(503, f"'{model.name}' is not loaded in slmdesk's window right now (it "
                    "is loading, its load failed, or another model was chosen); try again "
                    "once it is loaded.", type="server_error", code="model_unavailable")


class WindowModelLibrary(ModelLibrary):
    """The server's model library in the window: only the model the window has chosen.

    ``served`` is read on the server's threads; it returns what the GUI thread last set.
    """

    def __init__(self, served: ServedModel, paths: Paths | None = None) -> None:
        super().__init__(paths)
        self._served = served

    def list_models(self) -> list[ModelRecord]:
        model = self._served()
        return [model] if model is not None and os.path.isfile(model.path) else []

    def find(self, ref: str) -> ModelRecord:
        served = self._served()
        if served is None:
            raise NotFoundError("the window has no model chosen to serve; choose one in its "
                                "model picker.")
        try:
            found: ModelRecord | None = super().find(ref)
        except NotFoundError:
            found = None
        if found is None or not same_file(found.path, served.path):
            raise NotFoundError(
                f"the window serves '{served.name}' only; to serve '{ref}', choose it in the "
                "window's model picker.")
        return served


class ServedRequestJob(WindowJob):
    """One server request on the window's engine thread (its result goes to the request's
    future, not to signals; ``finished`` only tells the window the engine was busy)."""

    finished = Signal()
    FINAL = frozenset({"finished", "failed"})

    def __init__(self, owner: SharedEngineWorker, job: ServerJob[Any]) -> None:
        super().__init__()
        self.owner = owner
        self.job = job
        self.cancel_event = job.cancel  # the window's "cancel all" reaches the request too

    def run(self, worker: WindowWorker, report: Report) -> None:  # engine thread
        try:
            self.owner.run_on_engine(self.job, worker.engine)
        finally:
            report(self, "finished", ())


class SharedEngineWorker(ServerWorker):
    """The server's worker over the window's ``EngineClient``: same engine, same queue.

    ``submit`` is called on the server's threads; it never blocks and never waits for the
    GUI thread (the job goes straight to the engine thread's queue). ``stop`` cancels the
    server's requests and leaves the engine and its model to the window.
    """

    def __init__(self, client: EngineClient, *, queue_size: int = 8) -> None:
        super().__init__(self._refuse_load, queue_size=queue_size, engine=client.engine)
        self._client = client
        self._accepting = False
        self._pending: dict[int, ServerJob[Any]] = {}  # by id(): the jobs are not hashable

    @staticmethod
    def _refuse_load(_engine: LlamaEngine, model: ModelRecord) -> None:
        raise not_loaded(model)  # never called: requests go through ``run_on_engine``

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._accepting = True

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new requests and cancel this server's (the model stays loaded)."""
        self._accepting = False
        with self._lock:
            pending, self._pending = self._pending, {}
            running = self._running
        if running is not None:
            running.cancel.set()  # it stops at its next token
        for job in pending.values():
            job.cancel.set()  # a waiting one is skipped
            job.future.cancel()

    @property
    def loaded_model(self) -> ModelRecord | None:
        info = self.engine.info
        loaded = self._loaded
        if info is None or loaded is None or not same_file(info.path, loaded.path):
            return None
        return loaded

    # jobs ------------------------------------------------------------------------------
    def submit(self, job: ServerJob[T]) -> ServerJob[T]:
        if not self._accepting:
            raise WorkerStoppedError("the server is not running")
        with self._lock:
            if self._waiting >= self.queue_size:
                raise QueueFullError(self._retry_after())
            self._waiting += 1
            self._pending[id(job)] = job
        window_job = ServedRequestJob(self, job)
        # Created on a server thread; its reports are delivered on the GUI thread.
        window_job.moveToThread(self._client.thread())
        # Straight to the engine thread (a queued signal is safe from any thread).
        self._client.job_requested.emit(window_job)
        return job

    def run_on_engine(self, job: ServerJob[Any], engine: LlamaEngine) -> None:
        """Run one request on the engine thread, with the window's model loaded."""
        with self._lock:
            self._waiting -= 1
            self._pending.pop(id(job), None)
            self._running = job
        started = time.perf_counter()
        try:
            if job.cancel.is_set() or not job.future.set_running_or_notify_cancel():
                return
            try:
                if job.model is not None:
                    self._require_loaded(engine, job.model)
                job.future.set_result(job.work(engine))
            except BaseException as exc:  # noqa: BLE001 - thread boundary: to the request
                job.future.set_exception(exc)
        finally:
            with self._lock:
                self._running = None
            took = time.perf_counter() - started
            self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * took

    def _require_loaded(self, engine: LlamaEngine, model: ModelRecord) -> None:
        info = engine.info
        if info is None or not engine.is_loaded or not same_file(info.path, model.path):
            raise not_loaded(model)
        self._loaded = model
