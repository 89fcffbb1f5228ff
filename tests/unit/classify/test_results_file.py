"""The resumable results file of `classify --output`: header, torn tails, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from slmdesk.classify.results_file import file_identity, open_results, run_header
from slmdesk.errors import InvalidInputError

SPEC = {"labels": ["a", "b"], "calibration": "contextual"}
MODEL = {"id": "m1", "bytes": 10, "sha256": None}


def _header(tmp_path: Path, texts: int = 4, spec: dict[str, Any] | None = None,
            model: dict[str, Any] | None = None, content: str = "one\ntwo\n") -> dict[str, Any]:
    source = tmp_path / "in.txt"
    source.write_text(content, encoding="utf-8")
    return run_header({**file_identity(source), "column": "text"}, spec or SPEC,
                      model or MODEL, texts, "contextual")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_two(out: Path, header: dict[str, Any]) -> None:
    """A new results file with texts 0 ("a") and 1 ("b")."""
    results = open_results(out, header, resume=False)
    results.write(0, {"label": "a"})
    results.write(1, {"label": "b"})
    results.close()


def test_a_new_file_starts_with_the_header_and_lines_carry_their_index(tmp_path: Path) -> None:
    out, header = tmp_path / "out.jsonl", _header(tmp_path)
    _write_two(out, header)
    assert _rows(out) == [header, {"index": 0, "label": "a"}, {"index": 1, "label": "b"}]
    assert header["input"]["bytes"] == len(b"one\ntwo\n") and len(header["fingerprint"]) == 64


def test_an_existing_file_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"already exists\. Add --resume"):
        open_results(out, _header(tmp_path), resume=False)
    assert out.read_text(encoding="utf-8") == "precious\n"


def test_resume_of_a_missing_or_empty_file_starts_it(tmp_path: Path) -> None:
    out, header = tmp_path / "out.jsonl", _header(tmp_path)
    open_results(out, header, resume=True).close()
    assert _rows(out) == [header]
    out.write_bytes(b"")
    results = open_results(out, header, resume=True)
    assert results.done == set()
    results.close()
    assert _rows(out) == [header]


def test_resume_drops_a_torn_last_line_and_keeps_the_rest(tmp_path: Path) -> None:
    out, header = tmp_path / "out.jsonl", _header(tmp_path)
    _write_two(out, header)
    with open(out, "ab") as f:
        f.write(b'{"index": 2, "label": "a", "te')  # killed mid-write
    resumed = open_results(out, header, resume=True)
    assert resumed.done == {0, 1}
    resumed.write(2, {"label": "b"})
    resumed.close()
    assert [r.get("index") for r in _rows(out)] == [None, 0, 1, 2]


def test_resume_stops_at_a_damaged_line_and_redoes_what_follows(tmp_path: Path) -> None:
    out, header = tmp_path / "out.jsonl", _header(tmp_path)
    lines = [json.dumps(header), '{"index": 0}', "\0\0\0\0", '{"index": 1}', '{"index": 1}']
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    resumed = open_results(out, header, resume=True)
    assert resumed.done == {0}
    resumed.close()
    assert [r.get("index") for r in _rows(out)] == [None, 0]


def test_duplicate_or_out_of_range_indices_end_the_valid_part(tmp_path: Path) -> None:
    out, header = tmp_path / "out.jsonl", _header(tmp_path, texts=2)
    lines = [json.dumps(header), '{"index": 1}', '{"index": 1}', '{"index": 0}']
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    resumed = open_results(out, header, resume=True)
    resumed.close()
    assert resumed.done == {1}
    out.write_text(json.dumps(header) + '\n{"index": 2}\n', encoding="utf-8")
    resumed = open_results(out, header, resume=True)
    resumed.close()
    assert resumed.done == set()


@pytest.mark.parametrize(("change", "words"), [
    ({"content": "one\nthree\n"}, "its input file differ"),
    ({"spec": {"labels": ["a", "c"], "calibration": "contextual"}},
     "its labels and classifier settings differ"),
    ({"model": {"id": "m2", "bytes": 10, "sha256": None}}, "its model differ"),
])
def test_resume_refuses_the_file_of_another_run_naming_what_differs(
        tmp_path: Path, change: dict[str, Any], words: str) -> None:
    out = tmp_path / "out.jsonl"
    open_results(out, _header(tmp_path), resume=False).close()
    before = out.read_bytes()
    with pytest.raises(InvalidInputError, match=words):
        open_results(out, _header(tmp_path, **change), resume=True)
    assert out.read_bytes() == before


def test_resume_refuses_a_file_that_is_not_a_results_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"text": "hello"}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not a results file"):
        open_results(out, _header(tmp_path), resume=True)
