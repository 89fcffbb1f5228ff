"""Open the slmdesk database: WAL, foreign keys, migrations, newer-database refusal."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from slmdesk.errors import DatabaseError, DiskFullError
from slmdesk.store.migrations import MIGRATIONS


class Database(sqlite_utils.Database):
    """sqlite_utils' Database whose outermost ``atomic()`` takes the write lock at BEGIN.

    Several connections write to one file (the window, the download workers, a CLI).
    sqlite_utils begins a deferred transaction, and its inserts read the schema before they
    write; in WAL mode a transaction that has read cannot become a writer once another
    connection has committed, and SQLite then answers "database is locked" at once,
    without waiting for busy_timeout. BEGIN IMMEDIATE waits for the lock instead.
    """

    @contextmanager
    def atomic(self) -> Iterator[Database]:
        if self.conn.in_transaction:
            with super().atomic():  # nested: a savepoint
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise


def open_database(path: Path | str, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at ``path``.

    Raises ``DatabaseError`` when the file is not a database or was written by a newer
    slmdesk (it holds migrations this version does not know).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # check_same_thread stays on: the GUI thread owns the connection (house style).
        conn = sqlite3.connect(str(path), timeout=10.0)
        db = Database(conn)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 10000")
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            db.enable_wal()
        # NORMAL in WAL mode is durable against process death (kill -9); only a power
        # loss can drop the last commits. FULL would fsync on every streamed chunk.
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path} is not a usable slmdesk database: {exc}") from exc
    known = {m.name for m in MIGRATIONS._migrations}
    try:
        applied = {m.name for m in MIGRATIONS.applied(db)}
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path} is not a usable slmdesk database: {exc}") from exc
    newer = sorted(applied - known)
    if newer:
        conn.close()
        raise DatabaseError(
            f"{path} was written by a newer slmdesk (it has migration {newer[-1]}); "
            "update slmdesk, or point --home at another directory."
        )
    if migrate and known - applied:
        # Foreign keys are off while migrations run (a table rebuild drops and renames a
        # table that others reference: m007); they must still hold afterwards.
        db.execute("PRAGMA foreign_keys = OFF")
        try:
            MIGRATIONS.apply(db)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise DatabaseError(f"{path}: a migration broke foreign keys: {broken[:3]}")
        finally:
            db.execute("PRAGMA foreign_keys = ON")
    return db


def integrity_check(db: sqlite_utils.Database) -> str:
    """Return SQLite's integrity_check verdict ("ok" when healthy)."""
    rows = db.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(r[0]) for r in rows)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying the disk (or the database's size limit) is full."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    # sqlite_errorname exists from Python 3.11; the message is the same on 3.10.
    name = getattr(exc, "sqlite_errorname", None)
    return name == "SQLITE_FULL" or "database or disk is full" in str(exc)


@contextmanager
def disk_full_is_user_facing(what: str) -> Iterator[None]:
    """Turn SQLite's "database or disk is full" inside the block into a ``DiskFullError``.

    ``what`` names the data that could not be saved ("the message", "the import"). The
    block's transaction has been rolled back by then, so the database keeps what it had.
    """
    try:
        yield
    except sqlite3.OperationalError as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(
            f"The disk is full: {what} could not be saved. Free some disk space and try "
            "again; everything saved before is intact."
        ) from exc
