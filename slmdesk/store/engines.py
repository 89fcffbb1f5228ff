"""Remote engines saved by name: address, optional API key, what their probe found, and the
models they serve (``RemoteModel``, listed beside the local ones)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from slmdesk.errors import InvalidInputError
from slmdesk.ids import utc_now
from slmdesk.store.rows import insert_new, required


@dataclass(frozen=True)
class EngineRecord:
    id: str
    name: str
    base_url: str
    api_key: str | None
    capabilities: dict[str, Any] | None  # ``Capabilities.to_json()`` of the last check
    checked_at: str | None
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        """For listings: the key itself is never shown, only whether there is one."""
        return {"id": self.id, "name": self.name, "base_url": self.base_url,
                "api_key": bool(self.api_key), "capabilities": self.capabilities,
                "checked_at": self.checked_at}


@dataclass(frozen=True)
class RemoteModel:
    """A model served by a saved (or typed) remote engine: chat goes there, nothing loads here.

    It has no row in ``models`` (that table is about files: path, size, hash, fit), so a
    conversation or message that used it stores no ``model_id``; the reply's metadata names
    the model and the engine instead (``ReplyWriter.finish``).
    """

    engine_name: str  # the saved engine's name, or the URL typed on the command line
    base_url: str
    name: str  # the model's id on that engine

    @property
    def id(self) -> None:
        """No ``models`` row: what a ``ModelRecord``'s id would be is None here."""
        return None

    @property
    def key(self) -> str:
        """Names it among the window's models (the model picker's item data)."""
        return f"remote:{self.engine_name}#{self.name}"

    @property
    def label(self) -> str:
        """How the model picker shows it."""
        return f"{self.name} (remote · {self.engine_name})"

    def reply_metadata(self) -> dict[str, str]:
        """What a reply written by it records about where it came from."""
        return {"engine": self.engine_name, "engine_url": self.base_url}


def _from_row(row: dict[str, Any]) -> EngineRecord:
    caps = row["capabilities_json"]
    return EngineRecord(
        id=row["id"], name=row["name"], base_url=row["base_url"], api_key=row["api_key"],
        capabilities=json.loads(caps) if caps else None, checked_at=row["checked_at"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


class EngineRepository:
    """The ``engines`` table."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def add(self, name: str, base_url: str, api_key: str | None) -> EngineRecord:
        name = " ".join(name.split())
        if not name:
            raise InvalidInputError("An engine needs a name.")
        if self.find(name) is not None:
            raise InvalidInputError(f"There is already an engine named '{name}'.")
        insert_new(self.db, "engines", {
            "name": name, "base_url": base_url, "api_key": api_key,
            "capabilities_json": None, "checked_at": None,
        })
        return self.get(name)

    def record_check(self, name: str, capabilities: dict[str, Any]) -> EngineRecord:
        engine = self.get(name)
        now = utc_now()
        with self.db.atomic():
            self.db.table("engines").update(engine.id, {
                "capabilities_json": json.dumps(capabilities, sort_keys=True),
                "checked_at": now, "updated_at": now,
            })
        return self.get(name)

    def remove(self, name: str) -> None:
        engine = self.get(name)
        with self.db.atomic():
            self.db.table("engines").delete(engine.id)

    def find(self, name_or_url: str) -> EngineRecord | None:
        rows = list(self.db.query(
            "SELECT * FROM engines WHERE name = ? COLLATE NOCASE OR base_url = ? "
            "ORDER BY name = ? DESC LIMIT 1", [name_or_url, name_or_url, name_or_url]))
        return _from_row(rows[0]) if rows else None

    def get(self, name_or_url: str) -> EngineRecord:
        return required(self.find(name_or_url),
                        f"No engine named '{name_or_url}' (see `slmdesk engines list`).")

    # (before ``list``, which would shadow the builtin in the annotation)
    def remote_models(self) -> list[RemoteModel]:
        """The models each checked engine serves, as its last check found them."""
        return [RemoteModel(engine.name, engine.base_url, str(name))
                for engine in self.list()
                for name in (engine.capabilities or {}).get("models", [])]

    def list(self) -> list[EngineRecord]:
        return [_from_row(r) for r in self.db.query("SELECT * FROM engines ORDER BY name")]

