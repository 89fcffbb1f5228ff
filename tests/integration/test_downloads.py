"""The download manager against the fake hub: drops, resets, stalls, corruption, restarts.

Every case ends with a verified, registered file or a clear error, never a registered
corrupt file. Resumed downloads must re-fetch less than 5% of the file (the server counts
the bytes it sent).
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.catalog import downloads as downloads_module
from slmdesk.catalog.downloads import DownloadEvent, DownloadManager, DownloadRecord
from slmdesk.errors import InvalidInputError
from slmdesk.store.db import integrity_check, open_database
from slmdesk.store.models import ModelRepository
from tests.hubserver import (
    GATED_FILE,
    GATED_REPO,
    SMOL_FILE,
    SMOL_REPO,
    TINY_FILES,
    TINY_REPO,
    FakeHub,
    Fault,
)

TIMEOUT = 120.0


class Events:
    """Collects manager events; lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.items: list[DownloadEvent] = []
        self.cond = threading.Condition()
        self.running: set[str] = set()
        self.max_running = 0

    def __call__(self, event: DownloadEvent) -> None:
        with self.cond:
            self.items.append(event)
            if event.kind == "state":
                if event.record.state == "running":
                    self.running.add(event.record.id)
                else:
                    self.running.discard(event.record.id)
                self.max_running = max(self.max_running, len(self.running))
            self.cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float = TIMEOUT) -> DownloadEvent:
        with self.cond:
            found: list[DownloadEvent] = []

            def check() -> bool:
                found[:] = [e for e in self.items if predicate(e)]
                return bool(found)

            assert self.cond.wait_for(check, timeout), "the expected event never came"
            return found[0]

    def progress_past(self, download_id: str, fraction: float) -> DownloadEvent:
        return self.wait_for(
            lambda e: e.kind == "progress" and e.record.id == download_id
            and (e.record.fraction or 0) >= fraction
        )


@pytest.fixture
def db_path(slmdesk_home: Path) -> Path:
    return slmdesk_home / "data" / "slmdesk.db"


@pytest.fixture
def models_dir(slmdesk_home: Path) -> Path:
    return slmdesk_home / "data" / "models"


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def make_manager(
    db_path: Path, models_dir: Path, events: Events
) -> Iterator[Any]:
    managers: list[DownloadManager] = []

    def make(**kwargs: Any) -> DownloadManager:
        options: dict[str, Any] = {
            "listener": events, "stall_timeout_s": 2.0, "backoff_s": 0.05, "max_attempts": 4,
        }
        options.update(kwargs)
        manager = DownloadManager(db_path, models_dir, **options)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.shutdown()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _registered(db_path: Path) -> list[Any]:
    db = open_database(db_path)
    try:
        return [m for m in ModelRepository(db).list() if m.source == "download"]
    finally:
        db.conn.close()


def assert_verified_and_registered(
    hub_server: FakeHub, db_path: Path, record: DownloadRecord, repo_id: str, filename: str
) -> None:
    assert record.state == "done", record.error
    expected = hub_server.sha256(repo_id, filename)
    dest = Path(record.dest_path)
    assert dest.is_file() and not Path(record.part_path).exists()
    assert _sha256(dest) == expected
    (model,) = [m for m in _registered(db_path) if m.id == record.model_id]
    assert model.sha256 == expected
    assert (model.repo_id, model.revision, model.hub_filename) == (
        repo_id, hub_server.repos[repo_id].commit, filename,
    )
    assert Path(model.path) == dest.resolve()


def refetched_fraction(hub_server: FakeHub, repo_id: str, filename: str) -> float:
    size = hub_server.size(repo_id, filename)
    return (hub_server.bytes_sent(filename) - size) / size


