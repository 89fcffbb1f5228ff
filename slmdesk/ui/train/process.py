"""The training child process (QProcess): reads its JSON events line by line and turns them
into signals; cancel sends it SIGINT, so that a LoRA run keeps its checkpoint."""

from __future__ import annotations

import json
import logging
import os
import signal
from typing import Any

from PySide6.QtCore import QObject, QProcess, Signal

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 4000
SHUTDOWN_WAIT_MS = 10_000


class TrainProcess(QObject):
    """One `slmdesk train … --events` run at a time.

    The outcome (``finished``, ``failed`` or ``cancelled``) is emitted once the process has
    exited, so that the whole of its stderr is known and it no longer runs; the events
    before it are emitted as they arrive.
    """

    stage_changed = Signal(str, str)  # stage, message
    progressed = Signal(object)  # the progress event (dict)
    evaluated = Signal(object)  # the evaluated event (dict)
    checkpointed = Signal(object)  # the checkpoint event (dict)
    finished = Signal(object)  # the report (dict)
    failed = Signal(str, str)  # message, the tail of stderr
    cancelled = Signal(str)  # the LoRA job whose checkpoint was kept ("" when none)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.cancelling = False
        self.stderr_tail = ""
        self._stdout = b""
        self._outcome: dict[str, Any] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self, argv: list[str]) -> None:
        """Start ``argv`` (program first); nothing happens while a run is going on."""
        if self.process is not None:
            return
        self.cancelling = False
        self.stderr_tail = ""
        self._stdout = b""
        self._outcome = None
        process = QProcess(self)
        process.setProgram(argv[0])
        process.setArguments(argv[1:])
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_exit)
        process.errorOccurred.connect(self._on_error)
        self.process = process
        self.running_changed.emit(True)
        process.start()

    def cancel(self) -> None:
        """Ask the child to stop: SIGINT, which the command answers like Ctrl-C (a LoRA run
        saves its checkpoint and says ``cancelled``). Windows has no SIGINT for another
        process; there QProcess.terminate asks it to close."""
        process = self.process
        if process is None or self.cancelling:
            return
        self.cancelling = True
        pid = process.processId()
        if os.name == "posix" and pid > 0:
            os.kill(pid, signal.SIGINT)
        else:
            process.terminate()

    def shutdown(self, wait_ms: int = SHUTDOWN_WAIT_MS) -> None:
        """The app quits: cancel the run and give it a moment to keep its checkpoint."""
        process = self.process
        if process is None:
            return
        self.cancel()
        if not process.waitForFinished(wait_ms):
            process.kill()
            process.waitForFinished(1000)

    # the child's output ---------------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self.process is None:
            return
        self._stdout += bytes(self.process.readAllStandardOutput().data())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            self._handle_line(line)

    def _read_stderr(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        self.stderr_tail = (self.stderr_tail + text)[-STDERR_TAIL_CHARS:]

    def _handle_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            return
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            log.debug("train: not an event: %s", line)
            return
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "stage":
            self.stage_changed.emit(str(event.get("stage", "")), str(event.get("message", "")))
        elif kind == "progress":
            self.progressed.emit(event)
        elif kind == "evaluated":
            self.evaluated.emit(event)
        elif kind == "checkpoint":
            self.checkpointed.emit(event)
        elif kind in ("finished", "failed", "cancelled"):
            self._outcome = event

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            message = f"The trainer could not start: {self.process.errorString()}"
            self._end()
            self.failed.emit(message, self.stderr_tail)

    def _on_exit(self, exit_code: int, _status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        if self._stdout:
            self._handle_line(self._stdout)
        outcome, cancelling = self._outcome, self.cancelling
        self._end()
        kind = outcome.get("event") if outcome else None
        if outcome is not None and kind == "finished":
            self.finished.emit(outcome.get("report") or {})
        elif outcome is not None and kind == "failed":
            self.failed.emit(str(outcome.get("message") or "The training failed."),
                             self.stderr_tail)
        elif kind == "cancelled" or cancelling:
            self.cancelled.emit(str(outcome.get("job") or "") if outcome else "")
        else:
            self.failed.emit(f"The training stopped unexpectedly (exit code {exit_code}).",
                             self.stderr_tail)

    def _end(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.deleteLater()
        self.running_changed.emit(False)
