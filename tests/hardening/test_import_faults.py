"""Huge, badly encoded or malformed import files: an error with its line, nothing added.

Unbalanced CSV quotes, a bad JSON line and Latin-1 bytes are covered by
tests/unit/datasets/test_formats.py; this adds the sizes and encodings it does not.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import sqlite_utils

from slmdesk.datasets.formats import MAX_FIELD, MAX_IMPORT_BYTES, import_file
from slmdesk.errors import InvalidInputError
from slmdesk.store.datasets import DatasetRepository
from slmdesk.store.db import open_database
from tests.hardening.helpers import one_line_error, run_cli

GOOD_ROWS = [{"text": f"good text {i}", "label": "a"} for i in range(36)]


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    db = open_database(tmp_path / "db.sqlite")
    import_file(db, "Existing", _jsonl(tmp_path / "seed.jsonl", GOOD_ROWS[:3]))
    return db


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _counts(db: sqlite_utils.Database) -> tuple[int, int]:
    return db["datasets"].count, db["examples"].count


def _refused(db: sqlite_utils.Database, path: Path, starts: str, needle: str) -> None:
    before = _counts(db)
    for name in ("Existing", "Brand new"):
        with pytest.raises(InvalidInputError) as info:
            import_file(db, name, path)
        assert info.value.message.startswith(starts), info.value.message
        assert needle in info.value.message, info.value.message
        assert _counts(db) == before
    assert DatasetRepository(db).find("Brand new") is None


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:  # sparse: the size is real, the disk blocks are not
        f.write(b"text,label\n")
        f.truncate(MAX_IMPORT_BYTES + 1)
    _refused(db, path, "huge.csv is ", "Split it into smaller files")


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_a_line_longer_than_the_limit_names_its_line(
    db: sqlite_utils.Database, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"longline.{suffix}"
    long_text = "x" * (MAX_FIELD + 10)
    with path.open("w", encoding="utf-8") as f:
        if suffix == "csv":
            f.write("text,label\nok,a\n" + long_text + ",a\nlast,a\n")
        else:
            f.write(json.dumps(GOOD_ROWS[0]) + "\n" + json.dumps(GOOD_ROWS[1]) + "\n")
            f.write(json.dumps({"text": long_text, "label": "a"}) + "\n")
    _refused(db, path, f"longline.{suffix} line 3: ", "longer than 64 MB")


def test_utf16_with_and_without_bom_and_binary_files(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    text = "text,label\n" + "".join(f"row {i},a\n" for i in range(5))
    bom = tmp_path / "bom16.csv"
    bom.write_bytes(text.encode("utf-16"))  # with a byte order mark
    _refused(db, bom, "bom16.csv line 1: ", "UTF-16")
    plain = tmp_path / "plain16.csv"
    plain.write_bytes(text.encode("utf-16-le"))  # no BOM: "valid" UTF-8 full of NULs
    _refused(db, plain, "plain16.csv line 1: ", "UTF-16")
    late = tmp_path / "late.jsonl"
    late.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in GOOD_ROWS[:6])
                     + b'{"text": "a\x00b", "label": "a"}\n')
    _refused(db, late, "late.jsonl line 7: ", "NUL byte")
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(5000))
    _refused(db, binary, "photo.jsonl line ", "UTF-8")


def test_bad_line_37_of_a_jsonl_file_from_the_command_line(
    tmp_path: Path, slmdesk_home: Path
) -> None:
    good = _jsonl(tmp_path / "good.jsonl", GOOD_ROWS[:2])
    assert run_cli(slmdesk_home, "data", "import", "Set", str(good)).returncode == 0
    bad = tmp_path / "bad.jsonl"
    lines = [json.dumps(r) for r in GOOD_ROWS] + ['{"text": "broken", "label": ']
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"text,label\n" + b"fine,a\n" * 10 + b"caf\xe9,a\n")
    quote = tmp_path / "quote.csv"
    quote.write_text("text,label\n" + "fine,a\n" * 4 + '"never closed,a\n' + "x,a\n" * 3)
    for path, needle in ((bad, "bad.jsonl line 37: not valid JSON"),
                         (latin, "latin.csv line 12: not UTF-8"),
                         (quote, "quote.csv line 6")):
        proc = run_cli(slmdesk_home, "data", "import", "Set", str(path))
        one_line_error(proc.returncode, proc.stdout, proc.stderr, needle)
    db = open_database(slmdesk_home / "data" / "slmdesk.db")
    assert _counts(db) == (1, 2)
    db.close()
