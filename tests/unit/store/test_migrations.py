"""The migrations: the schema from empty, frozen older databases, each step's tables."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from slmdesk.engine.params import SamplingParams
from slmdesk.errors import InvalidInputError
from slmdesk.ids import new_id
from slmdesk.store import ChatRepository, PresetRepository
from slmdesk.store.db import integrity_check, open_database
from slmdesk.store.migrations import MIGRATIONS

ALL_MIGRATIONS = [
    "m001_initial", "m002_branches_presets", "m003_classifiers_datasets",
    "m004_dataset_curation", "m005_model_library", "m006_remote_engines",
    "m007_model_adapters",
]




def test_migrations_from_empty_create_the_schema(db) -> None:  # type: ignore[no-untyped-def]
    assert [m.name for m in MIGRATIONS.applied(db)] == ALL_MIGRATIONS
    assert set(db.table_names()) >= {"models", "conversations", "messages", "settings",
                                      "presets", "messages_fts", "engines"}
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


def test_m007_lets_a_fine_tune_share_its_base_file_and_keeps_references(
        tmp_path: Path) -> None:
    from slmdesk.settings import load_params_for
    from slmdesk.store.models import ModelRepository

    db = open_database(tmp_path / "t.db")
    repo = ModelRepository(db)
    base = repo.add(name="Tiny", path="/models/tiny.gguf", size_bytes=10,
                    architecture="llama", quantization=None, parameter_count=None,
                    context_length=None, licence=None, source="import")
    chats = ChatRepository(db)
    conversation = chats.create_conversation(model_id=base.id)
    tuned = repo.add_fine_tune(name="Tiny zorp", base=base, adapter_path="/a/zorp.gguf",
                               adapter_scale=0.5)
    assert (tuned.path, tuned.base_model_id, tuned.source) == (base.path, base.id, "fine-tune")
    assert repo.get_by_path(base.path) == base  # the plain model, not the fine-tune
    with pytest.raises(sqlite3.IntegrityError):  # two plain models of one file: still refused
        db.table("models").insert({**db["models"].get(base.id), "id": "other"})
    load = load_params_for(db, tuned.id)
    assert (load.lora_path, load.lora_scale) == ("/a/zorp.gguf", 0.5)
    assert load_params_for(db, base.id).lora_path is None
    assert chats.get_conversation(conversation.id).model_id == base.id
    assert integrity_check(db) == "ok"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
