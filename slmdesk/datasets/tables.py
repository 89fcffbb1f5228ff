"""Read CSV/TSV and JSON-lines text into numbered rows: the one reader behind data set
imports (``datasets.formats``) and the classifier's input files (``classify.io``).

Each caller says how a line is named in its messages (``where(line)``), so an error reads
"reviews.csv line 3: ..." in one and "/path/reviews.csv, line 3: ..." in the other.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from slmdesk.errors import InvalidInputError

# A text can be long (a whole document in one cell); csv's default limit is 128 KiB.
MAX_FIELD = 64 * 1024 * 1024

Where = Callable[[int], str]  # a line number -> how a message names that place
Row = tuple[int, dict[str, Any]]  # (line the row starts on, values by column)


def utf8_error_line(data: bytes, exc: UnicodeDecodeError) -> int:
    """The line of ``data`` (decoded as utf-8-sig) where ``exc`` happened."""
    # exc.start counts in exc.object, which is data without its BOM: the utf-8-sig codec
    # strips the BOM before decoding the rest.
    decoded = exc.object if isinstance(exc.object, bytes) else data
    return decoded[: exc.start].count(b"\n") + 1


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered lines, split at ``\\n`` only: JSON and plain text may hold U+2028 or form
    feeds, which ``str.splitlines`` would treat as line ends."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line[:-1] if line.endswith("\r") else line


def csv_records(text: str, delimiter: str, where: Where) -> Iterator[tuple[int, list[str]]]:
    """The records of CSV text, each with the line it starts on; a CSV syntax error
    becomes ``InvalidInputError``."""
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for record in reader:
            line = start
            start = reader.line_num + 1
            yield line, record
    except csv.Error as exc:
        raise InvalidInputError(f"{where(reader.line_num)}: {exc}.") from exc


def csv_table(text: str, delimiter: str, where: Where, empty: str
              ) -> tuple[list[str], list[Row]]:
    """Column names (the first non-blank record) and rows of CSV text; every row must
    have as many fields as the header. ``empty`` is the message for a file with no
    header row."""
    header: list[str] | None = None
    rows: list[Row] = []
    for line, record in csv_records(text, delimiter, where):
        if not record or (header is None and not any(c.strip() for c in record)):
            continue
        if header is None:
            header = [c.strip() for c in record]
            if any(not c for c in header):
                raise InvalidInputError(f"{where(line)}: a column has no name.")
            if len(set(header)) != len(header):
                raise InvalidInputError(f"{where(line)}: a column name is given twice.")
            continue
        if len(record) != len(header):
            raise InvalidInputError(
                f"{where(line)}: {len(record)} fields, but the header has {len(header)}."
            )
        rows.append((line, dict(zip(header, record, strict=True))))
    if header is None:
        raise InvalidInputError(empty)
    return header, rows


def json_error(place: str, exc: Exception) -> InvalidInputError:
    """The message for JSON that does not parse (or nests too deeply) at ``place``."""
    if isinstance(exc, json.JSONDecodeError):
        return InvalidInputError(f"{place}: not valid JSON ({exc.msg}).")
    return InvalidInputError(f"{place}: the JSON is nested too deeply.")


def json_lines(text: str, where: Where, *, first_only: bool = False) -> list[tuple[int, Any]]:
    """The values of JSON-lines text (blank lines skipped), each with its line."""
    records: list[tuple[int, Any]] = []
    for number, line in numbered_lines(text):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise json_error(where(number), exc) from exc
        if first_only:
            break
    return records


def object_rows(records: list[tuple[int, Any]], where: Where) -> tuple[list[str], list[Row]]:
    """Column names (every key, in order of appearance) and rows of JSON records that
    must all be objects."""
    columns: dict[str, None] = {}
    for number, value in records:
        if not isinstance(value, dict):
            raise InvalidInputError(f"{where(number)}: not a JSON object.")
        for key in value:
            columns.setdefault(str(key), None)
    return list(columns), records
