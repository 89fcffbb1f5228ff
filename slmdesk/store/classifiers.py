"""Saved classifiers (name, model, labels, instructions, examples, calibration) as JSON specs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from slmdesk.errors import InvalidInputError
from slmdesk.ids import new_id, utc_now
from slmdesk.store.rows import first_row, required


@dataclass(frozen=True)
class SavedClassifier:
    id: str
    name: str
    model_id: str | None
    spec: dict[str, Any]
    created_at: str
    updated_at: str


def _from_row(row: dict[str, Any]) -> SavedClassifier:
    return SavedClassifier(
        id=row["id"],
        name=row["name"],
        model_id=row["model_id"],
        spec=json.loads(row["spec_json"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class ClassifierRepository:
    """Classifiers saved by name; the spec is whatever ``ClassifierSpec.to_json`` gives."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def save(self, name: str, spec: dict[str, Any], *, model_id: str | None) -> SavedClassifier:
        name = " ".join(name.split())
        if not name:
            raise InvalidInputError("A classifier needs a name.")
        now = utc_now()
        existing = self.find(name)
        with self.db.atomic():
            if existing is None:
                self.db.table("classifiers").insert({
                    "id": new_id(), "name": name, "model_id": model_id,
                    "spec_json": json.dumps(spec, sort_keys=True),
                    "created_at": now, "updated_at": now,
                })
            else:
                self.db.table("classifiers").update(existing.id, {
                    "model_id": model_id, "spec_json": json.dumps(spec, sort_keys=True),
                    "updated_at": now,
                })
        return self.get(name)

    def find(self, name: str) -> SavedClassifier | None:
        row = first_row(self.db, "classifiers", "name = ? COLLATE NOCASE", [name])
        return None if row is None else _from_row(row)

    def get(self, name: str) -> SavedClassifier:
        return required(self.find(name), f"No saved classifier named '{name}'.")

    def list(self) -> list[SavedClassifier]:
        return [
            _from_row(r)
            for r in self.db.table("classifiers").rows_where(order_by="name COLLATE NOCASE")
        ]

    def delete(self, name: str) -> None:
        found = self.get(name)
        with self.db.atomic():
            self.db.table("classifiers").delete(found.id)
