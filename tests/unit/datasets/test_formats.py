"""Data set files: detection, preview, round trips through every format, schemas of the
exports, and malformed files that are refused with their line and change nothing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from slmdesk.datasets import formats
from slmdesk.datasets.formats import FORMATS, detect_format, export, import_file, preview
from slmdesk.datasets.splits import assign_splits
from slmdesk.errors import InvalidInputError
from slmdesk.store.datasets import Dataset, DatasetRepository, NewExample

LABELS = ["positive", "negative", "neutral"]
# Texts that trip up naive writers and readers: commas, quotes, newlines (also CRLF),
# tabs, leading spaces, Unicode line separators, emoji, a lone label-like text.
TEXTS = [
    ("Great film, loved it", "positive"),
    ('She said "meh" and left', "neutral"),
    ("Line one\nline two\r\nline three", "negative"),
    ("\ttabbed and  spaced ", "positive"),
    ("Unicode: café, naïve, 日本語, 🎬 and a\u2028separator", "neutral"),
    ("negative", "negative"),
    ("=1+1 looks like a formula", "positive"),
]
CHATS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
    [{"role": "system", "content": "You answer in French."},
     {"role": "user", "content": "Good morning"},
     {"role": "assistant", "content": "Bonjour"}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And \"3+3\",\nplease?"},
     {"role": "assistant", "content": "6 \u2028 🎲"}],
]




@pytest.fixture
def repo(db: sqlite_utils.Database) -> DatasetRepository:
    return DatasetRepository(db)


@pytest.fixture
def labelled(repo: DatasetRepository) -> Dataset:
    ds = repo.create("Reviews", kind="labels", labels=LABELS)
    repo.add_examples(ds, [NewExample(text=t, label=lab) for t, lab in TEXTS])
    return repo.get("Reviews")


@pytest.fixture
def chats(repo: DatasetRepository) -> Dataset:
    ds = repo.create("Chats", kind="chat")
    repo.add_examples(ds, [NewExample(messages=m, source="conversation") for m in CHATS])
    return repo.get("Chats")


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def _dump(db: sqlite_utils.Database) -> list[str]:
    return list(db.conn.iterdump())


def _pairs(repo: DatasetRepository, name: str) -> list[tuple[str | None, str | None]]:
    return [(e.text, e.label) for e in repo.examples(repo.get(name))]


def _messages(repo: DatasetRepository, name: str) -> list[Any]:
    return [e.messages for e in repo.examples(repo.get(name))]


# -- schemas of the exports (hand-written validators) ----------------------------------------


def _check_turns(roles: list[str]) -> None:
    turns = roles[1:] if roles and roles[0] == "system" else roles
    assert turns and "system" not in turns
    assert turns == ["user", "assistant"] * (len(turns) // 2), roles


def check_openai(record: Any) -> None:
    """OpenAI chat fine-tuning: {"messages": [{"role", "content"}, ...]}."""
    assert isinstance(record, dict) and set(record) == {"messages"}
    messages = record["messages"]
    assert isinstance(messages, list) and messages
    for m in messages:
        assert isinstance(m, dict) and set(m) == {"role", "content"}
        assert m["role"] in ("system", "user", "assistant")
        assert isinstance(m["content"], str) and m["content"].strip()
    _check_turns([m["role"] for m in messages])


def check_sharegpt(record: Any) -> None:
    """ShareGPT: {"conversations": [{"from": system|human|gpt, "value"}, ...]}."""
    assert isinstance(record, dict) and set(record) == {"conversations"}
    turns = record["conversations"]
    assert isinstance(turns, list) and turns
    for t in turns:
        assert isinstance(t, dict) and set(t) == {"from", "value"}
        assert t["from"] in ("system", "human", "gpt")
        assert isinstance(t["value"], str) and t["value"].strip()
    roles = {"system": "system", "human": "user", "gpt": "assistant"}
    _check_turns([roles[t["from"]] for t in turns])


def check_alpaca(record: Any) -> None:
    """Alpaca: instruction, input, output (+ LLaMA-Factory's optional system, history)."""
    assert isinstance(record, dict)
    assert {"instruction", "input", "output"} <= set(record)
    assert set(record) <= {"instruction", "input", "output", "system", "history"}
    for key in ("instruction", "input", "output"):
        assert isinstance(record[key], str)
    assert record["instruction"].strip() and record["output"].strip()
    if "system" in record:
        assert isinstance(record["system"], str) and record["system"].strip()
    if "history" in record:
        assert isinstance(record["history"], list) and record["history"]
        for pair in record["history"]:
            assert isinstance(pair, list) and len(pair) == 2
            assert all(isinstance(p, str) for p in pair)


def check_text_label(record: Any, labels: list[str]) -> None:
    assert isinstance(record, dict) and list(record) == ["text", "label"]
    assert isinstance(record["text"], str) and record["text"].strip()
    assert record["label"] in labels


def _json_lines(text: str) -> list[Any]:
    if not text:
        return []
    assert text.endswith("\n") and "\r" not in text.replace("\\r", "")
    lines = text.split("\n")[:-1]
    return [json.loads(line) for line in lines]


def check_export(text: str, fmt: str, labels: list[str]) -> int:
    """Validate a whole export; returns the number of records."""
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == ["text", "label"]
        for row in rows[1:]:
            assert len(row) == 2 and row[0].strip() and row[1] in labels
        return len(rows) - 1
    records = _json_lines(text)
    for r in records:
        if fmt == "openai":
            check_openai(r)
        elif fmt == "sharegpt":
            check_sharegpt(r)
        elif fmt == "alpaca":
            check_alpaca(r)
        else:
            check_text_label(r, labels)
    return len(records)


@pytest.mark.parametrize("fmt", FORMATS)
def test_labelled_exports_validate_against_their_schema(
    db: sqlite_utils.Database, labelled: Dataset, fmt: str
) -> None:
    assert check_export(export(db, "Reviews", fmt), fmt, LABELS) == len(TEXTS)


@pytest.mark.parametrize("fmt", ["openai", "sharegpt", "alpaca", "jsonl"])
def test_chat_exports_validate_against_their_schema(
    db: sqlite_utils.Database, chats: Dataset, fmt: str
) -> None:
    text = export(db, "Chats", fmt)
    assert check_export(text, "openai" if fmt == "jsonl" else fmt, []) == len(CHATS)


def test_labelled_chat_exports_hold_instruction_text_and_label(
    db: sqlite_utils.Database, labelled: Dataset
) -> None:
    first = _json_lines(export(db, "Reviews", "openai"))[0]
    assert first["messages"][0]["role"] == "system"
    assert "positive, negative, neutral" in first["messages"][0]["content"]
    assert first["messages"][1:] == [{"role": "user", "content": TEXTS[0][0]},
                                     {"role": "assistant", "content": "positive"}]
    alpaca = _json_lines(export(db, "Reviews", "alpaca"))[0]
    assert alpaca == {"instruction": first["messages"][0]["content"], "input": TEXTS[0][0],
                      "output": "positive"}
    sharegpt = _json_lines(export(db, "Reviews", "sharegpt"))[0]
    assert [t["from"] for t in sharegpt["conversations"]] == ["system", "human", "gpt"]


def test_multi_turn_chat_in_alpaca_uses_history_and_system(
    db: sqlite_utils.Database, chats: Dataset
) -> None:
    records = _json_lines(export(db, "Chats", "alpaca"))
    assert records[0] == {"instruction": "Hi", "input": "", "output": "Hello! How can I help?"}
    assert records[2] == {"instruction": "And \"3+3\",\nplease?", "input": "",
                          "output": "6 \u2028 🎲", "system": "Be brief.",
                          "history": [["2+2?", "4"]]}


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_labelled_round_trip_through_every_format(
    db: sqlite_utils.Database, repo: DatasetRepository, labelled: Dataset, tmp_path: Path,
    fmt: str,
) -> None:
    text = export(db, "Reviews", fmt)
    path = _write(tmp_path / f"out.{'csv' if fmt == 'csv' else 'jsonl'}", text)
    result = import_file(db, "Again", path, kind="labels")
    assert (result.added, result.skipped_blank) == (len(TEXTS), 0)
    assert _pairs(repo, "Again") == _pairs(repo, "Reviews") == TEXTS
    # A new data set takes the labels in the order the file first uses them, or as the
    # instruction of an slmdesk chat export names them.
    assert repo.get("Again").labels == (
        ["positive", "neutral", "negative"] if fmt in ("jsonl", "csv") else LABELS)
    # ... and exporting the copy gives the same bytes.
    assert export(db, "Again", fmt) == text


@pytest.mark.parametrize("fmt", ["openai", "sharegpt", "alpaca", "jsonl"])
def test_chat_round_trip_through_every_chat_format(
    db: sqlite_utils.Database, repo: DatasetRepository, chats: Dataset, tmp_path: Path,
    fmt: str,
) -> None:
    text = export(db, "Chats", fmt)
    path = _write(tmp_path / "out.jsonl", text)
    assert detect_format(path) == ("openai" if fmt == "jsonl" else fmt)
    result = import_file(db, "Again", path)
    assert result.dataset.kind == "chat" and result.added == len(CHATS)
    assert _messages(repo, "Again") == CHATS
    assert export(db, "Again", fmt) == text


def test_unlabelled_texts_round_trip_on_request(
    db: sqlite_utils.Database, repo: DatasetRepository, labelled: Dataset, tmp_path: Path
) -> None:
    repo.add_labelled_text(labelled, "no label yet", None, source="typed")
    assert len(_json_lines(export(db, "Reviews", "jsonl"))) == len(TEXTS)
    for fmt in ("jsonl", "csv"):
        text = export(db, "Reviews", fmt, include_unlabelled=True)
        path = _write(tmp_path / f"u.{fmt}", text)
        import_file(db, f"U {fmt}", path)
        assert _pairs(repo, f"U {fmt}") == [*TEXTS, ("no label yet", None)]


def test_exports_are_deterministic_and_per_split(
    db: sqlite_utils.Database, repo: DatasetRepository, labelled: Dataset
) -> None:
    assign_splits(repo, labelled, seed=0)
    everything = export(db, "Reviews", "jsonl")
    assert everything == export(db, "Reviews", "jsonl")
    parts = {s: _json_lines(export(db, "Reviews", "jsonl", split=s))
             for s in ("train", "validation", "test")}
    assert sum(len(p) for p in parts.values()) == len(TEXTS)
    by_text = {e.text: e.split for e in repo.examples(labelled)}
    for split, records in parts.items():
        assert all(by_text[r["text"]] == split for r in records)
    with pytest.raises(InvalidInputError):
        export(db, "Reviews", "jsonl", split="dev")
    with pytest.raises(InvalidInputError):
        export(db, "Reviews", "parquet")


def test_csv_export_of_a_chat_set_is_refused(db: sqlite_utils.Database, chats: Dataset) -> None:
    with pytest.raises(InvalidInputError, match="CSV is for labelled texts"):
        export(db, "Chats", "csv")


# -- detection and preview -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", "text,label\nhi,pos\n", "csv"),
        ("a.tsv", "text\tlabel\nhi\tpos\n", "tsv"),
        ("a.csv", "text\tlabel\nhi, there\tpos\n", "tsv"),  # a .csv that is tab-separated
        ("a.txt", '{"text": "a json-looking line"}\n', "txt"),
        ("a.jsonl", '{"text": "hi", "label": "pos"}\n', "jsonl"),
        ("a.jsonl", '\n{"messages": [{"role": "user", "content": "a"}]}\n', "openai"),
        ("a.jsonl", '{"conversations": []}\n', "sharegpt"),
        ("a.json", '[\n  {"instruction": "a", "input": "", "output": "b"}\n]\n', "alpaca"),
        ("noext", '{"instruction": "a", "output": "b"}\n', "alpaca"),
        ("noext", "just some words\nand more\n", "txt"),
        ("noext", "text\tlabel\n", "tsv"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: str, expected: str) -> None:
    assert detect_format(_write(tmp_path / name, content)) == expected


def test_preview_suggests_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", "id,Review,Sentiment,notes\n1,Great,pos,\n2,Bad,neg,x\n"
                  "3,Fine,pos,\n")
    p = preview(path, limit=2)
    assert (p.format, p.kind, p.total) == ("csv", "labels", 3)
    assert p.columns == ["id", "Review", "Sentiment", "notes"]
    assert p.rows == [{"id": "1", "Review": "Great", "Sentiment": "pos", "notes": ""},
                      {"id": "2", "Review": "Bad", "Sentiment": "neg", "notes": "x"}]
    assert (p.suggested_text_column, p.suggested_label_column) == ("Review", "Sentiment")
    odd = preview(_write(tmp_path / "o.jsonl", '{"n": 1, "body_text": "a long text", "c": "x"}\n'))
    assert (odd.suggested_text_column, odd.suggested_label_column) == ("body_text", None)
    assert odd.rows == [{"n": "1", "body_text": "a long text", "c": "x"}]
    chat = preview(_write(tmp_path / "c.jsonl", json.dumps({"messages": CHATS[2]}) + "\n"))
    assert (chat.kind, chat.columns) == ("chat", ["system", "user", "assistant", "turns"])
    assert chat.rows == [{"system": "Be brief.", "user": "2+2?", "assistant": "4",
                          "turns": "2"}]
    text = preview(_write(tmp_path / "t.txt", "one\n\n two \n"))
    assert (text.format, text.total, text.rows) == ("txt", 2, [{"text": "one"},
                                                               {"text": " two "}])


