"""Starts and stops the window's local server off the GUI thread, over the window's engine.

The server (``slmdesk.server.runner.LocalServer``) is built and started on a plain thread of
its own (binding, starting uvicorn and stopping it may take seconds); the outcome comes back
to the GUI thread as a signal. While it runs it serves the model the window has chosen, on
the window's engine (``SharedEngineWorker``), and keeps that model from the idle unload.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from slmdesk.errors import UserFacingError
from slmdesk.server.config import ServerConfig
from slmdesk.store.models import ModelRecord
from slmdesk.ui.model_session import ModelSession

if TYPE_CHECKING:
    from slmdesk.server.runner import LocalServer
    from slmdesk.server.security import RequestRecord

log = logging.getLogger(__name__)

KEEP_LOADED_REASON = "server"
NO_MODEL = ("Choose a model in the model picker first: the server serves the window's "
            "model.")  # start_failed's message until a model is chosen


class _Relay(QObject):
    """Carries the server thread's outcome to the GUI thread (queued by Qt)."""

    started = Signal(object)  # LocalServer
    start_failed = Signal(str)
    stopped = Signal()
    chat_saved = Signal(str)  # conversation id


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, UserFacingError):
        return exc.message
    if isinstance(exc, OSError):
        return f"The server could not listen there: {exc.strerror or exc}."
    log.error("the server did not start", exc_info=exc)
    return f"The server did not start: {type(exc).__name__}: {exc}"


class ServerControl(QObject):
    """The window's server: ``start(config)``, ``stop()``, ``restart(config)``.

    ``state`` is one of "stopped", "starting", "running", "stopping"; ``state_changed``
    fires on each change, ``start_failed(message)`` when a start did not succeed,
    ``chat_saved(conversation_id)`` when the server kept a request in the chat history.
    """

    state_changed = Signal(str)
    start_failed = Signal(str)
    chat_saved = Signal(str)

    def __init__(self, session: ModelSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.state = "stopped"
        self.server: LocalServer | None = None
        self.config: ServerConfig | None = None
        # What the server's threads read: the model the window has chosen (set here only).
        self._served: ModelRecord | None = session.model
        self._past_records: list[RequestRecord] = []  # of servers stopped since
        self._cleared_at = 0  # records of the running server hidden by "Clear"
        self._then_start: ServerConfig | None = None  # a restart's second half
        self._relay = _Relay(self)
        self._relay.started.connect(self._on_started)
        self._relay.start_failed.connect(self._on_start_failed)
        self._relay.stopped.connect(self._on_stopped)
        self._relay.chat_saved.connect(self.chat_saved)
        session.changed.connect(self._follow_model)

    # what the panel reads -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def served_model(self) -> ModelRecord | None:
        return self._served

    @property
    def base_url(self) -> str | None:
        return self.server.base_url if self.server is not None and self.running else None

    def request_records(self) -> list[RequestRecord]:
        """The requests since the log was last cleared, oldest first (restarts included)."""
        return self._past_records + self._current_records()

    def clear_request_log(self) -> None:
        self._past_records = []
        self._cleared_at = len(self.server.request_log.records()) if self.server else 0

    def _current_records(self) -> list[RequestRecord]:
        if self.server is None:
            return []
        return self.server.request_log.records()[self._cleared_at:]

    # start and stop ---------------------------------------------------------------------------
    def start(self, config: ServerConfig) -> bool:
        """Start serving with ``config``; False (and ``start_failed``) when it cannot start."""
        if self.state != "stopped":
            return False
        try:
            config = config.validated()
        except UserFacingError as exc:
            self.start_failed.emit(exc.message)
            return False
        model = self.session.model
        if model is None:
            self.start_failed.emit(NO_MODEL)
            return False
        if self.session.loaded is None and not self.session.loading:
            self.session.select(model)  # the server's requests wait behind this load
        self._served = model
        self.config = config
        self.session.keep_loaded(KEEP_LOADED_REASON)
        self._set_state("starting")
        self._in_thread(lambda: self._build_and_start(config), "slmdesk-server-start")
        return True

    def stop(self) -> None:
        """Stop answering; what runs for the server is cancelled, the model stays loaded."""
        if self.state != "running" or self.server is None:
            return
        server = self.server
        self._set_state("stopping")
        self._in_thread(lambda: self._stop_server(server), "slmdesk-server-stop")

    def restart(self, config: ServerConfig) -> None:
        """Stop, then start with ``config`` (a new token takes effect at once this way)."""
        if self.state == "running":
            if config.port == 0 and self.server is not None:
                config = dataclasses.replace(config, port=self.server.port)  # same address
            self._then_start = config
            self.stop()
        elif self.state == "stopped":
            self.start(config)

    def shutdown(self) -> None:
        """At window close: stop now, on this thread (requests are cancelled first)."""
        self._then_start = None
        server = self.server
        if server is not None and self.state in ("running", "stopping"):
            server.worker.stop()
            server.stop()
        self.server = None
        self.session.keep_loaded(KEEP_LOADED_REASON, False)
        self.state = "stopped"

    # the server's thread ----------------------------------------------------------------
    def _in_thread(self, work: Callable[[], None], name: str) -> None:
        threading.Thread(target=work, name=name, daemon=True).start()

    def _build_and_start(self, config: ServerConfig) -> None:
        try:
            from slmdesk.server.runner import LocalServer
            from slmdesk.ui.server.shared_engine import SharedEngineWorker, WindowModelLibrary

            worker = SharedEngineWorker(self.session.engine, queue_size=config.queue_size)
            library = WindowModelLibrary(lambda: self._served)
            server = LocalServer(config, None, library=library, worker=worker,
                                 on_chat_saved=self._relay.chat_saved.emit).start()
        except Exception as exc:  # noqa: BLE001 - thread boundary: told to the GUI thread
            self._relay.start_failed.emit(_failure_text(exc))
            return
        self._relay.started.emit(server)

    def _stop_server(self, server: LocalServer) -> None:
        try:
            server.worker.stop()  # cancel the server's requests first: a quick shutdown
            server.stop()
        except Exception:  # thread boundary: logged, the server is gone
            log.exception("stopping the server failed")
        self._relay.stopped.emit()

    # back on the GUI thread ------------------------------------------------------------------
    def _on_started(self, server: Any) -> None:
        self.server = server
        self._set_state("running")

    def _on_start_failed(self, message: str) -> None:
        self.session.keep_loaded(KEEP_LOADED_REASON, False)
        self._set_state("stopped")
        self.start_failed.emit(message)

    def _on_stopped(self) -> None:
        self._past_records += self._current_records()
        self._cleared_at = 0
        self.server = None
        self.session.keep_loaded(KEEP_LOADED_REASON, False)
        self._set_state("stopped")
        config, self._then_start = self._then_start, None
        if config is not None:
            self.start(config)

    def _follow_model(self) -> None:
        # The server follows the window's choice: requests name the model chosen now.
        self._served = self.session.model

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)
