"""Registered model files: the ``ModelRecord`` dataclass and its repository."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from slmdesk.engine.params import LoraAdapter
from slmdesk.errors import NotFoundError
from slmdesk.ids import new_id, utc_now
from slmdesk.store.rows import first_row, from_row, one_row


@dataclass(frozen=True)
class ModelRecord:
    id: str
    name: str
    path: str
    size_bytes: int
    architecture: str | None
    quantization: str | None
    parameter_count: int | None
    context_length: int | None
    licence: str | None
    source: str
    added_at: str
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    repo_id: str | None = None
    revision: str | None = None
    hub_filename: str | None = None
    estimated_memory_bytes: int | None = None
    measured_memory_bytes: int | None = None
    measured_context: int | None = None
    last_loaded_at: str | None = None
    # A fine-tune: the base model's file with this LoRA adapter on top.
    adapter: LoraAdapter | None = None
    base_model_id: str | None = None

    @property
    def owns_file(self) -> bool:
        """slmdesk downloaded the file, so deleting the model may delete it."""
        return self.source == "download"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "architecture": self.architecture,
            "quantization": self.quantization,
            "parameter_count": self.parameter_count,
            "context_length": self.context_length,
            "licence": self.licence,
            "source": self.source,
            "sha256": self.sha256,
            "added_at": self.added_at,
            "exists": os.path.isfile(self.path),
            "repo_id": self.repo_id,
            "revision": self.revision,
            "hub_filename": self.hub_filename,
            "estimated_memory_bytes": self.estimated_memory_bytes,
            "measured_memory_bytes": self.measured_memory_bytes,
            "measured_context": self.measured_context,
            "last_loaded_at": self.last_loaded_at,
            "adapter_path": self.adapter.path if self.adapter is not None else None,
            "adapter_scale": self.adapter.scale if self.adapter is not None else None,
            "base_model_id": self.base_model_id,
        }


def _record(row: dict[str, Any]) -> ModelRecord:
    adapter = row.get("adapter_path")
    scale = row.get("adapter_scale")
    return from_row(ModelRecord, row, adapter=None if not adapter else LoraAdapter(
        str(adapter), 1.0 if scale is None else float(scale)))


class ModelRepository:
    """Registered model files."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def add(
        self,
        *,
        name: str,
        path: str,
        size_bytes: int,
        architecture: str | None,
        quantization: str | None,
        parameter_count: int | None,
        context_length: int | None,
        licence: str | None,
        source: str,
        sha256: str | None = None,
        metadata: dict[str, Any] | None = None,
        hub: tuple[str, str, str] | None = None,
    ) -> ModelRecord:
        """Register a model, or refresh the record when the path is already known.

        ``hub`` is (repo_id, revision, filename) for a file that came from the hub.
        """
        existing = self.get_by_path(path)
        row: dict[str, Any] = {
            "name": name,
            "path": path,
            "size_bytes": size_bytes,
            "architecture": architecture,
            "quantization": quantization,
            "parameter_count": parameter_count,
            "context_length": context_length,
            "licence": licence,
            "sha256": sha256,
            "metadata_json": json.dumps(metadata or {}, sort_keys=True),
        }
        if hub is not None:
            row["repo_id"], row["revision"], row["hub_filename"] = hub
        if sha256 is None and existing is not None:
            row.pop("sha256")  # a refresh without hashing keeps a verified hash
        with self.db.atomic():
            if existing is not None:
                self.db.table("models").update(existing.id, row)
                model_id = existing.id
            else:
                model_id = new_id()
                self.db.table("models").insert(
                    {"id": model_id, "source": source, "added_at": utc_now(), **row}
                )
        return self.get(model_id)

    def get(self, model_id: str) -> ModelRecord:
        return _record(one_row(self.db, "models", "id = ?", [model_id],
                               f"No model with id {model_id}."))

    def add_fine_tune(self, *, name: str, base: ModelRecord, adapter_path: str,
                      adapter_scale: float = 1.0, metadata: dict[str, Any] | None = None
                      ) -> ModelRecord:
        """Register ``base`` with a LoRA adapter on top as a model of its own (``name``).

        It shares the base's file (never deleted with it) and keeps the base's facts."""
        model_id = new_id()
        with self.db.atomic():
            self.db.table("models").insert({
                "id": model_id, "name": name, "path": base.path, "size_bytes": base.size_bytes,
                "architecture": base.architecture, "quantization": base.quantization,
                "parameter_count": base.parameter_count,
                "context_length": base.context_length, "licence": base.licence,
                "source": "fine-tune", "added_at": utc_now(), "sha256": base.sha256,
                "metadata_json": json.dumps({**base.metadata, **(metadata or {})},
                                            sort_keys=True),
                "adapter_path": adapter_path, "adapter_scale": adapter_scale,
                "base_model_id": base.id,
            })
        return self.get(model_id)

    def get_by_path(self, path: str) -> ModelRecord | None:
        """The model registered for the file at ``path`` (not a fine-tune sharing it)."""
        row = first_row(self.db, "models", "path = ? AND adapter_path IS NULL", [path])
        return None if row is None else _record(row)

    def exists(self, model_id: str) -> bool:
        """Whether a model with this id is registered."""
        return first_row(self.db, "models", "id = ?", [model_id]) is not None

    def ids(self) -> set[str]:
        """The ids of every registered model."""
        return {str(r[0]) for r in self.db.execute("SELECT id FROM models").fetchall()}

    def list(self) -> list[ModelRecord]:
        return [
            _record(r)
            for r in self.db.table("models").rows_where(order_by="added_at, id")
        ]

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM models").fetchone()[0])

    def find(self, ref: str) -> ModelRecord:
        """Find a model by id, id prefix, exact name, or file name (case-insensitive)."""
        models = self.list()
        for m in models:
            if m.id == ref:
                return m
        needle = ref.casefold()
        predicates: list[Callable[[ModelRecord], bool]] = [
            lambda m: m.name.casefold() == needle,
            lambda m: os.path.basename(m.path).casefold() == needle,
            lambda m: m.id.casefold().startswith(needle) and len(needle) >= 4,
            lambda m: needle in m.name.casefold(),
        ]
        for pred in predicates:
            hits = [m for m in models if pred(m)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                names = ", ".join(h.name for h in hits)
                raise NotFoundError(f"'{ref}' matches several models: {names}.")
        raise NotFoundError(
            f"No model matches '{ref}'. See `slmdesk models list`."
        )

    def remove(self, model_id: str) -> None:
        with self.db.atomic():
            self.db.table("models").delete(model_id)

    def rename(self, model_id: str, name: str) -> ModelRecord:
        """Store the name the person chose (checked by ``catalog.registry.rename_model``)."""
        self.get(model_id)  # NotFoundError for an unknown id
        with self.db.atomic():
            self.db.table("models").update(model_id, {"name": name})
        return self.get(model_id)

    def set_sha256(self, model_id: str, digest: str) -> ModelRecord:
        """Keep a computed sha256 on the model's record."""
        self.get(model_id)  # NotFoundError for an unknown id
        with self.db.atomic():
            self.db.table("models").update(model_id, {"sha256": digest})
        return self.get(model_id)

    def record_memory(
        self, model_id: str, *, estimated: int | None, measured: int | None, context: int
    ) -> None:
        """Keep the fit estimate and the measured memory of a load at ``context`` tokens.

        ``measured`` None (or 0, never a real figure) is stored as "not measured"."""
        with self.db.atomic():
            self.db.table("models").update(model_id, {
                "estimated_memory_bytes": estimated,
                "measured_memory_bytes": measured or None,
                "measured_context": context,
                "last_loaded_at": utc_now(),
            })

