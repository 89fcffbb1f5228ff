"""A full disk during a database write: a clear message, nothing half-written, the app goes on.

SQLite's ``max_page_count`` caps the database on the app's own connection, so SQLite
returns the same SQLITE_FULL ("database or disk is full") that a full disk gives.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from slmdesk.chat import ChatService, ReplyWriter
from slmdesk.engine.params import GenerationResult
from slmdesk.errors import DiskFullError
from slmdesk.store.chats import ChatRepository
from slmdesk.store.db import integrity_check, open_database
from slmdesk.store.models import ModelRepository
from tests.hardening.helpers import Window, main_in_process, one_line_error, send


def fill_up(db: sqlite_utils.Database, spare_pages: int = 0) -> None:
    """Cap the database at its current size (plus ``spare_pages``): the disk is now full."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + spare_pages}")


def free_up(db: sqlite_utils.Database) -> None:
    db.execute("PRAGMA max_page_count = 1073741823")


def _model(db: sqlite_utils.Database) -> Any:
    return ModelRepository(db).add(
        name="m", path="/nowhere/m.gguf", size_bytes=1, architecture="llama",
        quantization=None, parameter_count=None, context_length=None, licence=None,
        source="import")


def test_reply_writer_keeps_the_reply_in_memory_when_the_disk_fills(tmp_path: Path) -> None:
    db = open_database(tmp_path / "db.sqlite")
    service = ChatService(db)
    model = _model(db)
    conv = service.new_conversation(model=model)
    turn = service.start_turn(conv, "Tell me a story.", model=model)
    writer = ReplyWriter(service.chats, turn.reply.id, interval_s=0)
    writer.append("Once upon a time ")
    saved = service.chats.get_message(turn.reply.id).content
    assert saved == "Once upon a time "
    fill_up(db)
    chunk = "there was a lighthouse keeper who wrote very long letters. " * 40
    for _ in range(20):
        writer.append(chunk)  # no exception while the reply streams
    assert writer.save_error is not None and "disk is full" in writer.save_error
    assert writer.text == "Once upon a time " + chunk * 20  # all of it, in memory
    with pytest.raises(DiskFullError) as info:
        writer.finish(GenerationResult(finish_reason="stop"), model=model)
    assert "disk is full" in info.value.message and "only on screen" in info.value.message
    # Nothing committed was lost; the database is intact.
    assert integrity_check(db) == "ok"
    stored = service.chats.get_message(turn.reply.id)
    assert stored.content.startswith(saved) and stored.status == "streaming"
    with pytest.raises(DiskFullError, match="your message"):
        service.start_turn(conv, "Another long message. " * 5000, model=model)
    assert [m.content for m in service.chats.path(conv.id)][:1] == ["Tell me a story."]
    db.close()
    # The next start keeps what reached the disk, marked interrupted.
    db = open_database(tmp_path / "db.sqlite")
    chats = ChatRepository(db)
    assert chats.mark_interrupted() == 1
    reply = chats.get_message(turn.reply.id)
    assert reply.finish_reason == "interrupted" and reply.content.startswith(saved)
    assert len(chats.path(conv.id)) == 2  # "Another message" was never half-written
    assert integrity_check(db) == "ok"


def _capped_open(monkeypatch: pytest.MonkeyPatch, spare_pages: int) -> None:
    """Every database the CLI opens is capped right after it is opened and migrated."""
    import slmdesk.startup

    real = slmdesk.startup.open_database

    def capped(path: Any, **kw: Any) -> sqlite_utils.Database:
        db = real(path, **kw)
        fill_up(db, spare_pages)
        return db

    monkeypatch.setattr(slmdesk.startup, "open_database", capped)


def test_cli_import_on_a_full_disk_adds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps({"text": "fine", "label": "a"}) + "\n")
    code, out, err = main_in_process(capsys, "data", "import", "Reviews", str(small))
    assert code == 0, err
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"text": f"text number {i} " * 8, "label": "a"}) + "\n"
                           for i in range(3000)))
    with monkeypatch.context() as m:
        _capped_open(m, spare_pages=4)
        code, out, err = main_in_process(capsys, "data", "import", "Reviews", str(big))
    one_line_error(code, out, err, "disk is full", "big.jsonl", "nothing of it was added")
    code, out, err = main_in_process(capsys, "data", "list", "--json")
    assert code == 0 and [(d["name"], d["examples"]) for d in json.loads(out)] == [
        ("Reviews", 1)]
    from slmdesk.paths import get_paths

    db = open_database(get_paths().database)
    assert integrity_check(db) == "ok"
    db.close()


@pytest.mark.model
def test_cli_chat_on_a_full_disk_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, model_path: Path
) -> None:
    from slmdesk.startup import open_core

    open_core().db.close()  # registers the starter model
    with monkeypatch.context() as m:
        _capped_open(m, spare_pages=0)
        # A message longer than the free room in the database's pages.
        code, out, err = main_in_process(capsys, "chat", "--threads", "1",
                                         "Summarise: " + "words " * 5000)
    one_line_error(code, out, err, "disk is full")
    core = open_core()
    assert integrity_check(core.db) == "ok"
    assert core.db["messages"].count == 0  # the message was not half-written
    core.db.close()


def _real_disk_full_error(tmp_path: Path) -> sqlite3.OperationalError:
    """The exception SQLite raises on a full disk, made by really filling a scratch database."""
    db = sqlite_utils.Database(tmp_path / "scratch.db")
    db.execute("CREATE TABLE t (x BLOB)")
    fill_up(db)
    try:
        db.execute("INSERT INTO t VALUES (zeroblob(100000))")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        db.close()
    raise AssertionError("the capped scratch database took the write")


@pytest.mark.model
def test_window_on_a_full_disk_says_so_keeps_the_reply_and_goes_on(
    qtbot: Any, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Window(qtbot)
    win = app.win
    try:
        win.chat_page.settings_panel.temperature.setValue(0.0)
        win.chat_page.settings_panel.max_tokens.setValue(60)
        win.chat_page.settings_panel.flush()
        chats = ChatRepository(win.db)

        # 1. The disk is full when a message is sent (real SQLite, capped database).
        fill_up(win.db)
        # Big enough to need new pages, few enough tokens to fit the context (an over-long
        # message is refused before anything is written: issue 16, defect 9).
        long_message = "Summarise this: " + "=" * 12_000
        win.chat_page.composer.setPlainText(long_message)
        win.chat.send_requested()
        assert win.banner.isVisible() and "disk is full" in win.banner.text()
        assert win.chat.gen_job is None
        assert win.chat_page.composer.toPlainText() == long_message  # the typed text is not lost
        assert integrity_check(win.db) == "ok"
        free_up(win.db)

        # 2. The disk fills while the reply streams: every save of the reply fails as
        # SQLite fails on a full disk (where it fails depends on free room in the pages,
        # so the failure is placed here rather than left to chance).
        error = _real_disk_full_error(tmp_path)

        def full(*_a: Any, **_k: Any) -> None:
            raise error

        monkeypatch.setattr(ChatRepository, "update_streaming_text", full)
        monkeypatch.setattr(ChatRepository, "finish_message", full)
        send(qtbot, win, "Write a poem about the sea.")
        assert win.banner.isVisible() and "disk is full" in win.banner.text()
        assert "only on screen" in win.banner.text()
        [streamed] = [w for w in win.chat_page.chat_view.widgets if w.message.role == "assistant"]
        assert win.chat_page.chat_view.plain_text().strip()  # the reply stays on screen
        monkeypatch.undo()
        assert integrity_check(win.db) == "ok"

        # 3. Room again: the app goes on.
        win.chat.new_chat()
        send(qtbot, win, "What is the capital of France?")
        hits = [c for c in chats.list_conversations() if c.title.startswith("What is")]
        assert len(hits) == 1
        reply = chats.path(hits[0].id)[-1]
        assert reply.status == "complete" and reply.content.strip()
        assert streamed is not None
    finally:
        app.close()
