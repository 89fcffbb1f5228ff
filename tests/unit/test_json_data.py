"""JSON in and out: dataclasses as JSON objects, parse errors in the caller's words, and a
dataclass's known fields."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from slmdesk.errors import InvalidInputError
from slmdesk.json_data import JsonFields, known_fields, parse_json


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


@dataclass(frozen=True)
class _Listed(JsonFields):
    name: str
    tags: tuple[str, ...] = ()


def test_tuple_fields_go_out_as_lists_and_come_back_as_tuples() -> None:
    listed = _Listed("a", ("x", "y"))
    assert listed.to_json() == {"name": "a", "tags": ["x", "y"]}
    assert known_fields(_Listed, json.loads(json.dumps(listed.to_json()))) == {
        "name": "a", "tags": ("x", "y")}
    assert known_fields(_Listed, {"name": "a", "tags": [1, 2]})["tags"] == ("1", "2")
    # A null stays None, for the caller to drop (SamplingParams) or refuse.
    assert known_fields(_Listed, {"name": "a", "tags": None}) == {"name": "a", "tags": None}


def test_sampling_params_with_a_null_stop_keep_the_default() -> None:
    from slmdesk.engine.params import SamplingParams

    assert SamplingParams.from_json({"stop": None, "temperature": 0.2}) == SamplingParams(
        temperature=0.2)
    assert SamplingParams.from_json({"stop": ["\n\n"]}).stop == ("\n\n",)
