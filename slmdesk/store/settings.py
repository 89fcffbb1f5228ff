"""Key/value settings kept in the database as JSON."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils


class SettingsRepository:
    """Key/value settings stored as JSON."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute(
            "SELECT value_json FROM settings WHERE key = ?", [key]
        ).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        with self.db.atomic():
            self.db.table("settings").upsert(
                {"key": key, "value_json": json.dumps(value)}, pk="key"
            )

    def all(self) -> dict[str, Any]:
        return {
            r["key"]: json.loads(r["value_json"]) for r in self.db.table("settings").rows
        }

    def delete(self, key: str) -> None:
        """Forget ``key`` (``get`` returns its default again); no error when it is absent."""
        with self.db.atomic():
            self.db.execute("DELETE FROM settings WHERE key = ?", [key])