# -- faults on the real 98 MB model ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop", "reset"])
@pytest.mark.parametrize("at", [0.10, 0.50, 0.99])
def test_connection_lost_then_resumed(
    hub_server: FakeHub, model_path: Path, make_manager: Any, db_path: Path,
    kind: str, at: float,
) -> None:
    hub_server.inject(Fault(kind, at=at, filename=SMOL_FILE))  # type: ignore[arg-type]
    manager = make_manager()
    manager.start()
    record = manager.enqueue(SMOL_REPO, SMOL_FILE, display_name="SmolLM2 135M")
    record = manager.wait(record.id, TIMEOUT)
    assert_verified_and_registered(hub_server, db_path, record, SMOL_REPO, SMOL_FILE)
    requests = hub_server.file_requests(SMOL_FILE)
    assert [r.fault for r in requests] == [kind, None]
    assert requests[1].status == 206 and requests[1].range_start > 0
    assert record.attempts == 1
    assert refetched_fraction(hub_server, SMOL_REPO, SMOL_FILE) < 0.05


def test_stalled_transfer_is_aborted_and_resumed(
    hub_server: FakeHub, model_path: Path, make_manager: Any, db_path: Path
) -> None:
    hub_server.inject(Fault("stall", at=0.3, filename=SMOL_FILE))
    manager = make_manager(stall_timeout_s=0.5)
    manager.start()
    record = manager.wait(manager.enqueue(SMOL_REPO, SMOL_FILE).id, TIMEOUT)
    assert_verified_and_registered(hub_server, db_path, record, SMOL_REPO, SMOL_FILE)
    requests = hub_server.file_requests(SMOL_FILE)
    assert [r.fault for r in requests] == ["stall", None]
    assert requests[1].range_start > 0
    assert refetched_fraction(hub_server, SMOL_REPO, SMOL_FILE) < 0.05


def test_corrupted_byte_fails_verification_and_registers_nothing(
    hub_server: FakeHub, model_path: Path, make_manager: Any, db_path: Path
) -> None:
    hub_server.inject(Fault("flip", at=0.5, filename=SMOL_FILE))
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(SMOL_REPO, SMOL_FILE).id, TIMEOUT)
    assert record.state == "failed"
    assert record.error is not None
    assert "failed verification" in record.error and "deleted" in record.error
    assert not Path(record.dest_path).exists() and not Path(record.part_path).exists()
    assert record.model_id is None and _registered(db_path) == []
    # Downloading again (the fault is spent) gives the verified file.
    again = manager.wait(manager.enqueue(SMOL_REPO, SMOL_FILE).id, TIMEOUT)
    assert again.id == record.id
    assert_verified_and_registered(hub_server, db_path, again, SMOL_REPO, SMOL_FILE)


# -- faults on a small file --------------------------------------------------------------------


def test_wrong_size_from_the_server_is_refused(
    hub_server: FakeHub, make_manager: Any, db_path: Path
) -> None:
    hub_server.inject(Fault("wrong_size", size_delta=-1000, filename=TINY_FILES[0]))
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(TINY_REPO, TINY_FILES[0]).id, TIMEOUT)
    assert record.state == "failed"
    assert record.error is not None and "the hub lists" in record.error
    assert not Path(record.part_path).exists() and _registered(db_path) == []


def test_server_errors_are_retried_with_backoff(
    hub_server: FakeHub, make_manager: Any, db_path: Path
) -> None:
    hub_server.inject(Fault("status", status=503, times=2, filename=TINY_FILES[0]))
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(TINY_REPO, TINY_FILES[0]).id, TIMEOUT)
    assert_verified_and_registered(hub_server, db_path, record, TINY_REPO, TINY_FILES[0])
    assert record.attempts == 2
    assert [r.status for r in hub_server.file_requests()] == [503, 503, 200]


def test_retries_are_bounded(hub_server: FakeHub, make_manager: Any, db_path: Path) -> None:
    hub_server.inject(Fault("status", status=500, times=100, filename=TINY_FILES[0]))
    manager = make_manager(max_attempts=3)
    manager.start()
    record = manager.wait(manager.enqueue(TINY_REPO, TINY_FILES[0]).id, TIMEOUT)
    assert record.state == "failed"
    assert record.error is not None and "HTTP 500" in record.error and "3 tries" in record.error
    assert len(hub_server.file_requests()) == 3 and _registered(db_path) == []


