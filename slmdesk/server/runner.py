"""Run the server: load the model, bind the address, serve (in this thread or in the background)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from slmdesk.server.app import build_app
from slmdesk.server.config import ServerConfig
from slmdesk.server.history import ApiChatHistory
from slmdesk.server.models import LoadOptions, ModelLibrary
from slmdesk.server.security import RequestLog
from slmdesk.server.worker import EngineWorker
from slmdesk.store.models import ModelRecord

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class LocalServer:
    """The server over one engine worker: ``start()`` in the background or ``serve()`` here.

    The model is loaded before the address is bound, so a model that cannot load fails
    the start with its message instead of the first request.
    """

    def __init__(self, config: ServerConfig, model: ModelRecord | None = None, *,
                 load_options: LoadOptions | None = None, library: ModelLibrary | None = None,
                 worker: EngineWorker | None = None,
                 on_chat_saved: Callable[[str], None] | None = None) -> None:
        self.config = config.validated()
        self.library = library or ModelLibrary()
        # With keep_chats: chat requests go to the chat history; ``on_chat_saved`` hears
        # the id of each conversation a request was added to (on the history's thread).
        self.history = ApiChatHistory(self.library.paths, on_chat_saved) \
            if config.keep_chats else None
        options = load_options or LoadOptions()
        self.worker = worker or EngineWorker(
            lambda engine, record: self.library.load(engine, record, options),
            queue_size=config.queue_size)
        self.model = model
        self.request_log = RequestLog()
        self.app = build_app(self.config, self.worker, self.library, self.request_log,
                             self.history)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = config.port

    @property
    def base_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}/v1"

    def _prepare(self) -> socket.socket:
        self.worker.start()
        try:
            if self.model is not None:
                self.worker.call(lambda _engine: None, self.model)  # loads it
            sock = bind(self.config.host, self.config.port)
        except BaseException:
            self._stop_engine()
            raise
        self.port = int(sock.getsockname()[1])
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", http="h11",
            ws="none", loop="asyncio", timeout_graceful_shutdown=5,
        ))
        return sock

    def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until interrupted (Ctrl-C), then stop the engine.

        ``on_ready`` runs once the model is loaded and the address bound.
        """
        sock = self._prepare()
        assert self._server is not None
        try:
            if on_ready is not None:
                on_ready()
            self._server.run(sockets=[sock])
        finally:
            sock.close()
            self._stop_engine()

    def start(self, timeout: float = 30.0) -> LocalServer:
        """Serve on a background thread; returns once requests are answered."""
        sock = self._prepare()
        server = self._server
        assert server is not None
        started = threading.Event()

        def run() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                sock.close()
                started.set()

        self._thread = threading.Thread(target=run, name="slmdesk-server", daemon=True)
        self._thread.start()
        waited = 0.0
        while not server.started and waited < timeout and self._thread.is_alive():
            started.wait(0.02)
            waited += 0.02
        if not server.started:
            self.stop()
            raise RuntimeError("the server did not start")
        return self

    def stop(self) -> None:
        """Stop answering, cancel what runs, free the model."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        self._stop_engine()

    def _stop_engine(self) -> None:
        """Stop the engine (replies still running end as interrupted), then let the history
        write what it was given."""
        self.worker.stop()
        if self.history is not None:
            self.history.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
