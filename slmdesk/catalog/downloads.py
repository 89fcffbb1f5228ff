"""The download manager: a persistent queue of hub files, fetched with resume and verified.

Plain Python with threads; the GUI wraps it in a Qt adapter and the CLI drives it
directly. Each download is a row of the ``downloads`` table. Its bytes go to
``<file>.part`` next to the destination; the partial file's real size (not the database
counter) is where a resume starts, with ``Range`` and ``If-Range`` against the commit
pinned when the download was resolved. Bytes are hashed as they are written, so the sha256
check against the hub's LFS hash costs almost nothing at the end; a resumed download
re-hashes its partial first, on the worker thread. Only a verified file is renamed into
place and registered as a model.

Threads: one worker thread per running download (``max_parallel`` at once), each with
its own SQLite connection; the caller's thread (the GUI's) gets short-lived connections
of its own for ``enqueue``/``pause``/``list`` and never shares one with a worker.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import random
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal

from slmdesk.catalog import hub
from slmdesk.errors import (
    DownloadError,
    InvalidInputError,
    ModelFileError,
    UserFacingError,
)
from slmdesk.store.db import open_database
from slmdesk.store.downloads import (
    CANCELLED,
    DONE,
    FAILED,
    FINAL_STATES,
    PAUSED,
    QUEUED,
    RUNNING,
    STATES,
    VERIFYING,
    DownloadRecord,
    DownloadRepository,
)

__all__ = [
    "CANCELLED", "DONE", "FAILED", "FINAL_STATES", "PAUSED", "QUEUED", "RUNNING", "STATES",
    "VERIFYING", "DownloadEvent", "DownloadManager", "DownloadRecord", "Listener",
]

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 1024 * 1024
PROGRESS_EVENT_S: Final = 0.1  # ~10 events a second per download
PROGRESS_DB_S: Final = 1.0  # ~1 database write a second per download
DISK_MARGIN_BYTES: Final = 64 * 1024 * 1024
MAX_BACKOFF_S: Final = 60.0
PART_SUFFIX: Final = ".part"


@dataclass(frozen=True)
class DownloadEvent:
    """What a listener hears: a progress tick (throttled) or a state change."""

    kind: Literal["progress", "state"]
    record: DownloadRecord
    speed_bps: float | None = None
    eta_s: float | None = None


Listener = Callable[[DownloadEvent], None]


class _Stop(Exception):
    """The download was paused, cancelled or the manager is shutting down."""


class _Transient(Exception):
    """A failure worth retrying (drop, reset, stall, server error)."""

    def __init__(self, message: str, *, progressed: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.progressed = progressed


class _Task:
    """A running download's control block, shared by its worker and the controlling thread."""

    def __init__(self, download_id: str) -> None:
        self.id = download_id
        self.stop_reason: str | None = None
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self._response: hub.HubResponse | None = None
        self._lock = threading.Lock()

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            response = self._response
        self.wake.set()
        if response is not None:
            response.abort()

    def attach(self, response: hub.HubResponse | None) -> None:
        with self._lock:
            self._response = response
            stopping = self.stop_reason is not None
        if response is not None and stopping:
            response.abort()

    def check(self) -> None:
        if self.stop_reason is not None:
            raise _Stop(self.stop_reason)


def _write_chunk(f: IO[bytes], data: bytes) -> None:
    """Write one chunk to the partial file (a seam for tests that fill the disk)."""
    f.write(data)


def _lock_file(f: IO[bytes]) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False if another holder has it.

    The OS drops the lock when its process dies (even by kill -9), which is how a restart
    tells a download left "running" by a dead process from one a live process is fetching.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _part_in_use(part_path: str) -> bool:
    try:
        f = open(part_path, "rb")
    except OSError:
        return False
    try:
        return not _lock_file(f)
    finally:
        f.close()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.1f} MB"


