"""Read texts and labelled texts from .txt, .csv, .tsv and .jsonl files.

Every reader reads and checks the whole file before returning, so a bad row never leaves
half a list behind; errors are ``InvalidInputError`` naming the file and the line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from slmdesk.datasets.tables import (
    Row,
    Where,
    csv_records,
    csv_table,
    json_lines,
    object_rows,
    utf8_error_line,
)
from slmdesk.errors import InvalidInputError
from slmdesk.json_data import parse_json

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
TEXT_SUFFIXES = (".txt",)

PathLike = str | os.PathLike[str]


def _name(path: PathLike) -> str:
    return os.fspath(path)


def _where(path: PathLike) -> Where:
    return lambda line: f"{_name(path)}, line {line}"


def _read_text(path: PathLike) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {_name(path)}: {exc.strerror or exc}.") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{_name(path)} is not UTF-8 text (line {utf8_error_line(data, exc)}: "
            f"{exc.reason}). Save it as UTF-8 and try again."
        ) from exc


def _suffix(path: PathLike, allowed: tuple[str, ...]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise InvalidInputError(
            f"{_name(path)}: unsupported file type '{suffix or '(none)'}' "
            f"(use {', '.join(allowed)})."
        )
    return suffix


def _table_rows(path: PathLike) -> tuple[list[str], list[Row]]:
    """Column names and rows of a .csv/.tsv/.jsonl file."""
    suffix = _suffix(path, TABLE_SUFFIXES)
    text = _read_text(path)
    where = _where(path)
    if suffix in (".jsonl", ".ndjson"):
        return object_rows(json_lines(text, where), where)
    return csv_table(text, "\t" if suffix == ".tsv" else ",", where,
                     f"{_name(path)} is empty (no header row).")


def _cell_text(path: PathLike, line: int, row: dict[str, Any], column: str,
               *, allow_numbers: bool = False) -> str:
    value = row.get(column)
    if isinstance(value, str):
        return value
    if allow_numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        raise InvalidInputError(f"{_name(path)}, line {line}: no '{column}' value.")
    raise InvalidInputError(f"{_name(path)}, line {line}: '{column}' is not text.")


def _require_column(path: PathLike, columns: list[str], column: str) -> None:
    if column not in columns:
        raise InvalidInputError(
            f"{_name(path)} has no '{column}' column (columns: {', '.join(columns) or 'none'})."
        )


def read_columns(path: PathLike) -> list[str]:
    """The column names of a .csv/.tsv/.jsonl file (for a column picker)."""
    columns, _rows = _table_rows(path)
    return columns


def read_texts(path: PathLike, column: str | None = None) -> list[str]:
    """Texts to classify: a .txt file one per line (blank lines skipped), or a column
    (default ``text``) of a .csv/.tsv/.jsonl file. Empty cells stay, so results line up
    with rows; the classifier reports them as empty."""
    suffix = _suffix(path, TEXT_SUFFIXES + TABLE_SUFFIXES)
    if suffix in TEXT_SUFFIXES:
        return [line for line in _read_text(path).splitlines() if line.strip()]
    columns, rows = _table_rows(path)
    column = column or "text"
    _require_column(path, columns, column)
    return [_cell_text(path, line, row, column) for line, row in rows]


def read_labelled(
    path: PathLike, text_column: str = "text", label_column: str = "label"
) -> list[tuple[str, str]]:
    """(text, label) pairs from a .csv/.tsv/.jsonl file; every row needs both.

    Numeric labels in JSONL (``"label": 1``) are read as text ("1").
    """
    columns, rows = _table_rows(path)
    _require_column(path, columns, text_column)
    _require_column(path, columns, label_column)
    pairs: list[tuple[str, str]] = []
    for line, row in rows:
        text = _cell_text(path, line, row, text_column)
        label = _cell_text(path, line, row, label_column, allow_numbers=True).strip()
        if not text.strip():
            raise InvalidInputError(f"{_name(path)}, line {line}: the text is empty.")
        if not label:
            raise InvalidInputError(f"{_name(path)}, line {line}: the label is empty.")
        pairs.append((text, label))
    return pairs


def read_descriptions(path: PathLike) -> dict[str, str]:
    """Label descriptions: a JSON object {label: description}, or a CSV/TSV of
    label,description rows (a first row ``label,description`` is taken as a header)."""
    suffix = _suffix(path, (".json", ".csv", ".tsv"))
    text = _read_text(path)
    if suffix == ".json":
        data = parse_json(
            text,
            invalid=lambda exc: InvalidInputError(
                f"{_name(path)} is not valid JSON: {exc.msg} (line {exc.lineno})."),
            too_deep=lambda: InvalidInputError(f"{_name(path)} is nested too deeply."))
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise InvalidInputError(
                f"{_name(path)} must be a JSON object of label: description texts."
            )
        return {k.strip(): v.strip() for k, v in data.items()}
    out: dict[str, str] = {}
    first = True
    for line, record in csv_records(text, "\t" if suffix == ".tsv" else ",", _where(path)):
        if not record or not any(c.strip() for c in record):
            continue
        if first and [c.strip().lower() for c in record] == ["label", "description"]:
            first = False
            continue
        first = False
        if len(record) != 2 or not record[0].strip():
            raise InvalidInputError(
                f"{_where(path)(line)}: expected two fields, label and description."
            )
        out[record[0].strip()] = record[1].strip()
    return out
