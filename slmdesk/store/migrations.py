"""Append-only schema migrations; never edit a shipped one, add the next instead."""

from __future__ import annotations

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
