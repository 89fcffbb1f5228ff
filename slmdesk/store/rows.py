"""Helpers every repository shares: dataclasses from rows, single rows, rows found by name,
new rows, id slices, FTS queries."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any, TypeVar

import sqlite_utils

from slmdesk.errors import NotFoundError
from slmdesk.ids import new_id, utc_now

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    RecordT = TypeVar("RecordT", bound=DataclassInstance)
else:
    RecordT = TypeVar("RecordT")

T = TypeVar("T")

# SQLite allows a limited number of parameters per statement; id lists go in slices.
ID_SLICE = 500

_FTS_TOKEN = re.compile(r"\w+", re.UNICODE)


def from_row(cls: type[RecordT], row: Mapping[str, Any], **values: Any) -> RecordT:
    """A dataclass from a table row.

    Each field takes the column of its name, or else the decoded JSON of the column
    ``<name>_json`` (an empty one gives the field's default, or None); ``values`` set the
    fields the row cannot give as they are. A field with a default may be missing from
    the row.
    """
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in values:
            kwargs[f.name] = values[f.name]
        elif f.name in row:
            kwargs[f.name] = row[f.name]
        elif f"{f.name}_json" in row:
            raw = row[f"{f.name}_json"]
            if raw:
                kwargs[f.name] = json.loads(raw)
            elif f.default_factory is not MISSING:
                kwargs[f.name] = f.default_factory()
            else:
                kwargs[f.name] = None if f.default is MISSING else f.default
    return cls(**kwargs)


def first_row(
    db: sqlite_utils.Database, table: str, where: str, params: Sequence[Any]
) -> dict[str, Any] | None:
    """The first row of ``table`` matching ``where``, or None."""
    for row in db.table(table).rows_where(where, list(params), limit=1):
        return dict(row)
    return None


def one_row(
    db: sqlite_utils.Database, table: str, where: str, params: Sequence[Any], missing: str
) -> dict[str, Any]:
    """The row of ``table`` matching ``where``; ``NotFoundError(missing)`` when none does."""
    row = first_row(db, table, where, params)
    if row is None:
        raise NotFoundError(missing)
    return row


def record_named(db: sqlite_utils.Database, table: str, name: str,
                 record: Callable[[dict[str, Any]], T]) -> T | None:
    """``record`` of the row of ``table`` whose name is ``name`` (names compare without
    case), or None when there is no such row."""
    row = first_row(db, table, "name = ? COLLATE NOCASE", [name])
    return None if row is None else record(row)


def rows_by_name(db: sqlite_utils.Database, table: str) -> Iterator[dict[str, Any]]:
    """Every row of ``table``, by name without case."""
    return db.table(table).rows_where(order_by="name COLLATE NOCASE")


def insert_new(db: sqlite_utils.Database, table: str, values: Mapping[str, Any]) -> str:
    """Insert ``values`` into ``table`` as a new row, in its own transaction, with a new id
    and ``created_at``/``updated_at`` now; returns the id."""
    now = utc_now()
    row_id = new_id()
    with db.atomic():
        db.table(table).insert({"id": row_id, **values, "created_at": now, "updated_at": now})
    return row_id


def required(found: T | None, missing: str) -> T:
    """``found``, unless it is None: then ``NotFoundError(missing)``."""
    if found is None:
        raise NotFoundError(missing)
    return found


def id_slices(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    """``ids`` in slices small enough for one statement's parameters."""
    for start in range(0, len(ids), ID_SLICE):
        yield ids[start : start + ID_SLICE]


def placeholders(values: Iterable[Any]) -> str:
    """``?, ?, ?``: one parameter mark per value, for an ``IN (...)`` list."""
    return ", ".join("?" for _ in values)


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: every word as a quoted prefix term."""
    words = _FTS_TOKEN.findall(text)
    return " ".join('"' + w.replace('"', "") + '"*' for w in words)
