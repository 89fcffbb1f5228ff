"""Reading texts and labelled texts from .txt, .csv, .tsv and .jsonl files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmdesk.classify.io import read_columns, read_descriptions, read_labelled, read_texts
from slmdesk.errors import InvalidInputError


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_txt_one_text_per_line_blank_lines_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.txt", "first\n\n  \nsecond line\r\nthird")
    assert read_texts(path) == ["first", "second line", "third"]


def test_csv_text_column_with_quotes_commas_and_newlines(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "t.csv",
        'id,text,label\n1,"Hello, world",a\n2,"two\nlines",b\n3,,a\n',
    )
    assert read_columns(path) == ["id", "text", "label"]
    # An empty cell stays, so results line up with the rows.
    assert read_texts(path) == ["Hello, world", "two\nlines", ""]
    assert read_texts(path, column="label") == ["a", "b", "a"]


def test_utf8_bom_and_tsv(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.tsv", "\ufefftext\tlabel\nCafé, olé\tyes\n")
    assert read_columns(path) == ["text", "label"]
    assert read_labelled(path) == [("Café, olé", "yes")]


def test_jsonl_rows_and_numeric_labels(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "good", "label": "pos"}),
        "",
        json.dumps({"text": "bad", "label": 0, "extra": True}),
    ]
    path = _write(tmp_path, "t.jsonl", "\n".join(lines) + "\n")
    assert read_columns(path) == ["text", "label", "extra"]
    assert read_texts(path) == ["good", "bad"]
    assert read_labelled(path) == [("good", "pos"), ("bad", "0")]


def test_custom_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "sentence,gold\nhi,a\n")
    assert read_labelled(path, text_column="sentence", label_column="gold") == [("hi", "a")]
    assert read_texts(path, column="sentence") == ["hi"]


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("bad.csv", "text,label\nok,a\n\"x\",b,c\n", "bad.csv, line 3: 3 fields"),
        ("bad.csv", "text,label\n\"multi\nline\",a\nsolo\n", "bad.csv, line 4: 1 fields"),
        ("bad.csv", "text,label\nok,a\nempty label,\n", "bad.csv, line 3: the label is empty"),
        ("bad.csv", "text,label\n ,a\n", "bad.csv, line 2: the text is empty"),
        ("bad.csv", "text,text\nx,y\n", "line 1: a column name is given twice"),
        ("bad.csv", "", "is empty"),
        ("bad.csv", "words,label\nx,a\n", "has no 'text' column (columns: words, label)"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": \n',
         "bad.jsonl, line 2: not valid JSON"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n\n["text"]\n', "bad.jsonl, line 3: not a JSON"),
        ("bad.jsonl", '{"text": 5, "label": "x"}\n', "line 1: 'text' is not text"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', "line 2: no 'label' value"),
        ("bad.jsonl", '{"text": "a", "label": true}\n', "line 1: 'label' is not text"),
        ("bad.xlsx", "x", "unsupported file type '.xlsx'"),
    ],
)
def test_bad_labelled_files_name_the_file_and_line(
    tmp_path: Path, name: str, content: str, needle: str
) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(InvalidInputError) as err:
        read_labelled(path)
    assert needle in err.value.message
    assert str(path) in err.value.message


def test_encoding_errors_say_where(tmp_path: Path) -> None:
    path = _write(tmp_path, "latin.csv", "text,label\nok,a\ncaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match=r"latin.csv is not UTF-8 text \(line 3"):
        read_texts(path)
    path = _write(tmp_path, "latin.txt", b"one\ntwo\n\xff\n")
    with pytest.raises(InvalidInputError, match="line 3"):
        read_texts(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"Cannot read .*nope\.csv"):
        read_texts(tmp_path / "nope.csv")


def test_a_missing_text_column_lists_the_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.jsonl", '{"body": "x"}\n')
    with pytest.raises(InvalidInputError, match=r"no 'text' column \(columns: body\)"):
        read_texts(path)


def test_long_cells_are_read(tmp_path: Path) -> None:
    long = "word " * 60_000  # over csv's default 128 KiB field limit
    path = _write(tmp_path, "long.csv", f'text,label\n"{long}",a\n')
    assert read_labelled(path) == [(long, "a")]


def test_descriptions_from_json_and_csv(tmp_path: Path) -> None:
    j = _write(tmp_path, "d.json", json.dumps({"pos": "Good things.", "neg": "Bad things."}))
    assert read_descriptions(j) == {"pos": "Good things.", "neg": "Bad things."}
    c = _write(tmp_path, "d.csv", "label,description\npos,\"Good, things.\"\nneg,Bad\n")
    assert read_descriptions(c) == {"pos": "Good, things.", "neg": "Bad"}
    headerless = _write(tmp_path, "h.csv", "pos,Good\n")
    assert read_descriptions(headerless) == {"pos": "Good"}
    bad = _write(tmp_path, "bad.csv", "pos,Good\nneg\n")
    with pytest.raises(InvalidInputError, match=r"bad\.csv, line 2: expected two fields"):
        read_descriptions(bad)
    notobj = _write(tmp_path, "bad.json", "[1]")
    with pytest.raises(InvalidInputError, match="JSON object of label"):
        read_descriptions(notobj)
