"""Append-only schema migrations; never edit a shipped one, add the next instead."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

MIGRATIONS = Migrations("slmdesk")


@MIGRATIONS()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE models (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            size_bytes INTEGER NOT NULL,
            sha256 TEXT,
            architecture TEXT,
            quantization TEXT,
            parameter_count INTEGER,
            context_length INTEGER,
            licence TEXT,
            source TEXT NOT NULL,
            added_at TEXT NOT NULL,
            metadata_json TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    db.execute(
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            model_id TEXT REFERENCES models(id) ON DELETE SET NULL,
            system_prompt TEXT,
            params_json TEXT NOT NULL DEFAULT '{}',
            pinned INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id TEXT REFERENCES messages(id) ON DELETE SET NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            status TEXT NOT NULL,
            finish_reason TEXT,
            model_id TEXT REFERENCES models(id) ON DELETE SET NULL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            ttft_s REAL,
            tokens_per_s REAL,
            duration_s REAL,
            metadata_json TEXT NOT NULL DEFAULT '{}',
            writer_pid INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX messages_conversation ON messages(conversation_id, id)")
    db.execute("CREATE INDEX messages_status ON messages(status)")
    db.execute("CREATE INDEX conversations_updated ON conversations(updated_at)")
    db.execute(
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value_json TEXT NOT NULL
        )
        """
    )
    db.table("messages").enable_fts(["content"], create_triggers=True, tokenize="unicode61")


# The built-in presets as m002 stored them. Balanced is SamplingParams' defaults of the
# time; later changes to those defaults do not rewrite what a person already has.
BUILTIN_PRESETS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("Precise", {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
                 "repeat_penalty": 1.1}),
    ("Balanced", {}),
    ("Creative", {"temperature": 1.0, "top_p": 0.98, "top_k": 100, "min_p": 0.02,
                  "repeat_penalty": 1.05}),
)


@MIGRATIONS()
def m002_branches_presets(db: sqlite_utils.Database) -> None:
    # Plain engine parameters: slmdesk.engine.params does not import llama_cpp.
    from slmdesk.engine.params import SamplingParams
    from slmdesk.ids import new_id, utc_now

    conversations = db.table("conversations")
    # The last message of the branch on screen; messages form a tree through parent_id.
    conversations.add_column("leaf_id", str)
    # NULL: not deleted. Set: in the bin, until purged (undo is possible until then).
    conversations.add_column("deleted_at", str)
    # Before branches every conversation was one chain, so its newest message is the leaf.
    db.execute(
        "UPDATE conversations SET leaf_id = "
        "(SELECT max(m.id) FROM messages m WHERE m.conversation_id = conversations.id)"
    )
    # Children of a message (siblings, following a branch down), and the SET NULL action
    # on parent_id when a conversation's messages are purged, need this index.
    db.execute("CREATE INDEX messages_parent ON messages(parent_id, id)")
    db.execute("CREATE INDEX conversations_deleted ON conversations(deleted_at)")
    db.execute(
        """
        CREATE TABLE presets (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            params_json TEXT NOT NULL,
            system_prompt TEXT,
            builtin INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )
        """
    )
    now = utc_now()
    for name, params in BUILTIN_PRESETS:
        db.table("presets").insert(
            {
                "id": new_id(),
                "name": name,
                "params_json": json.dumps(SamplingParams(**params).to_json(), sort_keys=True),
                "system_prompt": None,
                "builtin": 1,
                "created_at": now,
            }
        )


