"""The one CSV/JSON-lines reader behind data set imports and classifier input files."""

from __future__ import annotations

import csv

import pytest

from slmdesk.datasets import tables
from slmdesk.datasets.tables import (
    csv_records,
    csv_table,
    json_lines,
    numbered_lines,
    object_rows,
    utf8_error_line,
)
from slmdesk.errors import InvalidInputError


def _where(line: int) -> str:
    return f"f.csv line {line}"


def test_csv_table_numbers_rows_by_the_line_they_start_on() -> None:
    text = '\n,\ntext,label\n"two\nlines",a\nb,c\n'
    header, rows = csv_table(text, ",", _where, "empty")
    assert header == ["text", "label"]
    assert rows == [(4, {"text": "two\nlines", "label": "a"}), (6, {"text": "b", "label": "c"})]


@pytest.mark.parametrize(("text", "needle"), [
    ("a,,b\n", "f.csv line 1: a column has no name."),
    ("a,a\n", "f.csv line 1: a column name is given twice."),
    ("a,b\n1\n", "f.csv line 2: 1 fields, but the header has 2."),
    ("", "empty"),
])
def test_csv_table_refusals(text: str, needle: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        csv_table(text, ",", _where, "empty")
    assert info.value.message == needle


def test_csv_errors_name_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "MAX_FIELD", 5)
    limit = csv.field_size_limit()
    try:
        with pytest.raises(InvalidInputError, match=r"f\.csv line 2: field larger than"):
            list(csv_records("a\n0123456789\n", ",", _where))
    finally:
        csv.field_size_limit(limit)  # process-wide: the tests that follow need it back


def test_json_lines_split_at_newlines_only() -> None:
    records = json_lines('{"t": "a\u2028b"}\n\n{"t": 2}\r\n', _where)
    assert records == [(1, {"t": "a\u2028b"}), (3, {"t": 2})]
    assert json_lines('{"t": 1}\n{"t": 2}', _where, first_only=True) == [(1, {"t": 1})]
    with pytest.raises(InvalidInputError, match=r"f\.csv line 2: not valid JSON"):
        json_lines('{}\n{nope', _where)
    with pytest.raises(InvalidInputError, match=r"f\.csv line 1: the JSON is nested too deeply"):
        json_lines("[" * 100_000 + "]" * 100_000, _where)


def test_object_rows_collect_columns_in_order() -> None:
    assert object_rows([(1, {"b": 1}), (2, {"a": 2, "b": 3})], _where)[0] == ["b", "a"]
    with pytest.raises(InvalidInputError, match=r"f\.csv line 2: not a JSON object"):
        object_rows([(1, {}), (2, [1])], _where)


def test_lines_and_utf8_error_lines() -> None:
    assert list(numbered_lines("a\r\nb\fc\n")) == [(1, "a"), (2, "b\fc"), (3, "")]
    data = b"\xef\xbb\xbfok\nbad \xff\n"
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        assert utf8_error_line(data, exc) == 2
