"""Saved classifiers (name, model, labels, instructions, examples, calibration) as JSON specs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from slmdesk.errors import InvalidInputError
from slmdesk.ids import utc_now
from slmdesk.store.rows import from_row, insert_new, record_named, required, rows_by_name


@dataclass(frozen=True)
class SavedClassifier:
    id: str
    name: str
    model_id: str | None
    spec: dict[str, Any]
    created_at: str
    updated_at: str


class ClassifierRepository:
    """Classifiers saved by name; the spec is whatever ``ClassifierSpec.to_json`` gives."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def save(self, name: str, spec: dict[str, Any], *, model_id: str | None) -> SavedClassifier:
        name = " ".join(name.split())
        if not name:
            raise InvalidInputError("A classifier needs a name.")
        existing = self.find(name)
        if existing is None:
            insert_new(self.db, "classifiers", {
                "name": name, "model_id": model_id,
                "spec_json": json.dumps(spec, sort_keys=True),
            })
        else:
            with self.db.atomic():
                self.db.table("classifiers").update(existing.id, {
                    "model_id": model_id, "spec_json": json.dumps(spec, sort_keys=True),
                    "updated_at": utc_now(),
                })
        return self.get(name)

    def find(self, name: str) -> SavedClassifier | None:
        return record_named(self.db, "classifiers", name,
                            lambda row: from_row(SavedClassifier, row))

    def get(self, name: str) -> SavedClassifier:
        return required(self.find(name), f"No saved classifier named '{name}'.")

    def list(self) -> list[SavedClassifier]:
        return [from_row(SavedClassifier, r) for r in rows_by_name(self.db, "classifiers")]

    def delete(self, name: str) -> None:
        found = self.get(name)
        with self.db.atomic():
            self.db.table("classifiers").delete(found.id)