# -- import -------------------------------------------------------------------------------


def test_import_csv_with_column_mapping_and_extras(
    db: sqlite_utils.Database, repo: DatasetRepository, tmp_path: Path
) -> None:
    path = _write(tmp_path / "r.csv", "\ufeffid,Review,Sentiment,notes,split\r\n"
                  "1,Great,pos,,train\r\n2,   ,neg,,\r\n3,Bad,neg,checked,TEST\r\n"
                  "4,Fine,,,\r\n5,Okay,3,,\r\n")
    result = import_file(db, "Mapped", path)
    assert (result.added, result.skipped_blank) == (4, 1)
    assert (result.text_column, result.label_column, result.format) == (
        "Review", "Sentiment", "csv")
    ds = repo.get("Mapped")
    assert ds.labels == ["pos", "neg", "3"]
    got = [(e.text, e.label, e.notes, e.split, e.source, e.source_ref, e.labelled_by)
           for e in repo.examples(ds)]
    assert got == [
        ("Great", "pos", None, "train", "imported", "r.csv", "person"),
        ("Bad", "neg", "checked", "test", "imported", "r.csv", "person"),
        ("Fine", None, None, None, "imported", "r.csv", None),
        ("Okay", "3", None, None, "imported", "r.csv", "person"),
    ]
    other = import_file(db, "Ids", path, text_column="Review", label_column="id")
    assert repo.get("Ids").labels == ["1", "3", "4", "5"] and other.added == 4


