"""The row helpers every repository shares (dataclasses from rows, single rows, id slices)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import slmdesk.store
from slmdesk.errors import NotFoundError
from slmdesk.store.db import open_database
from slmdesk.store.rows import (
    ID_SLICE,
    first_row,
    from_row,
    fts_query,
    id_slices,
    insert_new,
    one_row,
    placeholders,
    record_named,
    required,
    rows_by_name,
)


@dataclass(frozen=True)
class _Thing:
    id: str
    spec: dict[str, Any]
    tags: list[str] | None
    metadata: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


def test_from_row_decodes_json_columns_and_fills_defaults() -> None:
    row = {"id": "a", "spec_json": '{"k": 1}', "tags_json": None, "metadata_json": "",
           "unrelated": 3}
    assert from_row(_Thing, row) == _Thing(id="a", spec={"k": 1}, tags=None, metadata={})
    assert from_row(_Thing, row, tags=["x"], note="n").tags == ["x"]
    assert from_row(_Thing, row, note="n").note == "n"


def test_single_rows_and_slices(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.db")
    db.table("settings").insert({"key": "a", "value_json": "1"})
    assert first_row(db, "settings", "key = ?", ["a"]) == {"key": "a", "value_json": "1"}
    assert first_row(db, "settings", "key = ?", ["b"]) is None
    with pytest.raises(NotFoundError, match="no b"):
        one_row(db, "settings", "key = ?", ["b"], "no b")
    with pytest.raises(NotFoundError, match="gone"):
        required(None, "gone")
    assert required(0, "gone") == 0
    ids = [str(i) for i in range(ID_SLICE * 2 + 1)]
    assert [len(s) for s in id_slices(ids)] == [ID_SLICE, ID_SLICE, 1]
    assert placeholders("abc") == "?, ?, ?"
    assert fts_query('say "hi" there') == '"say"* "hi"* "there"*'
    db.close()


def test_the_store_package_names_every_repository() -> None:
    for name in ("ChatRepository", "ModelRepository", "PresetRepository",
                 "SettingsRepository", "LEAF"):
        assert hasattr(slmdesk.store, name)


def test_rows_by_name_and_new_rows(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.db")
    first = insert_new(db, "engines", {"name": "Box", "base_url": "http://b", "api_key": None})
    insert_new(db, "engines", {"name": "apple", "base_url": "http://a", "api_key": None})
    row = record_named(db, "engines", "BOX", dict)
    assert row is not None and row["id"] == first
    assert row["created_at"] == row["updated_at"]
    assert record_named(db, "engines", "Box", lambda r: r["name"]) == "Box"
    assert record_named(db, "engines", "nobody", dict) is None
    assert [r["name"] for r in rows_by_name(db, "engines")] == ["apple", "Box"]
    db.close()