@MIGRATIONS()
def m003_classifiers_datasets(db: sqlite_utils.Database) -> None:
    """Saved classifiers, and labelled data sets that the workbench and chats feed."""
    db.execute(
        """
        CREATE TABLE classifiers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            model_id TEXT REFERENCES models(id) ON DELETE SET NULL,
            spec_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE datasets (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            labels_json TEXT NOT NULL DEFAULT '[]',
            description TEXT,
            licence TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE examples (
            id TEXT PRIMARY KEY,
            dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            text TEXT,
            label TEXT,
            messages_json TEXT,
            notes TEXT,
            source TEXT NOT NULL,
            source_ref TEXT,
            labelled_by TEXT,
            model_label TEXT,
            model_confidence REAL,
            rating INTEGER,
            split TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX examples_dataset ON examples(dataset_id, id)")
    db.execute("CREATE INDEX examples_label ON examples(dataset_id, label)")
    db.table("examples").enable_fts(["text", "notes"], create_triggers=True, tokenize="unicode61")


@MIGRATIONS()
def m004_dataset_curation(db: sqlite_utils.Database) -> None:
    """Model suggestions name their model, splits are indexed, evaluation runs are kept."""
    examples = db.table("examples")
    # Which model made model_label/model_confidence (labelled_by says who made the label).
    examples.add_column("model_name", str)
    db.execute("CREATE INDEX examples_split ON examples(dataset_id, split)")
    db.execute("CREATE INDEX examples_source ON examples(dataset_id, source)")
    # Chat examples keep their messages' text in "text" so that full-text search and
    # duplicate checks see it; rows written before this migration get it now.
    for row in list(db.query(
        "SELECT id, messages_json FROM examples WHERE messages_json IS NOT NULL AND text IS NULL"
    )):
        try:
            messages = json.loads(row["messages_json"])
            text = "\n".join(
                str(m.get("content", "")) for m in messages if isinstance(m, dict)
            )
        except (ValueError, TypeError, AttributeError):
            continue
        db.execute("UPDATE examples SET text = ? WHERE id = ?", [text, row["id"]])
    db.execute(
        """
        CREATE TABLE eval_runs (
            id TEXT PRIMARY KEY,
            dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            model_name TEXT NOT NULL,
            model_id TEXT REFERENCES models(id) ON DELETE SET NULL,
            classifier_name TEXT,
            spec_json TEXT NOT NULL,
            split TEXT NOT NULL,
            n INTEGER NOT NULL,
            accuracy REAL NOT NULL,
            macro_f1 REAL NOT NULL,
            report_json TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX eval_runs_dataset ON eval_runs(dataset_id, created_at)")


@MIGRATIONS()
def m005_model_library(db: sqlite_utils.Database) -> None:
    """Where a model came from on the hub, its measured memory, and the download queue."""
    models = db.table("models")
    # Hub origin of a downloaded (or catalog-matched) file; NULL for local imports.
    models.add_column("repo_id", str)
    models.add_column("revision", str)  # the pinned commit the file was fetched at
    models.add_column("hub_filename", str)
    # The fit estimate made for this file, and what loading it really took (bytes), with
    # the context size both refer to, so the library can show how close the estimate was.
    models.add_column("estimated_memory_bytes", int)
    models.add_column("measured_memory_bytes", int)
    models.add_column("measured_context", int)
    models.add_column("last_loaded_at", str)
    db.execute(
        """
        CREATE TABLE downloads (
            id TEXT PRIMARY KEY,
            repo_id TEXT NOT NULL,
            filename TEXT NOT NULL,
            revision TEXT NOT NULL,
            dest_path TEXT NOT NULL,
            part_path TEXT NOT NULL,
            size_bytes INTEGER,
            sha256 TEXT,
            etag TEXT,
            downloaded_bytes INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            display_name TEXT,
            licence TEXT,
            model_id TEXT REFERENCES models(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX downloads_state ON downloads(state, created_at)")


@MIGRATIONS()
def m006_remote_engines(db: sqlite_utils.Database) -> None:
    """Remote OpenAI-compatible engines (llama-server, vLLM, another slmdesk) by name."""
    db.execute(
        """
        CREATE TABLE engines (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            base_url TEXT NOT NULL,
            api_key TEXT,
            capabilities_json TEXT,
            checked_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )


@MIGRATIONS()
def m007_model_adapters(db: sqlite_utils.Database) -> None:
    """A model may be a base model with a LoRA adapter on top (a fine-tune by ``slmdesk
    train``): the adapter's GGUF, its scale and the base model it was trained on. Such a
    model shares its base's file, so a path is unique only among plain models: the table
    is rebuilt without m001's UNIQUE(path) (SQLite cannot drop a column constraint) and a
    partial unique index takes its place. ``open_database`` runs migrations with foreign
    keys off, so dropping the old table does not null the references to it (SQLite's
    documented table-rebuild procedure); the references hold again after the rename."""
    columns = [(c.name, c.type, c.notnull, c.default_value) for c in db["models"].columns]
    names = [c[0] for c in columns]
    defs = []
    for name, kind, notnull, default in columns:
        extra = " PRIMARY KEY" if name == "id" else (" NOT NULL" if notnull else "")
        if default is not None:
            extra += f" DEFAULT {default}"
        defs.append(f"{name} {kind}{extra}")
    defs += ["adapter_path TEXT", "adapter_scale REAL", "base_model_id TEXT"]
    db.execute(f"CREATE TABLE models_m007 ({', '.join(defs)})")
    listed = ", ".join(names)
    db.execute(f"INSERT INTO models_m007 ({listed}) SELECT {listed} FROM models")
    db.execute("DROP TABLE models")
    db.execute("ALTER TABLE models_m007 RENAME TO models")
    db.execute("CREATE UNIQUE INDEX models_plain_path ON models(path) "
               "WHERE adapter_path IS NULL")
