"""Labelled data sets kept in the database: labelled texts and chat examples."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.ids import new_id, utc_now

KINDS = ("labels", "chat")
SOURCES = ("typed", "imported", "conversation", "classification")


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    kind: str
    labels: list[str]
    description: str | None
    licence: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Example:
    id: str
    dataset_id: str
    text: str | None
    label: str | None
    messages: list[dict[str, str]] | None
    notes: str | None
    source: str
    source_ref: str | None
    labelled_by: str | None  # "person" or "model:<name>"
    model_label: str | None
    model_confidence: float | None
    rating: int | None
    split: str | None
    created_at: str
    updated_at: str


def _dataset(row: dict[str, Any]) -> Dataset:
    return Dataset(
        id=row["id"], name=row["name"], kind=row["kind"],
        labels=json.loads(row["labels_json"] or "[]"), description=row["description"],
        licence=row["licence"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _example(row: dict[str, Any]) -> Example:
    return Example(
        id=row["id"], dataset_id=row["dataset_id"], text=row["text"], label=row["label"],
        messages=json.loads(row["messages_json"]) if row["messages_json"] else None,
        notes=row["notes"], source=row["source"], source_ref=row["source_ref"],
        labelled_by=row["labelled_by"], model_label=row["model_label"],
        model_confidence=row["model_confidence"], rating=row["rating"], split=row["split"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


class DatasetRepository:
    """Data sets and their examples."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def create(self, name: str, *, kind: str, labels: list[str] | None = None,
               description: str | None = None) -> Dataset:
        name = " ".join(name.split())
        if not name:
            raise InvalidInputError("A data set needs a name.")
        if kind not in KINDS:
            raise InvalidInputError(f"Unknown data set kind '{kind}' (use labels or chat).")
        if self.find(name) is not None:
            raise InvalidInputError(f"A data set named '{name}' already exists.")
        now = utc_now()
        with self.db.atomic():
            self.db.table("datasets").insert({
                "id": new_id(), "name": name, "kind": kind,
                "labels_json": json.dumps(list(labels or [])), "description": description,
                "licence": None, "created_at": now, "updated_at": now,
            })
        return self.get(name)

    def find(self, name: str) -> Dataset | None:
        rows = list(self.db.table("datasets").rows_where("name = ? COLLATE NOCASE", [name]))
        return _dataset(rows[0]) if rows else None

    def get(self, name: str) -> Dataset:
        found = self.find(name)
        if found is None:
            raise NotFoundError(f"No data set named '{name}'.")
        return found

    def all(self) -> list[Dataset]:
        return [_dataset(r) for r in self.db.table("datasets").rows_where(
            order_by="name COLLATE NOCASE")]

    def add_labels(self, dataset: Dataset, labels: list[str]) -> Dataset:
        merged = list(dataset.labels) + [lab for lab in labels if lab not in dataset.labels]
        if merged != dataset.labels:
            with self.db.atomic():
                self.db.table("datasets").update(dataset.id, {
                    "labels_json": json.dumps(merged), "updated_at": utc_now()})
        return self.get(dataset.name)

    def add_labelled_text(
        self, dataset: Dataset, text: str, label: str, *, source: str,
        source_ref: str | None = None, labelled_by: str = "person",
        model_label: str | None = None, model_confidence: float | None = None,
        notes: str | None = None,
    ) -> Example:
        """Add a labelled text; a label new to the data set joins its label set."""
        if dataset.kind != "labels":
            raise InvalidInputError(f"'{dataset.name}' holds chat examples, not labelled texts.")
        if not text.strip():
            raise InvalidInputError("The text is empty.")
        if source not in SOURCES:
            raise InvalidInputError(f"Unknown source '{source}'.")
        now = utc_now()
        eid = new_id()
        with self.db.atomic():
            self.add_labels(dataset, [label])
            self.db.table("examples").insert({
                "id": eid, "dataset_id": dataset.id, "text": text, "label": label,
                "messages_json": None, "notes": notes, "source": source,
                "source_ref": source_ref, "labelled_by": labelled_by,
                "model_label": model_label, "model_confidence": model_confidence,
                "rating": None, "split": None, "created_at": now, "updated_at": now,
            })
        return self.get_example(eid)

    def get_example(self, example_id: str) -> Example:
        rows = list(self.db.table("examples").rows_where("id = ?", [example_id]))
        if not rows:
            raise NotFoundError(f"No example with id {example_id}.")
        return _example(rows[0])

    def examples(self, dataset: Dataset) -> list[Example]:
        return [_example(r) for r in self.db.table("examples").rows_where(
            "dataset_id = ?", [dataset.id], order_by="id")]

    def count(self, dataset: Dataset) -> int:
        return int(self.db.execute(
            "SELECT count(*) FROM examples WHERE dataset_id = ?", [dataset.id]).fetchone()[0])
