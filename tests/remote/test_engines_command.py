"""`slmdesk engines add|list|check|remove` and the engines table (migration m006)."""

from __future__ import annotations

import argparse
import json

import pytest

from slmdesk.cli import engines as command
from slmdesk.errors import InvalidInputError
from tests.remote.fake_engine import MODEL, FakeEngine


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    command.add_parsers(parser.add_subparsers(dest="command"))
    return command.run(parser.parse_args(["engines", *argv]))


def test_engines_table_columns() -> None:
    from slmdesk.startup import open_core

    db = open_core().db
    assert list(db["engines"].columns_dict) == [
        "id", "name", "base_url", "api_key", "capabilities_json", "checked_at",
        "created_at", "updated_at"]


def test_add_check_list_remove(fake: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("add", "box", fake.url + "/v1/", "--api-key", "k") == 0
    out = capsys.readouterr().out
    assert f"Saved engine box at {fake.url}\n" in out and "embeddings: no" in out
    assert fake.requests and all(r["model"] == MODEL for r in fake.requests)
    assert _run("list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "box" and listed[0]["api_key"] is True
    assert listed[0]["capabilities"]["models"] == [MODEL]
    with pytest.raises(InvalidInputError, match="already an engine named 'box'"):
        _run("add", "box", fake.url, "--no-check")
    assert _run("remove", "box") == 0
    assert _run("list", "--json") == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == []
