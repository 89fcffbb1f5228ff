"""The SQLite store: schema, migrations, newer-database refusal, FTS, streaming replies."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

from slmdesk.chat import ChatService, ReplyWriter, engine_history, title_from
from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.errors import DatabaseError, InvalidInputError, NotFoundError
from slmdesk.ids import new_id
from slmdesk.paths import get_paths
from slmdesk.settings import DEFAULT_SYSTEM_PROMPT, Settings, load_settings, save_settings
from slmdesk.store import ChatRepository, ModelRecord, ModelRepository, PresetRepository
from slmdesk.store.db import integrity_check, open_database
from slmdesk.store.migrations import MIGRATIONS

ALL_MIGRATIONS = [
    "m001_initial", "m002_branches_presets", "m003_classifiers_datasets",
    "m004_dataset_curation", "m005_model_library",
]


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = open_database(tmp_path / "t.db")
    yield database
    database.close()


def _model(db) -> ModelRecord:  # type: ignore[no-untyped-def]
    return ModelRepository(db).add(
        name="Tiny", path="/models/tiny.gguf", size_bytes=10, architecture="llama",
        quantization="Q4_1", parameter_count=100, context_length=2048, licence="MIT",
        source="import",
    )


def test_migrations_from_empty_create_the_schema(db) -> None:  # type: ignore[no-untyped-def]
    assert [m.name for m in MIGRATIONS.applied(db)] == ALL_MIGRATIONS
    assert set(db.table_names()) >= {"models", "conversations", "messages", "settings",
                                      "presets", "messages_fts"}
    assert {c.name for c in db["messages"].columns} == {
        "id", "conversation_id", "parent_id", "role", "content", "status", "finish_reason",
        "model_id", "prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s",
        "duration_s", "metadata_json", "writer_pid", "created_at", "updated_at",
    }
    assert {c.name: c.type for c in db["conversations"].columns} == {
        "id": "TEXT", "title": "TEXT", "model_id": "TEXT", "system_prompt": "TEXT",
        "params_json": "TEXT", "pinned": "INTEGER", "created_at": "TEXT",
        "updated_at": "TEXT", "leaf_id": "TEXT", "deleted_at": "TEXT",
    }
    assert [(c.name, c.type, c.notnull, c.is_pk) for c in db["presets"].columns] == [
        ("id", "TEXT", 0, 1), ("name", "TEXT", 1, 0), ("params_json", "TEXT", 1, 0),
        ("system_prompt", "TEXT", 0, 0), ("builtin", "INTEGER", 1, 0),
        ("created_at", "TEXT", 1, 0),
    ]
    assert {(tuple(i.columns), i.origin) for i in db["presets"].indexes if i.unique} == {
        (("name",), "u"), (("id",), "pk")
    }
    fks = {(fk.column, fk.other_table) for fk in db["messages"].foreign_keys}
    assert fks == {("conversation_id", "conversations"), ("parent_id", "messages"),
                   ("model_id", "models")}
    assert {(fk.column, fk.other_table) for fk in db["conversations"].foreign_keys} == {
        ("model_id", "models")
    }
    assert {i.name: i.columns for i in db["messages"].indexes if i.origin == "c"} == {
        "messages_conversation": ["conversation_id", "id"],
        "messages_status": ["status"],
        "messages_parent": ["parent_id", "id"],
    }
    assert {i.name: i.columns for i in db["conversations"].indexes if i.origin == "c"} == {
        "conversations_updated": ["updated_at"],
        "conversations_deleted": ["deleted_at"],
    }
    assert {c.name for c in db["models"].columns} >= {
        "repo_id", "revision", "hub_filename", "estimated_memory_bytes",
        "measured_memory_bytes", "measured_context", "last_loaded_at",
    }
    assert [(c.name, c.notnull) for c in db["downloads"].columns] == [
        ("id", 0), ("repo_id", 1), ("filename", 1), ("revision", 1), ("dest_path", 1),
        ("part_path", 1), ("size_bytes", 0), ("sha256", 0), ("etag", 0),
        ("downloaded_bytes", 1), ("state", 1), ("error", 0), ("attempts", 1),
        ("display_name", 0), ("licence", 0), ("model_id", 0), ("created_at", 1),
        ("updated_at", 1),
    ]
    assert {(fk.column, fk.other_table) for fk in db["downloads"].foreign_keys} == {
        ("model_id", "models")
    }
    triggers = {t.name for t in db.triggers}
    assert {"messages_ai", "messages_ad", "messages_au"} <= triggers
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert integrity_check(db) == "ok"


def test_m002_adds_the_builtin_presets(db) -> None:  # type: ignore[no-untyped-def]
    rows = {r["name"]: r for r in db["presets"].rows}
    assert set(rows) == {"Precise", "Balanced", "Creative"}
    assert all(r["builtin"] == 1 and r["system_prompt"] is None for r in rows.values())
    params = {name: json.loads(r["params_json"]) for name, r in rows.items()}
    assert params["Balanced"] == SamplingParams().to_json()
    assert params["Precise"] == SamplingParams(
        temperature=0.2, top_p=0.9, top_k=40, min_p=0.05, repeat_penalty=1.1
    ).to_json()
    assert params["Creative"] == SamplingParams(
        temperature=1.0, top_p=0.98, top_k=100, min_p=0.02, repeat_penalty=1.05
    ).to_json()


def _m001_database(path: Path):  # type: ignore[no-untyped-def]
    """A database as slmdesk 0.1 (migration m001 only) left it."""
    conn = sqlite3.connect(path)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA foreign_keys = ON")
    MIGRATIONS.apply(db, stop_before="m002_branches_presets")
    assert [m.name for m in MIGRATIONS.applied(db)] == ["m001_initial"]
    assert "leaf_id" not in db["conversations"].columns_dict
    return db


def _m001_insert_chain(db, title: str, texts: list[str]) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """Insert a conversation the way m001-era code did: each message under the newest."""
    now = "2026-01-01T00:00:00.000000+00:00"
    cid = new_id()
    db["conversations"].insert({"id": cid, "title": title, "params_json": "{}", "pinned": 0,
                                "created_at": now, "updated_at": now})
    ids: list[str] = []
    for i, text in enumerate(texts):
        mid = new_id()
        db["messages"].insert({
            "id": mid, "conversation_id": cid, "parent_id": ids[-1] if ids else None,
            "role": "user" if i % 2 == 0 else "assistant", "content": text,
            "status": "complete", "finish_reason": None if i % 2 == 0 else "stop",
            "metadata_json": "{}", "created_at": now, "updated_at": now,
        })
        ids.append(mid)
    return cid, ids


def test_migrating_a_frozen_m001_database_backfills_the_leaf(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = _m001_database(path)
    first, first_ids = _m001_insert_chain(old, "Geography", ["Capital of France?", "Paris.",
                                                            "And Germany?", "Berlin."])
    second, second_ids = _m001_insert_chain(old, "Cooking", ["How to bake bread?"])
    empty, _ = _m001_insert_chain(old, "Empty", [])
    old.conn.commit()
    old.close()

    db = open_database(path)
    assert [m.name for m in MIGRATIONS.applied(db)] == ALL_MIGRATIONS
    chats = ChatRepository(db)
    assert chats.get_conversation(first).leaf_id == first_ids[-1]
    assert chats.get_conversation(second).leaf_id == second_ids[-1]
    assert chats.get_conversation(empty).leaf_id is None
    assert all(c.deleted_at is None for c in chats.list_conversations())
    assert [m.id for m in chats.path(first)] == first_ids
    assert chats.path(empty) == []
    # The old chain goes on where it ended, and search still knows the old text.
    reply = chats.append_message(first, "user", "And Italy?")
    assert reply.parent_id == first_ids[-1]
    assert {h.message.id for h in chats.search("berlin")} == {first_ids[-1]}
    assert [p.name for p in PresetRepository(db).list()] == ["Balanced", "Creative", "Precise"]
    assert integrity_check(db) == "ok"
    db.close()


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


def test_ids_sort_by_creation() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_conversation_lifecycle_and_cascade(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    model = _model(db)
    conv = chats.create_conversation(title="Hello", model_id=model.id, system_prompt="Be brief.")
    a = chats.append_message(conv.id, "user", "hi")
    b = chats.append_message(conv.id, "assistant", "hello")
    assert b.parent_id == a.id
    assert [m.id for m in chats.messages(conv.id)] == [a.id, b.id]
    assert chats.find_conversation(conv.id[:8].lower()).id == conv.id
    chats.update_conversation(conv.id, title="Renamed", pinned=True)
    assert chats.list_conversations()[0].title == "Renamed"
    chats.delete_conversation(conv.id)
    assert db["messages"].count == 2  # in the bin until purged
    assert chats.purge_deleted() == 1
    assert db["messages"].count == 0
    assert chats.search("hello") == []
    with pytest.raises(NotFoundError):
        chats.get_conversation(conv.id)


def test_deleting_a_model_keeps_conversations(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    model = _model(db)
    conv = chats.create_conversation(model_id=model.id)
    chats.append_message(conv.id, "assistant", "x", model_id=model.id)
    ModelRepository(db).remove(model.id)
    assert chats.get_conversation(conv.id).model_id is None
    assert chats.messages(conv.id)[0].content == "x"


def test_full_text_search_finds_words_and_prefixes(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    c1 = chats.create_conversation(title="Geography")
    chats.append_message(c1.id, "user", "What is the capital of France?")
    chats.append_message(c1.id, "assistant", "The capital of France is Paris.")
    c2 = chats.create_conversation(title="Cooking")
    chats.append_message(c2.id, "user", "How do I bake bread?")
    hits = chats.search("paris")
    assert [h.message.conversation_id for h in hits] == [c1.id]
    assert "[Paris]" in hits[0].snippet
    assert {h.message.conversation_id for h in chats.search("bak")} == {c2.id}
    assert chats.search('"unbalanced AND (') == []  # hostile query syntax is neutralised
    assert chats.search("   ") == []
    # Updates of a streaming reply keep the index in step.
    reply = chats.append_message(c2.id, "assistant", "", status="streaming")
    chats.update_streaming_text(reply.id, "Knead the dough")
    assert {h.message.id for h in chats.search("dough")} == {reply.id}


def test_streaming_reply_is_saved_as_it_grows_and_finished(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    reply = chats.append_message(conv.id, "assistant", "", status="streaming")
    now = [0.0]
    writer = ReplyWriter(chats, reply.id, interval_s=1.0, clock=lambda: now[0])
    writer.append("Hel")  # the first piece is written at once
    assert chats.get_message(reply.id).content == "Hel"
    writer.append("lo")  # within the interval: held in memory
    assert chats.get_message(reply.id).content == "Hel"
    now[0] = 1.5
    writer.append(" world")
    assert chats.get_message(reply.id).content == "Hello world"
    assert chats.get_message(reply.id).status == "streaming"
    msg = writer.finish(GenerationResult(finish_reason="length", prompt_tokens=12,
                                         completion_tokens=3, ttft_s=0.1, tokens_per_s=30.0))
    assert (msg.status, msg.finish_reason, msg.content) == ("complete", "length", "Hello world")
    assert (msg.prompt_tokens, msg.completion_tokens, msg.tokens_per_s) == (12, 3, 30.0)


def test_replies_left_streaming_by_a_dead_process_are_marked_interrupted(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    reply = chats.append_message(conv.id, "assistant", "", status="streaming")
    chats.update_streaming_text(reply.id, "partial text")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    db.execute("UPDATE messages SET writer_pid = ? WHERE id = ?", [int(dead.stdout), reply.id])
    alive = chats.append_message(conv.id, "assistant", "", status="streaming")
    db.execute("UPDATE messages SET writer_pid = ? WHERE id = ?", [os.getppid(), alive.id])
    db.conn.commit()
    assert chats.mark_interrupted() == 1
    msg = chats.get_message(reply.id)
    assert (msg.status, msg.finish_reason, msg.content) == ("complete", "interrupted",
                                                           "partial text")
    assert chats.get_message(alive.id).status == "streaming"  # its writer still runs


def test_a_reused_writer_pid_does_not_keep_a_reply_streaming(db) -> None:  # type: ignore[no-untyped-def]
    # After a reboot the dead writer's pid may belong to an unrelated, newer process.
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    old = chats.append_message(conv.id, "assistant", "", status="streaming")
    chats.update_streaming_text(old.id, "kept")
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        db.execute("UPDATE messages SET writer_pid = ?, created_at = ? WHERE id = ?",
                    [newer.pid, "2020-01-01T00:00:00+00:00", old.id])
        db.conn.commit()
        assert chats.mark_interrupted() == 1
        msg = chats.get_message(old.id)
        assert (msg.status, msg.finish_reason, msg.content) == ("complete", "interrupted",
                                                               "kept")
    finally:
        newer.kill()
        newer.wait()


def test_chat_service_turn(db) -> None:  # type: ignore[no-untyped-def]
    service = ChatService(db)
    model = _model(db)
    conv = service.new_conversation(model=model)
    assert conv.system_prompt == DEFAULT_SYSTEM_PROMPT
    with pytest.raises(InvalidInputError):
        service.start_turn(conv, "   ", model=model)
    turn = service.start_turn(conv, "What is the capital of France?", model=model)
    assert turn.conversation.title == "What is the capital of France?"
    assert turn.history == [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert turn.reply.status == "streaming"
    assert turn.reply.parent_id == turn.user_message.id
    assert turn.conversation.leaf_id == turn.reply.id
    assert engine_history(turn.conversation, service.chats.path(conv.id)) == turn.history
    assert title_from("x" * 200).endswith("…")


def test_settings_round_trip_and_ignore_unknown_keys(db) -> None:  # type: ignore[no-untyped-def]
    s = load_settings(db)
    assert s == Settings()
    s.max_context = 2048
    s.sampling = s.sampling.merged(temperature=0.2, stop=["###"])
    save_settings(db, s)
    again = load_settings(db)
    assert again.max_context == 2048
    assert again.sampling.temperature == 0.2
    assert again.sampling.stop == ("###",)
    db["settings"].upsert({"key": "app", "value_json": '{"max_context": 1024, "future": 1}'},
                          pk="key")
    assert load_settings(db).max_context == 1024


def test_home_roots_every_directory(tmp_path: Path) -> None:
    paths = get_paths(tmp_path / "h")
    for d in (paths.data_dir, paths.config_dir, paths.cache_dir, paths.log_dir):
        assert tmp_path / "h" in d.parents
    assert paths.database.parent == paths.data_dir


def test_env_home_is_used(slmdesk_home: Path) -> None:
    assert get_paths().data_dir == slmdesk_home.resolve() / "data"


def test_sqlite_error_is_not_swallowed(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.db")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO messages (id, conversation_id, role, content, status, "
                   "created_at, updated_at) VALUES ('x', 'nope', 'user', '', 'complete', '', '')")


def test_m003_classifier_and_dataset_tables(db) -> None:  # type: ignore[no-untyped-def]
    from slmdesk.store.classifiers import ClassifierRepository
    from slmdesk.store.datasets import DatasetRepository

    assert {c.name for c in db["examples"].columns} >= {
        "id", "dataset_id", "text", "label", "messages_json", "source", "source_ref",
        "labelled_by", "model_label", "model_confidence", "rating", "split",
    }
    assert {(fk.column, fk.other_table) for fk in db["examples"].foreign_keys} == {
        ("dataset_id", "datasets")}
    assert "examples_fts" in db.table_names()
    classifiers = ClassifierRepository(db)
    saved = classifiers.save("Sentiment", {"labels": ["positive", "negative"]}, model_id=None)
    assert classifiers.get("sentiment").spec == {"labels": ["positive", "negative"]}
    classifiers.save("Sentiment", {"labels": ["pos", "neg"]}, model_id=None)
    assert [c.id for c in classifiers.list()] == [saved.id]
    datasets = DatasetRepository(db)
    ds = datasets.create("Reviews", kind="labels", labels=["positive"])
    ex = datasets.add_labelled_text(ds, "Great!", "negative", source="classification",
                                    labelled_by="person", model_label="positive",
                                    model_confidence=0.9)
    assert datasets.get("reviews").labels == ["positive", "negative"]
    assert datasets.examples(ds) == [ex]
    with pytest.raises(InvalidInputError):
        datasets.create("reviews", kind="labels")
    db.execute("DELETE FROM datasets WHERE id = ?", [ds.id])
    assert db["examples"].count == 0


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
        _model(window)  # reads the schema, then inserts: still fine
    worker.execute("INSERT INTO settings (key, value_json) VALUES ('k', '1')")
    worker.conn.commit()
    assert ModelRepository(worker).count() == 1
    window.close()
    worker.close()