def test_import_plain_text_and_json_array(
    db: sqlite_utils.Database, repo: DatasetRepository, tmp_path: Path
) -> None:
    path = _write(tmp_path / "t.txt", "first line\r\n\r\nsecond\u2028same line\n   \nthird")
    result = import_file(db, "Lines", path)
    assert (result.added, result.skipped_blank) == (3, 2)
    assert _pairs(repo, "Lines") == [("first line", None), ("second\u2028same line", None),
                                     ("third", None)]
    array = _write(tmp_path / "a.json", json.dumps(
        [{"instruction": "Say hi", "input": "to Bob", "output": "Hi Bob"},
         {"instruction": "Count", "output": "1 2 3", "input": None}], indent=2))
    import_file(db, "Alpaca", array)
    assert _messages(repo, "Alpaca") == [
        [{"role": "user", "content": "Say hi\n\nto Bob"},
         {"role": "assistant", "content": "Hi Bob"}],
        [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "1 2 3"}],
    ]


def test_import_into_an_existing_set_checks_the_label_set(
    db: sqlite_utils.Database, repo: DatasetRepository, labelled: Dataset, tmp_path: Path
) -> None:
    path = _write(tmp_path / "new.jsonl", '{"text": "a", "label": "positive"}\n'
                  '{"text": "b", "label": "mixed"}\n')
    with pytest.raises(InvalidInputError, match=r"new.jsonl line 2: the label 'mixed'"):
        import_file(db, "reviews", path)
    result = import_file(db, "reviews", path, allow_new_labels=True)
    assert result.dataset.labels == [*LABELS, "mixed"]
    assert result.dataset.name == "Reviews"
    chat = _write(tmp_path / "c.jsonl", json.dumps({"messages": CHATS[2]}) + "\n")
    with pytest.raises(InvalidInputError, match=r"c\.jsonl line 1: a labelled text needs one"):
        import_file(db, "Reviews", chat)
    with pytest.raises(InvalidInputError, match="not a chat file"):
        import_file(db, "New chats", path, kind="chat")
    with pytest.raises(InvalidInputError, match="cannot take chat"):
        import_file(db, "Reviews", chat, kind="chat")