def test_missing_file_is_not_retried(
    hub_server: FakeHub, make_manager: Any, db_path: Path
) -> None:
    hub_server.inject(Fault("status", status=404, times=5, filename=TINY_FILES[0]))
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(TINY_REPO, TINY_FILES[0]).id, TIMEOUT)
    assert record.state == "failed" and record.attempts == 0
    assert len(hub_server.file_requests()) == 1


@pytest.mark.parametrize("pinned", [False, True], ids=["resolve", "fetch"])
def test_no_network_fails_at_once_with_the_reason_and_no_retry(
    monkeypatch: pytest.MonkeyPatch, make_manager: Any, pinned: bool,
) -> None:
    """A refused connection (no network) is not retried: failed, reason in the row."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    manager = make_manager(backoff_s=5.0)
    manager.start()
    extra: dict[str, Any] = (
        {"revision": "a" * 40, "expected_sha256": "b" * 64, "size_bytes": 1000}
        if pinned else {})
    record = manager.wait(manager.enqueue(TINY_REPO, TINY_FILES[0], **extra).id, TIMEOUT)
    assert record.state == "failed" and record.attempts == 0
    assert record.error is not None and "refused" in record.error
    assert "Retrying" not in record.error


def test_gated_repo_fails_clearly_without_retrying(
    hub_server: FakeHub, make_manager: Any, db_path: Path
) -> None:
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(GATED_REPO, GATED_FILE).id, TIMEOUT)
    assert record.state == "failed" and record.attempts == 0
    assert record.error is not None and "gated repository" in record.error
    assert "HF_TOKEN" in record.error
    assert _registered(db_path) == []


def test_gated_repo_with_token(
    hub_server: FakeHub, make_manager: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.hubserver import GATED_TOKEN

    monkeypatch.setenv("HF_TOKEN", GATED_TOKEN)
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(GATED_REPO, GATED_FILE).id, TIMEOUT)
    assert_verified_and_registered(hub_server, db_path, record, GATED_REPO, GATED_FILE)


def test_offline_mode_fails_without_touching_the_network(
    hub_server: FakeHub, make_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(TINY_REPO, TINY_FILES[0]).id, TIMEOUT)
    assert record.state == "failed"
    assert record.error is not None and "HF_HUB_OFFLINE" in record.error
    assert hub_server.requests == []


def test_changed_file_restarts_instead_of_splicing(
    hub_server: FakeHub, model_path: Path, make_manager: Any, db_path: Path, events: Events
) -> None:
    """If-Range: a partial whose validator no longer matches is fetched again from zero."""
    hub_server.chunk_delay_s = 0.001
    manager = make_manager()
    manager.start()
    record = manager.enqueue(SMOL_REPO, SMOL_FILE)
    events.progress_past(record.id, 0.2)
    manager.pause(record.id)
    assert manager.wait(record.id, TIMEOUT).state == "paused"
    db = open_database(db_path)
    db.table("downloads").update(record.id, {"etag": '"an-older-version"'})
    db.conn.close()
    hub_server.chunk_delay_s = 0.0
    manager.resume(record.id)
    record = manager.wait(record.id, TIMEOUT)
    assert_verified_and_registered(hub_server, db_path, record, SMOL_REPO, SMOL_FILE)
    last = hub_server.file_requests(SMOL_FILE)[-1]
    assert last.status == 200 and last.bytes_sent == hub_server.size(SMOL_REPO, SMOL_FILE)


# -- control: pause, resume, cancel, parallel, restart ---------------------------------------


def test_pause_keeps_the_partial_and_resume_goes_on(
    hub_server: FakeHub, model_path: Path, make_manager: Any, db_path: Path, events: Events
) -> None:
    hub_server.chunk_delay_s = 0.001
    manager = make_manager()
    manager.start()
    record = manager.enqueue(SMOL_REPO, SMOL_FILE)
    progress = events.progress_past(record.id, 0.2)
    assert progress.speed_bps is not None and progress.speed_bps > 0
    assert progress.eta_s is not None and progress.eta_s >= 0
    paused = manager.pause(record.id)
    assert paused.state == "paused"
    paused = manager.wait(record.id, TIMEOUT)
    part = Path(paused.part_path)
    size_at_pause = part.stat().st_size
    assert 0 < size_at_pause < hub_server.size(SMOL_REPO, SMOL_FILE)
    assert paused.downloaded_bytes == size_at_pause  # the partial file is the truth
    sent_at_pause = hub_server.bytes_sent(SMOL_FILE)
    # Nothing more arrives while paused.
    assert manager.wait(record.id, 0.3).state == "paused"
    assert part.stat().st_size == size_at_pause
    hub_server.chunk_delay_s = 0.0
    manager.resume(record.id)
    record = manager.wait(record.id, TIMEOUT)
    assert_verified_and_registered(hub_server, db_path, record, SMOL_REPO, SMOL_FILE)
    resumed = hub_server.file_requests(SMOL_FILE)[-1]
    assert resumed.range_start == size_at_pause
    # Only what the socket buffers held at the pause is fetched twice.
    assert sent_at_pause - size_at_pause < 0.05 * hub_server.size(SMOL_REPO, SMOL_FILE)


def test_cancel_deletes_the_partial_and_registers_nothing(
    hub_server: FakeHub, model_path: Path, make_manager: Any, db_path: Path, events: Events
) -> None:
    hub_server.chunk_delay_s = 0.001
    manager = make_manager()
    manager.start()
    record = manager.enqueue(SMOL_REPO, SMOL_FILE)
    events.progress_past(record.id, 0.1)
    manager.cancel(record.id)
    record = manager.wait(record.id, TIMEOUT)
    assert record.state == "cancelled" and record.downloaded_bytes == 0
    assert not Path(record.part_path).exists() and not Path(record.dest_path).exists()
    assert _registered(db_path) == []
    with pytest.raises(InvalidInputError, match="cancelled"):
        manager.resume(record.id)


def test_two_downloads_run_at_once(
    hub_server: FakeHub, make_manager: Any, db_path: Path, events: Events
) -> None:
    hub_server.chunk_delay_s = 0.05  # each tiny file takes about half a second
    manager = make_manager(max_parallel=2)
    manager.start()
    records = [manager.enqueue(TINY_REPO, name) for name in TINY_FILES]
    done = [manager.wait(r.id, TIMEOUT) for r in records]
    for record, name in zip(done, TINY_FILES, strict=True):
        assert_verified_and_registered(hub_server, db_path, record, TINY_REPO, name)
    assert events.max_running == 2  # two at once, never three


def test_restart_resumes_from_the_partial_file(
    hub_server: FakeHub, model_path: Path, make_manager: Any, db_path: Path, events: Events
) -> None:
    hub_server.chunk_delay_s = 0.001
    first = make_manager()
    first.start()
    record = first.enqueue(SMOL_REPO, SMOL_FILE)
    events.progress_past(record.id, 0.3)
    first.shutdown()
    left = first.get(record.id)
    assert left.state == "running"  # as a crash would leave it
    have = Path(left.part_path).stat().st_size
    hub_server.chunk_delay_s = 0.0
    second = make_manager()
    second.start()
    record = second.wait(record.id, TIMEOUT)
    assert_verified_and_registered(hub_server, db_path, record, SMOL_REPO, SMOL_FILE)
    assert hub_server.file_requests(SMOL_FILE)[-1].range_start == have
    assert refetched_fraction(hub_server, SMOL_REPO, SMOL_FILE) < 0.05


def test_paused_downloads_stay_paused_after_restart(
    hub_server: FakeHub, make_manager: Any, db_path: Path
) -> None:
    first = make_manager()
    record = first.enqueue(TINY_REPO, TINY_FILES[0])  # not started: stays queued
    first.pause(record.id)
    first.shutdown()
    second = make_manager()
    second.start()
    assert second.wait(record.id, 1.0).state == "paused"
    assert hub_server.file_requests() == []


def test_enqueue_reuses_an_unfinished_download(
    hub_server: FakeHub, make_manager: Any, db_path: Path
) -> None:
    manager = make_manager()
    first = manager.enqueue(TINY_REPO, TINY_FILES[0])
    assert manager.enqueue(TINY_REPO, TINY_FILES[0]).id == first.id
    manager.start()
    done = manager.wait(first.id, TIMEOUT)
    assert done.state == "done"
    # A finished download whose file is there is not fetched again.
    assert manager.enqueue(TINY_REPO, TINY_FILES[0]).id == first.id
    assert len(hub_server.file_requests()) == 1
    assert [r.id for r in manager.list()] == [first.id]


# -- disk ------------------------------------------------------------------------------------


def test_not_enough_disk_space_is_refused_before_fetching(
    hub_server: FakeHub, model_path: Path, make_manager: Any, monkeypatch: pytest.MonkeyPatch,
    db_path: Path,
) -> None:
    real = downloads_module.shutil.disk_usage

    def tiny_disk(path: Any) -> Any:
        usage = real(path)
        return type(usage)(usage.total, usage.total - 10_000_000, 10_000_000)

    monkeypatch.setattr(downloads_module.shutil, "disk_usage", tiny_disk)
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(SMOL_REPO, SMOL_FILE).id, TIMEOUT)
    assert record.state == "failed"
    assert record.error is not None and "Not enough free disk space" in record.error
    assert "10.0 MB free" in record.error
    assert hub_server.file_requests() == [] and _registered(db_path) == []


def test_disk_full_while_writing(
    hub_server: FakeHub, model_path: Path, make_manager: Any, monkeypatch: pytest.MonkeyPatch,
    db_path: Path,
) -> None:
    real_write = downloads_module._write_chunk
    calls = {"n": 0}

    def filling_write(f: Any, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] > 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(f, data)

    monkeypatch.setattr(downloads_module, "_write_chunk", filling_write)
    manager = make_manager()
    manager.start()
    record = manager.wait(manager.enqueue(SMOL_REPO, SMOL_FILE).id, TIMEOUT)
    assert record.state == "failed"
    assert record.error is not None and "disk is full" in record.error
    assert not Path(record.part_path).exists() and not Path(record.dest_path).exists()
    assert _registered(db_path) == []
    db = open_database(db_path)
    try:
        assert integrity_check(db) == "ok"
    finally:
        db.conn.close()


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename", ["../evil.gguf", "/etc/evil.gguf", "a\\..\\evil.gguf", "C:evil.gguf", "x.bin"]
)
def test_unsafe_filenames_are_rejected(
    make_manager: Any, db_path: Path, filename: str
) -> None:
    manager = make_manager()
    with pytest.raises(InvalidInputError):
        manager.enqueue(TINY_REPO, filename)
    with pytest.raises(InvalidInputError):
        manager.enqueue("../../etc", "model.gguf")
    assert manager.list() == []


def test_a_second_manager_leaves_a_live_download_alone(
    hub_server: FakeHub, model_path: Path, make_manager: Any, db_path: Path, events: Events
) -> None:
    """Two slmdesk processes (GUI and CLI) on one database never fetch the same file twice."""
    hub_server.chunk_delay_s = 0.001
    first = make_manager()
    first.start()
    record = first.enqueue(SMOL_REPO, SMOL_FILE)
    events.progress_past(record.id, 0.1)
    second = make_manager()
    second.start()  # does not take over the row the first one is fetching
    assert second.enqueue(SMOL_REPO, SMOL_FILE).state == "running"
    hub_server.chunk_delay_s = 0.0
    record = first.wait(record.id, TIMEOUT)
    assert_verified_and_registered(hub_server, db_path, record, SMOL_REPO, SMOL_FILE)
    assert len(hub_server.file_requests(SMOL_FILE)) == 1
