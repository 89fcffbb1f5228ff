"""Saved classifiers (name, model, labels, instructions, examples, calibration) as JSON specs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.ids import new_id, utc_now


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
        row = self.db.execute(
            "SELECT * FROM classifiers WHERE name = ? COLLATE NOCASE", [name]
        ).fetchone()
        if row is None:
            return None
        cols = [c[0] for c in self.db.execute("SELECT * FROM classifiers LIMIT 0").description]
        return _from_row(dict(zip(cols, row, strict=True)))

    def get(self, name: str) -> SavedClassifier:
        found = self.find(name)
        if found is None:
            raise NotFoundError(f"No saved classifier named '{name}'.")
        return found

    def list(self) -> list[SavedClassifier]:
        return [
            _from_row(r)
            for r in self.db.table("classifiers").rows_where(order_by="name COLLATE NOCASE")
        ]

    def delete(self, name: str) -> None:
        found = self.get(name)
        with self.db.atomic():
            self.db.table("classifiers").delete(found.id)
