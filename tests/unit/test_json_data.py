"""Reading JSON back: parse errors in the caller's words, and a dataclass's known fields."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from slmdesk.errors import InvalidInputError
from slmdesk.json_data import known_fields, parse_json


def _invalid(exc: json.JSONDecodeError) -> InvalidInputError:
    return InvalidInputError(f"bad at line {exc.lineno}: {exc.msg}")


def test_parse_json_raises_the_callers_errors() -> None:
    assert parse_json('{"a": [1]}', invalid=_invalid) == {"a": [1]}
    with pytest.raises(InvalidInputError, match="bad at line 2: Expecting value"):
        parse_json('{"a":\n}', invalid=_invalid)
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidInputError, match="too deep"):
        parse_json(deep, invalid=_invalid, too_deep=lambda: InvalidInputError("too deep"))
    with pytest.raises(RecursionError):
        parse_json(deep, invalid=_invalid)


@dataclass
class _Saved:
    name: str
    size: int = 0


def test_known_fields_leaves_out_keys_of_other_versions() -> None:
    assert known_fields(_Saved, {"name": "a", "size": 2, "added_later": True}) == {
        "name": "a", "size": 2}
