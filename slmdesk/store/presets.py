"""Sampling presets: the built-in ones and those the user saved."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from slmdesk.engine.params import SamplingParams
from slmdesk.errors import InvalidInputError
from slmdesk.ids import new_id, utc_now
from slmdesk.store.rows import first_row, from_row, required


@dataclass(frozen=True)
class Preset:
    """A named set of sampling parameters, optionally with a system prompt."""

    id: str
    name: str
    sampling: SamplingParams
    system_prompt: str | None
    builtin: bool
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "sampling": self.sampling.to_json(),
            "system_prompt": self.system_prompt,
            "builtin": self.builtin,
            "created_at": self.created_at,
        }


def _preset_from_row(row: dict[str, Any]) -> Preset:
    return from_row(
        Preset, row,
        sampling=SamplingParams.from_json(json.loads(row["params_json"] or "{}")),
        builtin=bool(row["builtin"]),
    )


class PresetRepository:
    """Sampling presets: three built-in ones (Precise, Balanced, Creative) and the user's."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def list(self) -> list[Preset]:
        """Built-in presets first, then by name."""
        return [
            _preset_from_row(r)
            for r in self.db.table("presets").rows_where(order_by="builtin DESC, name, id")
        ]

    def _find(self, name: str) -> Preset | None:
        row = first_row(self.db, "presets", "name = ?", [name])
        return None if row is None else _preset_from_row(row)

    def get(self, name: str) -> Preset:
        return required(self._find(name), f"No preset named '{name}'.")

    def save(
        self, name: str, sampling: SamplingParams, system_prompt: str | None = None
    ) -> Preset:
        """Create the preset, or replace the parameters of the user's preset of that name."""
        name = name.strip()
        if not name:
            raise InvalidInputError("A preset needs a name.")
        row = {
            "params_json": json.dumps(sampling.to_json(), sort_keys=True),
            "system_prompt": system_prompt,
        }
        with self.db.atomic():
            existing = self._find(name)
            if existing is not None and existing.builtin:
                raise InvalidInputError(
                    f"'{name}' is a built-in preset and cannot be changed; "
                    "save under another name."
                )
            if existing is None:
                self.db.table("presets").insert(
                    {"id": new_id(), "name": name, "builtin": 0, "created_at": utc_now(), **row}
                )
            else:
                self.db.table("presets").update(existing.id, row)
        return self.get(name)

    def delete(self, name: str) -> None:
        preset = self.get(name)
        if preset.builtin:
            raise InvalidInputError(f"'{name}' is a built-in preset and cannot be deleted.")
        with self.db.atomic():
            self.db.table("presets").delete(preset.id)