class DownloadManager:
    """A persistent download queue with ``max_parallel`` worker threads.

    ``listener`` is called from worker threads (and from the caller's thread for its own
    requests); it must return quickly and must not block on the manager.
    """

    def __init__(
        self,
        database_path: Path,
        models_dir: Path,
        *,
        listener: Listener | None = None,
        max_parallel: int = 2,
        stall_timeout_s: float = 30.0,
        max_attempts: int = 6,
        backoff_s: float = 1.0,
        token: str | None = None,
        disk_margin_bytes: int = DISK_MARGIN_BYTES,
    ) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.database_path = Path(database_path)
        self.models_dir = Path(models_dir)
        self.listener = listener
        self.max_parallel = max_parallel
        self.stall_timeout_s = stall_timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.token = token
        self.disk_margin_bytes = disk_margin_bytes
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._tasks: dict[str, _Task] = {}
        self._started = False
        self._closed = False
        # Make sure the schema exists before any worker opens the file.
        open_database(self.database_path).conn.close()

    # -- database ----------------------------------------------------------------------

    @contextmanager
    def _db(self) -> Iterator[DownloadRepository]:
        db = open_database(self.database_path, migrate=False)
        try:
            yield DownloadRepository(db)
        finally:
            db.conn.close()

    # -- events ------------------------------------------------------------------------

    def _emit(self, event: DownloadEvent) -> None:
        if event.kind == "state":
            with self._changed:
                self._changed.notify_all()
        if self.listener is None:
            return
        try:
            self.listener(event)
        except Exception:  # a broken listener must not stop a download
            log.exception("download listener failed")

    def _state_event(self, record: DownloadRecord) -> None:
        self._emit(DownloadEvent("state", record))

    # -- public API --------------------------------------------------------------------

    def dest_for(self, repo_id: str, filename: str) -> Path:
        """Where a hub file lands: ``<models_dir>/<owner>/<name>/<filename>``."""
        hub.validate_repo_id(repo_id)
        hub.safe_filename(filename)
        owner, name = repo_id.split("/")
        return self.models_dir / owner / name / Path(*filename.split("/"))

    def enqueue(self, repo_id: str, filename: str, *, revision: str | None = None,
                display_name: str | None = None, licence: str | None = None,
                expected_sha256: str | None = None, size_bytes: int | None = None
                ) -> DownloadRecord:
        """Queue a hub file (database only; the network is touched on a worker thread).

        An unfinished download of the same file is reused (a paused or failed one is
        queued again, resuming its partial file); a finished one whose file is still
        there is returned as it is.
        """
        dest = self.dest_for(repo_id, filename)
        with self._lock, self._db() as downloads:
            old = downloads.latest_for_file(repo_id, filename)
            if old is not None:
                if old.state == DONE and os.path.isfile(old.dest_path):
                    return old
                stale = (
                    old.state in (RUNNING, VERIFYING)
                    and old.id not in self._tasks
                    and not _part_in_use(old.part_path)
                )
                if old.state in (QUEUED, RUNNING, VERIFYING) and not stale:
                    self._schedule()
                    return old
                if old.state in (PAUSED, FAILED) or stale:
                    # A stale "running" row was left by a process that died.
                    record = downloads.update(old.id, state=QUEUED, error=None)
                    self._state_event(record)
                    self._schedule()
                    return record
            record = downloads.add(
                repo_id=repo_id, filename=filename, revision=revision or "main",
                dest_path=str(dest), part_path=str(dest) + PART_SUFFIX, size_bytes=size_bytes,
                sha256=expected_sha256.lower() if expected_sha256 else None,
                display_name=display_name, licence=licence,
            )
        self._state_event(record)
        self._schedule()
        return record

    def get(self, download_id: str) -> DownloadRecord:
        with self._db() as downloads:
            return downloads.get(download_id)

    def list(self) -> list[DownloadRecord]:
        """Every download, oldest first."""
        with self._db() as downloads:
            return downloads.all()

    def pause(self, download_id: str) -> DownloadRecord:
        """Stop fetching and keep the partial file; ``resume`` goes on from it."""
        with self._lock, self._db() as downloads:
            record = downloads.get(download_id)
            if record.state not in (QUEUED, RUNNING):
                return record
            record = downloads.update(download_id, state=PAUSED, error=None)
            task = self._tasks.get(download_id)
            if task is not None:
                task.stop(PAUSED)
        self._state_event(record)
        return record

    def resume(self, download_id: str) -> DownloadRecord:
        """Queue a paused or failed download again; it goes on from its partial file."""
        with self._lock, self._db() as downloads:
            record = downloads.get(download_id)
            if record.state == CANCELLED:
                raise InvalidInputError(
                    "A cancelled download cannot be resumed; download the file again."
                )
            if record.state not in (PAUSED, FAILED):
                return record
            record = downloads.update(download_id, state=QUEUED, error=None)
        self._state_event(record)
        self._schedule()
        return record

    def cancel(self, download_id: str) -> DownloadRecord:
        """Stop for good and delete the partial file."""
        with self._lock, self._db() as downloads:
            record = downloads.get(download_id)
            if record.state in (DONE, CANCELLED, VERIFYING):
                return record
            record = downloads.update(download_id, state=CANCELLED, error=None)
            task = self._tasks.get(download_id)
            if task is not None:
                task.stop(CANCELLED)  # the worker deletes the partial once it let go of it
            else:
                _remove(record.part_path)
        self._state_event(record)
        return record

    def start(self) -> None:
        """Start working the queue, picking up what a previous process left unfinished.

        Rows left ``running`` or ``verifying`` by a process that died are queued again
        (their partial files are resumed); paused ones stay paused.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the download manager was shut down")
            if self._started:
                return
            self._started = True
            requeued = []
            with self._db() as downloads:
                for left in downloads.in_states((RUNNING, VERIFYING)):
                    if left.id in self._tasks or _part_in_use(left.part_path):
                        continue  # another live process is fetching it
                    requeued.append(downloads.update(left.id, state=QUEUED))
        for record in requeued:
            self._state_event(record)
        self._schedule()

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop the workers promptly; unfinished rows stay resumable by the next ``start``."""
        with self._lock:
            self._closed = True
            tasks = list(self._tasks.values())
        for task in tasks:
            task.stop("shutdown")
        deadline = time.monotonic() + timeout_s
        for task in tasks:
            if task.thread is not None:
                task.thread.join(max(0.0, deadline - time.monotonic()))

    def wait(self, download_id: str, timeout_s: float | None = None) -> DownloadRecord:
        """Block until the download is done, failed, cancelled or paused (or the timeout).

        It returns once this manager's worker has let go of the download too (a cancelled
        download's partial file is gone then).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            record = self.get(download_id)
            settled = record.finished or record.state == PAUSED
            if settled and download_id not in self._tasks:
                return self.get(download_id)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return record
            with self._changed:
                # Also poll: another process may change the row without telling us.
                self._changed.wait(0.25 if remaining is None else min(0.25, remaining))

    # -- scheduling --------------------------------------------------------------------

    def _schedule(self) -> None:
        with self._lock:
            if not self._started or self._closed:
                return
            free = self.max_parallel - len(self._tasks)
            if free <= 0:
                return
            with self._db() as downloads:
                queued = downloads.in_states((QUEUED,))
            for record in queued:
                if free <= 0:
                    break
                if record.id in self._tasks:
                    continue
                task = _Task(record.id)
                task.thread = threading.Thread(
                    target=self._worker, args=(task,), name=f"download-{record.id}", daemon=True
                )
                self._tasks[record.id] = task
                task.thread.start()
                free -= 1

    def _worker(self, task: _Task) -> None:
        try:
            with self._db() as downloads:
                _DownloadWork(self, downloads, task).run()
        except Exception:  # thread boundary: a bug, logged with its traceback
            log.exception("download %s failed unexpectedly", task.id)
            try:
                with self._db() as downloads:
                    _DownloadWork(self, downloads, task).fail(
                        "The download stopped because of an unexpected error; see the log. "
                        "Resume to try again."
                    )
            except Exception:
                log.exception("could not record the failure of download %s", task.id)
        finally:
            with self._lock:
                self._tasks.pop(task.id, None)
                closed = self._closed
            with self._changed:
                self._changed.notify_all()
            if not closed:
                self._schedule()


class _DownloadWork:
    """One download's work on its worker thread: resolve, fetch with retries, verify,
    register; every state it writes goes through the manager's lock and listener."""

    def __init__(
        self, manager: DownloadManager, downloads: DownloadRepository, task: _Task
    ) -> None:
        self.manager = manager
        self.downloads = downloads
        self.task = task

    def _transition(self, state: str, **values: Any) -> DownloadRecord:
        """Write a new state unless a pause/cancel got there first (then stop)."""
        with self.manager._lock:
            self.task.check()
            record = self.downloads.update(self.task.id, state=state, **values)
        self.manager._state_event(record)
        return record

    def fail(self, message: str, *, remove_part: bool = False) -> None:
        """Record the download as failed, unless a pause or cancel got there first."""
        with self.manager._lock:
            record = self.downloads.get(self.task.id)
            if remove_part:
                _remove(record.part_path)
            if self.task.stop_reason is not None or record.state in (PAUSED, CANCELLED):
                return
            record = self.downloads.update(
                self.task.id, state=FAILED, error=message,
                downloaded_bytes=0 if remove_part else record.downloaded_bytes,
            )
        self.manager._state_event(record)

    def run(self) -> None:
        """Fetch the download, retrying transient failures with backoff."""
        with self.manager._lock:
            record = self.downloads.get(self.task.id)
            if record.state != QUEUED:
                return
        failures = 0
        try:
            record = self._transition(RUNNING, error=None)
            while True:
                try:
                    self._attempt(record)
                    return
                except _Transient as exc:
                    failures = 1 if exc.progressed else failures + 1
                    record = self.downloads.get(self.task.id)
                    attempts = record.attempts + 1
                    if failures >= self.manager.max_attempts:
                        self.downloads.update(self.task.id, attempts=attempts)
                        self.fail(
                            f"{exc.message} Gave up after {failures} tries in a row; the "
                            "partial file is kept, resume to go on from it.",
                        )
                        return
                    delay = min(MAX_BACKOFF_S, self.manager.backoff_s * 2 ** (failures - 1))
                    delay *= random.uniform(0.5, 1.5)
                    record = self._transition(
RUNNING, attempts=attempts,
                        error=f"{exc.message} Retrying in {delay:.0f} s.",
                    )
                    if self.task.wake.wait(delay):
                        self.task.check()
        except _Stop:
            self._stopped()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                self.fail(
                    f"The disk is full: {record.label} could not be written to "
                    f"{Path(record.dest_path).parent}. The partial file was removed; free "
                    "some space and download it again.",
                    remove_part=True,
                )
            else:
                self.fail(
                    f"Cannot write {record.part_path}: {exc.strerror or exc}.",
                )
        except hub.HubOfflineError as exc:
            self.fail(f"{exc.message} Not retried; resume the download once you are online "
                      "(it goes on from its partial file).")
        except UserFacingError as exc:
            self.fail(exc.message, remove_part=isinstance(exc, _BadBytes))

    def _stopped(self) -> None:
        """Leave the row as the pause/cancel wrote it; a cancel also loses its partial file."""
        with self.manager._lock:
            record = self.downloads.get(self.task.id)
            if self.task.stop_reason is None:
                # Another process holds the partial file: it is running there, and this
                # manager must not pick it up again until that one lets go.
                record = self.downloads.update(self.task.id, state=RUNNING)
            elif self.task.stop_reason == CANCELLED or record.state == CANCELLED:
                _remove(record.part_path)
                record = self.downloads.update(self.task.id, downloaded_bytes=0)
            elif os.path.exists(record.part_path):
                record = self.downloads.update(
                    self.task.id, downloaded_bytes=os.path.getsize(record.part_path)
                )
        self.manager._state_event(record)

    def _resolve(self, record: DownloadRecord) -> DownloadRecord:
        """Pin the commit and learn the size and sha256 of the file (once per download)."""
        if hub.is_commit(record.revision) and record.size_bytes and record.sha256:
            return record
        try:
            commit, files = hub.list_gguf_files(
                record.repo_id, revision=record.revision, token=self.manager.token
            )
        except hub.HubOfflineError:
            raise  # no network: retrying in a second would only keep the person waiting
        except hub.HubUnreachableError as exc:
            raise _Transient(exc.message) from exc
        self.task.check()
        found = next((f for f in files if f.filename == record.filename), None)
        if found is None:
            raise DownloadError(
                f"{record.repo_id} has no GGUF file {record.filename} at {record.revision}."
            )
        if found.sha256 is None or found.size_bytes is None:
            raise DownloadError(
                f"The hub gives no sha256 for {record.filename}, so slmdesk cannot verify "
                "the download; it was not started."
            )
        if record.sha256 and record.sha256 != found.sha256:
            raise DownloadError(
                f"{record.filename} on the hub (sha256 {found.sha256[:12]}...) is not the "
                f"file that was expected (sha256 {record.sha256[:12]}...); it was not "
                "downloaded."
            )
        with self.manager._lock:
            self.task.check()
            return self.downloads.update(
                self.task.id, revision=commit, size_bytes=found.size_bytes, sha256=found.sha256
            )

    def _check_disk(self, record: DownloadRecord, have: int) -> None:
        assert record.size_bytes is not None
        folder = Path(record.dest_path).parent
        free = shutil.disk_usage(folder).free
        need = record.size_bytes - have
        if free < need + self.manager.disk_margin_bytes:
            raise DownloadError(
                f"Not enough free disk space for {record.label}: it needs {_mb(need)} more "
                f"(and {_mb(self.manager.disk_margin_bytes)} to spare), but {folder} has "
                f"{_mb(free)} free. Free some space or choose another models folder."
            )

    def _attempt(self, record: DownloadRecord) -> None:
        """One try: resolve, fetch what is missing, verify, move into place, register."""
        self.task.check()
        record = self._resolve(record)
        assert record.size_bytes is not None and record.sha256 is not None
        size = record.size_bytes
        part = Path(record.part_path)
        part.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "a+b") as f:
            if not _lock_file(f):
                # Another process (a second slmdesk) is fetching this very file.
                raise _Stop("elsewhere")
            have = f.seek(0, os.SEEK_END)
            if have > size:
                f.truncate(0)
                have = 0
            self._check_disk(record, have)
            hasher = self._hash_existing(f, have)
            if have < size:
                hasher = self._fetch(record, f, hasher, have)
            f.flush()
            os.fsync(f.fileno())
        self._finish(record, hasher.hexdigest())

    def _hash_existing(self, f: IO[bytes], have: int) -> Any:
        hasher = hashlib.sha256()
        f.seek(0)
        left = have
        while left > 0:
            self.task.check()
            chunk = f.read(min(CHUNK_BYTES * 4, left))
            if not chunk:
                break
            hasher.update(chunk)
            left -= len(chunk)
        return hasher

    def _fetch(self, record: DownloadRecord, f: IO[bytes], hasher: Any, have: int) -> Any:
        """Append the missing bytes to the partial file; return the hash of all its bytes."""
        assert record.size_bytes is not None
        size = record.size_bytes
        try:
            response = hub.open_hub_file(
                record.repo_id, record.filename, record.revision,
                start=have, if_range=record.etag if have else None,
                token=self.manager.token, timeout=self.manager.stall_timeout_s,
                on_open=self.task.attach,
            )
        except hub.HTTPStatusError as exc:
            self.task.check()
            if exc.status == 416:
                f.truncate(0)
                raise _Transient(exc.message) from exc
            if exc.transient:
                raise _Transient(exc.message) from exc
            raise
        except hub.HubOfflineError:
            self.task.check()
            raise
        except hub.HubUnreachableError as exc:
            self.task.check()
            raise _Transient(exc.message) from exc
        try:
            if response.status == 200 and have:
                # The server sent the whole file (the If-Range validator no longer
                # matched, or it ignores ranges): start over rather than splice.
                f.truncate(0)
                have = 0
                hasher = hashlib.sha256()
            total = response.total_size
            if response.status == 206:
                parsed = response.content_range
                if parsed is None or parsed[0] != have:
                    raise _Transient("The server sent a different part of the file than asked.")
            if total is not None and total != size:
                raise _BadBytes(
                    f"The server offers {record.filename} with {total:,} bytes, but the hub "
                    f"lists {size:,}; the download was stopped and its bytes removed."
                )
            if response.etag and response.etag != record.etag:
                with self.manager._lock:
                    record = self.downloads.update(self.task.id, etag=response.etag)
            self._transfer(record, response, f, hasher, have)
            return hasher
        finally:
            self.task.attach(None)
            response.close()

    def _transfer(
        self, record: DownloadRecord, response: hub.HubResponse, f: IO[bytes], hasher: Any,
        have: int,
    ) -> None:
        """Read the response into the partial file and the hash, reporting progress."""
        assert record.size_bytes is not None
        size = record.size_bytes
        first = have
        now = time.monotonic()
        last_event = last_db = sample_t = now
        sample_bytes = have
        speed: float | None = None
        while have < size:
            try:
                chunk = response.read(min(CHUNK_BYTES, size - have))
            except TimeoutError as exc:
                self.task.check()
                raise _Transient(
                    f"No data for {self.manager.stall_timeout_s:g} s (the transfer stalled).",
                    progressed=have > first,
                ) from exc
            except Exception as exc:
                # A reset (OSError), http.client's IncompleteRead, or whatever a socket shut
                # down under the read by pause/cancel raises: all mean "this try is over".
                self.task.check()
                raise _Transient(
                    f"The connection was lost at {_mb(have)} of {_mb(size)} "
                    f"({type(exc).__name__}).",
                    progressed=have > first,
                ) from exc
            # A shut-down socket may still hand over what is already buffered (Linux
            # keeps accepting data after SHUT_RD), so a pause is checked on every chunk.
            self.task.check()
            if not chunk:
                self._save_progress(have)
                raise _Transient(
                    f"The connection closed at {_mb(have)} of {_mb(size)}.",
                    progressed=have > first,
                )
            _write_chunk(f, chunk)
            hasher.update(chunk)
            have += len(chunk)
            now = time.monotonic()
            if now - last_event >= PROGRESS_EVENT_S or have >= size:
                dt = now - sample_t
                if dt > 0:
                    current = (have - sample_bytes) / dt
                    speed = current if speed is None else 0.7 * speed + 0.3 * current
                sample_t, sample_bytes = now, have
                last_event = now
                eta = (size - have) / speed if speed else None
                self.manager._emit(
                    DownloadEvent(
                        "progress",
                        dataclasses.replace(record, downloaded_bytes=have, state=RUNNING),
                        speed_bps=speed,
                        eta_s=eta,
                    )
                )
            if now - last_db >= PROGRESS_DB_S:
                last_db = now
                self._save_progress(have)

    def _save_progress(self, have: int) -> None:
        try:
            self.downloads.update(self.task.id, downloaded_bytes=have)
        except sqlite3.OperationalError as exc:
            # A busy database must not stop a download; the partial file is the truth.
            log.warning("could not save download progress: %s", exc)

    def _finish(self, record: DownloadRecord, digest: str) -> None:
        assert record.size_bytes is not None and record.sha256 is not None
        expected = record.sha256
        record = self._transition(VERIFYING, downloaded_bytes=record.size_bytes)
        if digest != expected:
            _remove(record.part_path)
            self.downloads.update(self.task.id, downloaded_bytes=0, etag=None)
            raise _BadBytes(
                f"{record.label} failed verification: its sha256 is {digest[:16]}..., the "
                f"hub says {expected[:16]}.... The damaged file was deleted and nothing "
                "was registered; download it again."
            )
        dest = Path(record.dest_path)
        os.replace(record.part_path, dest)
        _fsync_dir(dest.parent)
        from slmdesk.catalog.registry import import_model

        try:
            model = import_model(
                self.downloads.db, dest, source="download", name=record.display_name,
                licence=record.licence, sha256=digest,
                hub=(record.repo_id, record.revision, record.filename),
            )
        except ModelFileError as exc:
            _remove(str(dest))
            raise DownloadError(
                f"{record.label} was downloaded intact but cannot be used: {exc.message}"
            ) from exc
        with self.manager._lock:
            record = self.downloads.update(self.task.id, state=DONE, error=None, model_id=model.id)
        self.manager._state_event(record)


class _BadBytes(DownloadError):
    """The bytes on disk are wrong (size or hash); the partial file must go."""


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open a directory.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
