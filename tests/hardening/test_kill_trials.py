"""kill -9 at seeded random moments while a reply streams, a data set imports, a migration runs.

20 trials in all, two processes at a time. After each kill the database passes
``PRAGMA integrity_check``, what was committed before is there, an import is all or
nothing, a migration is applied whole or not at all (the next open completes it), and an
interrupted reply keeps its text and is marked ``interrupted``.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlite_utils

from slmdesk.store.chats import ChatRepository
from slmdesk.store.db import integrity_check, open_database
from slmdesk.store.migrations import MIGRATIONS
from tests.hardening.helpers import cli_command, cli_env, fast_settings

pytestmark = pytest.mark.slow

SEED = 20260901
STREAM_TRIALS, IMPORT_TRIALS, MIGRATION_TRIALS = 8, 6, 6
IMPORT_ROWS = 20_000
OLD_EXAMPLES = 15_000
PROMPT = "Write a very long story about a lighthouse keeper and a storm, in many chapters."
START_TIMEOUT_S = 120


@dataclass
class Killed:
    """How a trial ended: killed (after ``delay_s``), or it finished first."""

    delay_s: float
    finished_first: bool
    seen: str = ""


def _read_only(db_path: Path, sql: str) -> list[tuple[object, ...]] | None:
    """Rows of ``sql`` on a read-only connection, or None while there is nothing to read."""
    if not db_path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return None


def _kill_after(cmd: list[str], delay_s: float,
                ready: Callable[[], str | None] | None = None) -> Killed:
    """Start ``cmd``; once ``ready()`` gives a value (at once without it), wait ``delay_s``
    and kill -9 it, unless it ended first."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=cli_env())
    seen = ""
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while ready is not None and proc.poll() is None and time.monotonic() < deadline:
            value = ready()
            if value:
                seen = value
                break
            time.sleep(0.02)
        end = time.monotonic() + delay_s
        while proc.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        _out, err = proc.communicate(timeout=60)
    if finished:
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    else:
        assert proc.returncode == -signal.SIGKILL
    return Killed(delay_s, finished, seen)


def _parallel(jobs: list[Callable[[], Killed]]) -> list[Killed]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda job: job(), jobs))


# -- a reply streaming ---------------------------------------------------------------------
@pytest.mark.model
def test_kill_while_replies_stream(tmp_path: Path, model_path: Path) -> None:
    rng = random.Random(SEED)
    template = tmp_path / "template"
    fast_settings(template)
    from slmdesk.startup import open_core

    open_core(str(template)).db.close()  # the starter model is registered
    homes = []
    for i in range(STREAM_TRIALS):
        home = tmp_path / f"stream{i}"
        shutil.copytree(template, home)
        homes.append(home)

    def trial(i: int, home: Path, delay: float) -> Callable[[], Killed]:
        db_path = home / "data" / "slmdesk.db"

        def streaming() -> str | None:
            rows = _read_only(db_path, "SELECT content FROM messages WHERE role = 'assistant' "
                                       "AND status = 'streaming'")
            return str(rows[0][0]) if rows and rows[0][0] else None

        cmd = cli_command(home, "chat", "--threads", "1", "--max-tokens", "400",
                          "--temperature", "0.9", "--seed", str(i), PROMPT)
        return lambda: _kill_after(cmd, delay, streaming)

    delays = [rng.uniform(0.0, 1.5) for _ in homes]
    results = _parallel([trial(i, h, d) for i, (h, d) in enumerate(zip(homes, delays,
                                                                         strict=True))])
    for home, killed in zip(homes, results, strict=True):
        core = open_core(str(home), register_starter=False)
        try:
            assert integrity_check(core.db) == "ok"
            chats = ChatRepository(core.db)
            [conv] = chats.list_conversations()
            user, reply = chats.messages(conv.id)
            assert (user.role, user.content, user.status) == ("user", PROMPT, "complete")
            assert reply.status == "complete"
            if killed.finished_first:
                assert core.interrupted_replies == 0
                assert reply.finish_reason in ("stop", "length")
            else:
                assert core.interrupted_replies == 1
                assert reply.finish_reason == "interrupted"
                assert reply.content.startswith(killed.seen)  # nothing saved was lost
        finally:
            core.db.close()
    print(f"stream trials: {sum(not k.finished_first for k in results)} killed mid-reply, "
          f"delays {[round(k.delay_s, 2) for k in results]}")


