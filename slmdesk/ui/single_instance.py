"""One app per data folder: a lock file there, and a request folder that brings the first
window forward when a second copy starts on the same folder."""

# No QtNetwork: the offline guarantee is tested by the modules a session imports, and the
# packaged app does not carry QtNetwork. A file in a folder of its own, watched by
# QFileSystemWatcher, is all the second copy needs to say "raise".

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QFileSystemWatcher, QLockFile, QObject, Signal

LOCK_NAME = "slmdesk.lock"
REQUESTS_DIR = "raise-requests"
HEARD_TIMEOUT_S = 1.0


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
        self.requests = data_dir / REQUESTS_DIR
        self.lock = QLockFile(str(data_dir / LOCK_NAME))
        self.lock.setStaleLockTime(0)  # only a dead owner makes it stale, never its age
        self.acquired = self.lock.tryLock(100)
        self.watcher: QFileSystemWatcher | None = None
        if self.acquired:
            self.requests.mkdir(exist_ok=True)
            self._take_requests()  # left by a copy that started while none was running
            self.watcher = QFileSystemWatcher([str(self.requests)], self)
            self.watcher.directoryChanged.connect(lambda _path: self._on_requests())

    def _take_requests(self) -> int:
        taken = 0
        for request in self.requests.glob("*.request"):
            try:
                request.unlink()
                taken += 1
            except OSError:
                pass
        return taken

    def _on_requests(self) -> None:
        if self._take_requests():
            self.raise_requested.emit()

    def ask_first_to_raise(self) -> bool:
        """The second copy: ask the first to bring its window forward; True if it heard
        (it removes the request within ``HEARD_TIMEOUT_S``)."""
        self.requests.mkdir(parents=True, exist_ok=True)
        request = self.requests / f"{os.getpid()}-{time.monotonic_ns()}.request"
        request.write_bytes(b"raise\n")
        deadline = time.monotonic() + HEARD_TIMEOUT_S
        while time.monotonic() < deadline:
            if not request.exists():
                return True
            QCoreApplication.processEvents()  # (a test holds both copies in one process)
            time.sleep(0.02)
        request.unlink(missing_ok=True)
        return False

    def release(self) -> None:
        if self.watcher is not None:
            self.watcher.removePaths(self.watcher.directories())
        if self.acquired:
            self.lock.unlock()
            self.acquired = False
