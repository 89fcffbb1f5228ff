"""Opening the database: newer-database refusal, bad files, errors that surface, the write lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from slmdesk.errors import DatabaseError
from slmdesk.store import ModelRepository
from slmdesk.store.db import open_database
from slmdesk.store.migrations import MIGRATIONS
from tests.unit.models import tiny_model

ALL_MIGRATIONS = [
    "m001_initial", "m002_branches_presets", "m003_classifiers_datasets",
    "m004_dataset_curation", "m005_model_library", "m006_remote_engines",
    "m007_model_adapters",
]






def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    open_database(tmp_path / "t.db").close()
    db = open_database(tmp_path / "t.db")
    assert len(MIGRATIONS.applied(db)) == len(ALL_MIGRATIONS)
    assert db["presets"].count == 3
    assert MIGRATIONS.pending(db) == []


def test_database_from_a_newer_slmdesk_is_refused(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.db")
    db.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        ["slmdesk", "m999_from_the_future", "2030-01-01"],
    )
    db.conn.commit()
    db.close()
    with pytest.raises(DatabaseError, match="newer slmdesk"):
        open_database(tmp_path / "t.db")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="not a usable slmdesk database"):
        open_database(bad)


def test_sqlite_error_is_not_swallowed(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.db")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO messages (id, conversation_id, role, content, status, "
                   "created_at, updated_at) VALUES ('x', 'nope', 'user', '', 'complete', '', '')")


def test_a_write_block_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    """Two connections (the window and a download worker): a block that reads and then
    writes must not fail with "database is locked" because the other one wrote between
    its read and its write (WAL cannot upgrade a stale read snapshot)."""
    import sqlite3

    path = tmp_path / "two.db"
    window = open_database(path)
    worker = open_database(path)
    worker.conn.execute("PRAGMA busy_timeout = 50")
    with window.atomic():
        assert window.execute("SELECT count(*) FROM models").fetchone()[0] == 0
        # The other connection cannot slip a commit in between: it waits, then gives up.
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            worker.execute("INSERT INTO settings (key, value_json) VALUES ('k', '1')")
        tiny_model(window)  # reads the schema, then inserts: still fine
    worker.execute("INSERT INTO settings (key, value_json) VALUES ('k', '1')")
    worker.conn.commit()
    assert ModelRepository(worker).count() == 1
    window.close()
    worker.close()