# -- a data set import -----------------------------------------------------------------------
def test_kill_while_a_data_set_imports(tmp_path: Path) -> None:
    from slmdesk.datasets.formats import import_file

    rng = random.Random(SEED + 1)
    big = tmp_path / "big.jsonl"
    with big.open("w", encoding="utf-8") as f:
        for i in range(IMPORT_ROWS):
            f.write(json.dumps({"text": f"example {i}: " + "some words to index " * 4,
                                "label": "abc"[i % 3]}) + "\n")
    seed = tmp_path / "seed.csv"
    seed.write_text("text,label\nkept one,a\nkept two,b\n", encoding="utf-8")
    template = tmp_path / "template"
    db = open_database(template / "data" / "slmdesk.db")
    import_file(db, "Kept", seed)
    db.close()

    # One undisturbed import says how long an import takes here.
    calib = tmp_path / "calibration"
    shutil.copytree(template, calib)
    started = time.monotonic()
    _kill_after(cli_command(calib, "data", "import", "Big", str(big)), 10_000)
    duration = time.monotonic() - started
    homes = []
    for i in range(IMPORT_TRIALS):
        home = tmp_path / f"import{i}"
        shutil.copytree(template, home)
        homes.append(home)
    # Two run at a time, so each takes longer than the undisturbed one: the range
    # reaches past its end so that some imports finish and most die part way.
    delays = [rng.uniform(0.3, 2.0) * duration for _ in homes]
    results = _parallel([
        (lambda h=h, d=d: _kill_after(cli_command(h, "data", "import", "Big", str(big)), d))
        for h, d in zip(homes, delays, strict=True)
    ])
    outcomes = []
    for home, killed in zip(homes, results, strict=True):
        db = open_database(home / "data" / "slmdesk.db")
        try:
            assert integrity_check(db) == "ok"
            counts = dict(db.execute(
                "SELECT d.name, count(e.id) FROM datasets d LEFT JOIN examples e "
                "ON e.dataset_id = d.id GROUP BY d.name").fetchall())
            assert counts.pop("Kept") == 2
            assert counts in ({}, {"Big": IMPORT_ROWS})  # all or nothing
            if killed.finished_first:
                assert counts == {"Big": IMPORT_ROWS}
            outcomes.append("imported" if counts else "nothing")
        finally:
            db.close()
    print(f"import trials ({duration:.1f} s undisturbed): {outcomes}")


# -- a migration -----------------------------------------------------------------------------
def _old_database(path: Path) -> None:
    """A database of slmdesk before m004, with a chat and many chat examples to migrate."""
    db = sqlite_utils.Database(path)
    db.enable_wal()
    MIGRATIONS.apply(db, stop_before="m004_dataset_curation")
    now = "2026-01-01T00:00:00+00:00"
    with db.atomic():
        db.execute("INSERT INTO conversations (id, title, params_json, pinned, created_at, "
                   "updated_at) VALUES ('C1', 'Kept chat', '{}', 0, ?, ?)", [now, now])
        for mid, role, text in (("M1", "user", "hello"), ("M2", "assistant", "hi there")):
            db.execute("INSERT INTO messages (id, conversation_id, role, content, status, "
                       "metadata_json, created_at, updated_at) VALUES "
                       "(?, 'C1', ?, ?, 'complete', '{}', ?, ?)", [mid, role, text, now, now])
        db.execute("INSERT INTO datasets (id, name, kind, created_at, updated_at) VALUES "
                   "('D1', 'Chats', 'chat', ?, ?)", [now, now])
        db.conn.executemany(
            "INSERT INTO examples (id, dataset_id, messages_json, source, created_at, "
            "updated_at) VALUES (?, 'D1', ?, 'imported', ?, ?)",
            [(f"E{i:06d}", json.dumps([{"role": "user", "content": f"question {i}"},
                                       {"role": "assistant", "content": f"answer {i}"}]),
              now, now) for i in range(OLD_EXAMPLES)])
    db.close()


def _applied(db_path: Path) -> set[str]:
    rows = _read_only(db_path, "SELECT name FROM _sqlite_migrations")
    return {str(r[0]) for r in rows or []}


def test_kill_while_a_migration_runs(tmp_path: Path) -> None:
    rng = random.Random(SEED + 2)
    template = tmp_path / "template"
    (template / "data").mkdir(parents=True)
    _old_database(template / "data" / "slmdesk.db")
    old = _applied(template / "data" / "slmdesk.db")
    assert "m004_dataset_curation" not in old

    calib = tmp_path / "calibration"
    shutil.copytree(template, calib)
    started = time.monotonic()
    _kill_after(cli_command(calib, "data", "list"), 10_000)
    duration = time.monotonic() - started
    homes = []
    for i in range(MIGRATION_TRIALS):
        home = tmp_path / f"migrate{i}"
        shutil.copytree(template, home)
        homes.append(home)
    delays = [rng.uniform(0.3, 2.0) * duration for _ in homes]
    results = _parallel([
        (lambda h=h, d=d: _kill_after(cli_command(h, "data", "list"), d))
        for h, d in zip(homes, delays, strict=True)
    ])
    outcomes = []
    for home, killed in zip(homes, results, strict=True):
        db_path = home / "data" / "slmdesk.db"
        # What the kill left, before anything reopens it for writing.
        conn = sqlite3.connect(db_path)
        try:
            applied = {r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")}
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            columns = {r[1] for r in conn.execute("PRAGMA table_info(examples)")}
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
        # Each migration is all there or not there at all.
        m004 = "m004_dataset_curation" in applied
        assert ("eval_runs" in tables) == m004 and ("model_name" in columns) == m004
        m005 = "m005_model_library" in applied
        assert ("downloads" in tables) == m005
        if killed.finished_first:
            assert m004 and m005
        outcomes.append(f"{len(applied - old)} applied")
        # The next open completes it, and nothing committed was lost.
        db = open_database(db_path)
        try:
            assert integrity_check(db) == "ok"
            assert {m.name for m in MIGRATIONS.applied(db)} == {
                m.name for m in MIGRATIONS._migrations}
            assert db["examples"].count == OLD_EXAMPLES
            assert db.execute("SELECT count(*) FROM examples WHERE text IS NULL"
                              ).fetchone()[0] == 0
            assert [m.content for m in ChatRepository(db).messages("C1")] == [
                "hello", "hi there"]
        finally:
            db.close()
    print(f"migration trials ({duration:.1f} s undisturbed): {outcomes}")
