"""Remember which model file a process is loading, so that a load that killed it is not repeated.

llama.cpp can abort the whole process while it loads a model (a ``GGML_ASSERT`` on a file that
passed our checks, an out-of-memory kill). Python cannot catch that, so before a load the
process writes a small mark file naming the model and itself, and removes it when the load
returns, whether it succeeded or failed with an error. A mark whose process is gone means
that load took the process down: the next start does not load that model on its own and
says why; loading it explicitly clears the mark.

Each ``LoadGuard`` writes its own file (``<data_dir>/loading/<pid>-<token>.json``), so a GUI
and a command line that share a home never overwrite each other's marks, and a mark left by
a dead process survives a new process that happens to get the same pid.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from slmdesk.json_data import JsonFields

log = logging.getLogger(__name__)

MARKS_DIR = "loading"
MAX_MARK_BYTES = 64 * 1024  # a mark is a few hundred bytes; anything bigger is not ours


@dataclass(frozen=True)
class LoadMark(JsonFields):
    """A load in progress (or, once its process is gone, a load that crashed)."""

    path: str
    model_id: str | None
    model_name: str | None
    pid: int
    process_started: float | None  # the process's start time, to tell a reused pid apart
    started_at: str  # UTC ISO time the load began

    @classmethod
    def from_json(cls, data: Any) -> LoadMark | None:
        """The mark in ``data``, or None when it is not a mark this version wrote."""
        if not isinstance(data, dict):
            return None
        path, pid = data.get("path"), data.get("pid")
        if not isinstance(path, str) or not isinstance(pid, int) or isinstance(pid, bool):
            return None
        started = data.get("process_started")

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        return cls(
            path=path,
            model_id=text("model_id"),
            model_name=text("model_name"),
            pid=pid,
            process_started=float(started) if isinstance(started, (int, float)) else None,
            started_at=text("started_at") or "",
        )

    @property
    def label(self) -> str:
        """How a message names the model: its name, or its file name."""
        return self.model_name or Path(self.path).name


def _process_started(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def process_alive(pid: int, process_started: float | None) -> bool:
    """Whether the process that wrote a mark still runs (and is not a newer one with its pid)."""
    now_started = _process_started(pid)
    if now_started is None:
        return False
    if process_started is None:
        return True
    # create_time() is computed from boot time and clock ticks: the same process gives the
    # same value, a different process with a reused pid a later one.
    return abs(now_started - process_started) < 0.5


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return a == b


class LoadGuard:
    """Writes this process's mark around a load and finds the marks of crashed loads."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(data_dir) / MARKS_DIR
        self._pid = os.getpid()
        self._file = self.dir / f"{self._pid}-{secrets.token_hex(4)}.json"

    # this process's mark -------------------------------------------------------------
    def begin(
        self, path: str | os.PathLike[str], *, model_id: str | None = None,
        model_name: str | None = None,
    ) -> LoadMark:
        """Record that this process is about to load ``path`` (atomically replaces the mark)."""
        mark = LoadMark(
            path=os.path.abspath(os.fspath(path)),
            model_id=model_id,
            model_name=model_name,
            pid=self._pid,
            process_started=_process_started(self._pid),
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self._file.with_suffix(".tmp")
            tmp.write_text(json.dumps(mark.to_json()), encoding="utf-8")
            # A reader sees the old mark or the new one, never half a file.
            os.replace(tmp, self._file)
        except OSError as exc:
            # The guard is a safety net: a full or read-only disk must not stop the load.
            log.warning("cannot record the model load in %s: %s", self.dir, exc)
        return mark

    def end(self, path: str | os.PathLike[str] | None = None) -> None:
        """The load returned (loaded or failed with an error): remove this process's mark.

        With ``path``, only a mark for that file is removed, so that the end of an older
        load does not clear the mark of a newer one started meanwhile.
        """
        if path is not None:
            mine = self._read(self._file)
            if mine is not None and not _same_file(mine.path, os.fspath(path)):
                return
        try:
            self._file.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove the load mark %s: %s", self._file, exc)

    @contextmanager
    def loading(
        self, path: str | os.PathLike[str], *, model_id: str | None = None,
        model_name: str | None = None,
    ) -> Iterator[LoadMark]:
        """Hold a mark while the body loads ``path``; an exception still removes it."""
        mark = self.begin(path, model_id=model_id, model_name=model_name)
        try:
            yield mark
        finally:
            self.end()

    # marks of other processes --------------------------------------------------------
    def _read(self, file: Path) -> LoadMark | None:
        try:
            with file.open("rb") as f:
                raw = f.read(MAX_MARK_BYTES + 1)
        except OSError:
            return None
        if len(raw) > MAX_MARK_BYTES:
            return None
        try:
            return LoadMark.from_json(json.loads(raw.decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            return None

    def _mark_files(self) -> list[Path]:
        try:
            return sorted(p for p in self.dir.glob("*.json") if p != self._file)
        except OSError:
            return []

    def crashed(self) -> list[LoadMark]:
        """Marks left by processes that are gone: loads that took their process down."""
        out = []
        for file in self._mark_files():
            mark = self._read(file)
            if mark is not None and not process_alive(mark.pid, mark.process_started):
                out.append(mark)
        return out

    def crash_for(self, path: str | os.PathLike[str]) -> LoadMark | None:
        """The crashed load of ``path``, if a dead process left one."""
        for mark in self.crashed():
            if _same_file(mark.path, os.fspath(path)):
                return mark
        return None

    def forget(self, path: str | os.PathLike[str]) -> int:
        """Remove the crash marks for ``path`` (the person asked to load it); returns how many."""
        removed = 0
        for file in self._mark_files():
            mark = self._read(file)
            if mark is None or not _same_file(mark.path, os.fspath(path)):
                continue
            if process_alive(mark.pid, mark.process_started):
                continue
            try:
                file.unlink(missing_ok=True)
                removed += 1
            except OSError as exc:
                log.warning("cannot remove the load mark %s: %s", file, exc)
        return removed


def crash_message(mark: LoadMark, *, retry: str) -> str:
    """What to tell the person about a load that crashed, with ``retry`` saying how to try again."""
    when = f" ({mark.started_at.replace('T', ' ')[:16]} UTC)" if mark.started_at else ""
    return (
        f"slmdesk stopped while loading the model {mark.label}{when}, so it is not "
        f"loaded automatically this time: the file may crash the engine. {retry}"
    )