BAD_FILES = [
    ("fields.csv", "text,label\nok,positive\nfine,negative\ntoo,many,fields\n", 4,
     "3 fields, but the header has 2"),
    ("quote.csv", 'text,label\nok,positive\n"never closed,negative\n', 3, ""),
    ("split.csv", "text,label,split\nok,positive,train\nbad,negative,dev\n", 3,
     "the split 'dev'"),
    ("syntax.jsonl", '{"text": "a", "label": "positive"}\n\n{"text": "b", "label"\n', 3,
     "not valid JSON"),
    ("object.jsonl", '{"text": "a", "label": "positive"}\n["b", "negative"]\n', 2,
     "not a JSON object"),
    ("type.jsonl", '{"text": "a", "label": "positive"}\n{"text": 5, "label": "negative"}\n', 2,
     "'text' is not text"),
    ("labeltype.jsonl", '{"text": "a", "label": ["positive"]}\n', 1, "not text"),
    ("role.jsonl", json.dumps({"messages": CHATS[0]}) + "\n"
     + '{"messages": [{"role": "tool", "content": "x"}]}\n', 2, "use system, user or assistant"),
    ("ends.jsonl", json.dumps({"messages": CHATS[0]}) + "\n\n"
     + json.dumps({"messages": CHATS[0][:1]}) + "\n", 3, "end with an assistant reply"),
    ("from.jsonl", '{"conversations": [{"from": "bot", "value": "x"}]}\n', 1, "turn 1"),
    ("mixed.jsonl", '{"instruction": "a", "input": "", "output": "b"}\n{"text": "c"}\n', 2,
     "a plain JSON record, but the file starts with Alpaca records"),
    ("array.json",
     '[\n {"instruction": "a", "output": "b"},\n {"instruction": "c"\n  "output": "d"}\n]',
     4, "not valid JSON"),
    ("trailing.json", '[{"instruction": "a", "output": "b"}]\n\n{"x": 1}\n', 3,
     "after the end of the array"),
    ("history.jsonl", '{"instruction": "a", "output": "b", "history": [["q"]]}\n', 1,
     "history turn 1"),
]


