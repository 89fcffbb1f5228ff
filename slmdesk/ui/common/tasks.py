"""The one background task runner of the views: run a plain function on the thread pool
(reading a file, writing an export, hashing, a hub request) and hand its result or its error
text back on the GUI thread."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from slmdesk.errors import UserFacingError

log = logging.getLogger(__name__)

T = TypeVar("T")
Then = Callable[[Any, str], None]  # (result, error message; "" when fine)


class _Relay(QObject):
    """Carries a background task's outcome back to the GUI thread (queued by Qt)."""

    finished = Signal(int, object, str)  # ticket, result, error message ("" when fine)


class _Task(QRunnable):
    """Runs ``work`` on the thread pool; broad ``except`` here only, at the thread boundary."""

    def __init__(self, ticket: int, work: Callable[[], Any], relay: _Relay, what: str) -> None:
        super().__init__()
        self.ticket, self.work, self.relay, self.what = ticket, work, relay, what

    def run(self) -> None:
        try:
            result = self.work()
        except UserFacingError as exc:
            self.relay.finished.emit(self.ticket, None, exc.message)
        except OSError as exc:
            self.relay.finished.emit(
                self.ticket, None, f"Cannot {self.what}: {exc.strerror or exc}")
        except UnicodeDecodeError:
            self.relay.finished.emit(
                self.ticket, None, f"Cannot {self.what}: it is not UTF-8 text.")
        except Exception as exc:  # a bug: keep the app alive, say so, log the traceback
            log.exception("background task failed: %s", self.what)
            self.relay.finished.emit(
                self.ticket, None, f"Internal error while trying to {self.what}: "
                f"{type(exc).__name__}: {exc}")
        else:
            self.relay.finished.emit(self.ticket, result, "")


class BackgroundTasks(QObject):
    """Starts functions on the global thread pool and calls ``then(result, error)`` on the
    GUI thread when each ends. ``what`` ("write out.csv") words the error messages.

    The work must not touch the database or any widget: build what it needs first, on the
    GUI thread, and let it only read or write files.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relay = _Relay(self)
        self._relay.finished.connect(self._on_finished)
        self._then: dict[int, Then] = {}
        self._next = 1

    def start(self, work: Callable[[], T], what: str,
              then: Callable[[T | None, str], None]) -> int:
        """Run ``work`` off the GUI thread; ``then(result, "")`` or ``then(None, error)``."""
        ticket = self._next
        self._next += 1
        self._then[ticket] = then
        QThreadPool.globalInstance().start(_Task(ticket, work, self._relay, what))
        return ticket

    def pending(self) -> int:
        """How many tasks have not reported back yet."""
        return len(self._then)

    def _on_finished(self, ticket: int, result: Any, error: str) -> None:
        then = self._then.pop(ticket, None)
        if then is not None:
            then(result, error)
