"""One app per data folder: a lock file there, and a local socket that brings the first
window forward when a second copy starts on the same folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

LOCK_NAME = "slmdesk.lock"
RAISE_REQUEST = b"raise\n"
CONNECT_TIMEOUT_MS = 1000


def server_name(data_dir: Path) -> str:
    """The local socket's name for this data folder (the same for every copy on it)."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode("utf-8")).hexdigest()[:16]
    return f"slmdesk-{digest}"


class SingleInstance(QObject):
    """Holds the data folder's lock (``acquired``) and listens for later copies.

    The first copy takes the lock and emits ``raise_requested`` whenever another copy
    starts on the same folder; that copy finds the lock taken, calls ``ask_first_to_raise``
    and exits. A lock left by a crashed copy is taken over (QLockFile checks its pid).
    """

    raise_requested = Signal()

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.name = server_name(data_dir)
        self.lock = QLockFile(str(data_dir / LOCK_NAME))
        self.lock.setStaleLockTime(0)  # only a dead owner makes it stale, never its age
        self.acquired = self.lock.tryLock(100)
        self.server: QLocalServer | None = None
        if self.acquired:
            QLocalServer.removeServer(self.name)  # a socket file left by a crash
            self.server = QLocalServer(self)
            self.server.newConnection.connect(self._on_connection)
            self.server.listen(self.name)

    def _on_connection(self) -> None:
        # A connection is the request: only another copy on this folder knows the name.
        assert self.server is not None
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            socket.disconnected.connect(socket.deleteLater)
            self.raise_requested.emit()

    def ask_first_to_raise(self) -> bool:
        """The second copy: ask the first to bring its window forward; True if it heard."""
        socket = QLocalSocket(self)
        socket.connectToServer(self.name)
        if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        socket.write(RAISE_REQUEST)
        socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
        socket.disconnectFromServer()
        return True

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.acquired:
            self.lock.unlock()
            self.acquired = False