@pytest.mark.parametrize(("name", "content", "line", "needle"), BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_malformed_files_are_refused_with_the_line_and_change_nothing(
    db: sqlite_utils.Database, labelled: Dataset, chats: Dataset, tmp_path: Path,
    name: str, content: str, line: int, needle: str,
) -> None:
    path = _write(tmp_path / name, content)
    before = _dump(db)
    target = "Chats" if name.endswith(".json") or "role" in name or "ends" in name \
        or "from" in name or "history" in name or "mixed" in name else "Reviews"
    for dataset in (target, "Brand new"):
        with pytest.raises(InvalidInputError) as info:
            import_file(db, dataset, path)
        assert info.value.message.startswith(f"{name} line {line}: "), info.value.message
        assert needle in info.value.message
        assert _dump(db) == before


def test_invalid_utf8_names_the_line(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,label\nok,a\ncaf\xe9,b\n")
    with pytest.raises(InvalidInputError, match=r"latin1.csv line 3: not UTF-8"):
        import_file(db, "X", path)
    assert DatasetRepository(db).find("X") is None


def test_an_error_in_the_last_row_leaves_no_half_import(
    db: sqlite_utils.Database, repo: DatasetRepository, tmp_path: Path
) -> None:
    rows = "".join(json.dumps({"text": f"t{i}", "label": "a"}) + "\n" for i in range(500))
    path = _write(tmp_path / "big.jsonl", rows + '{"text": "last", "label": 1.5}\n')
    with pytest.raises(InvalidInputError, match=r"big\.jsonl line 501: the label"):
        import_file(db, "Big", path)
    assert repo.find("Big") is None and db["examples"].count == 0


def test_other_import_errors(db: sqlite_utils.Database, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is empty"):
        import_file(db, "X", _write(tmp_path / "e.csv", "\n\n"))
    with pytest.raises(InvalidInputError, match="no examples to import"):
        import_file(db, "X", _write(tmp_path / "h.csv", "text,label\n"))
    with pytest.raises(InvalidInputError, match="is empty"):
        import_file(db, "X", _write(tmp_path / "b.txt", "  \n\t\n"))
    with pytest.raises(InvalidInputError, match=r"no examples to import \(2 blank rows\)"):
        import_file(db, "X", _write(tmp_path / "b.csv", "text,label\n  ,a\n,b\n"))
    with pytest.raises(InvalidInputError, match="no 'body' column"):
        import_file(db, "X", _write(tmp_path / "c.csv", "text,label\na,b\n"),
                    text_column="body")
    with pytest.raises(InvalidInputError, match="same column"):
        import_file(db, "X", _write(tmp_path / "d.csv", "text,label\na,b\n"),
                    label_column="text")
    with pytest.raises(InvalidInputError, match="no label column"):
        import_file(db, "X", _write(tmp_path / "f.txt", "a\n"), label_column="label")
    with pytest.raises(InvalidInputError, match="say which column"):
        import_file(db, "X", _write(tmp_path / "g.jsonl", '{"n": 1}\n'))
    with pytest.raises(Exception, match="Cannot read"):
        import_file(db, "X", tmp_path / "missing.csv")
    assert DatasetRepository(db).find("X") is None


def test_data_card_is_exported_next_to_formats(
    db: sqlite_utils.Database, labelled: Dataset
) -> None:
    card = formats.data_card(db, "Reviews")
    assert card.startswith("# Reviews\n") and "## Licence" in card
