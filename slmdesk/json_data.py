"""JSON in and out: dataclasses as JSON objects (``JsonFields``), text parsed with the caller's
own words for what fails, and the keys of saved JSON that name a dataclass's fields."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class JsonFields:
    """A dataclass that becomes a JSON object: its fields by name (``asdict``), a tuple as a
    list, as it reads back from JSON."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(cast("DataclassInstance", self))
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in data.items()}


def parse_json(text: str, *, invalid: Callable[[json.JSONDecodeError], Exception],
               too_deep: Callable[[], Exception] | None = None) -> Any:
    """``text`` parsed as JSON. Text that does not parse raises ``invalid(error)``; JSON nested
    deeper than Python's recursion limit raises ``too_deep()`` (without it, RecursionError)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid(exc) from exc
    except RecursionError as exc:
        if too_deep is None:
            raise
        raise too_deep() from exc


def known_fields(cls: type[DataclassInstance], data: Mapping[str, Any]) -> dict[str, Any]:
    """The items of ``data`` whose key is a field of ``cls``; JSON saved by another version
    of slmdesk may hold keys this one does not know, and those are left out.

    The value of a field whose default is a tuple becomes a tuple of strings (JSON has no
    tuples, and the frozen dataclasses keep their sequences as tuples); a null stays None."""
    names = {f.name for f in fields(cls)}
    tuples = {f.name for f in fields(cls) if isinstance(f.default, tuple)}
    known = {key: value for key, value in data.items() if key in names}
    for key in tuples & known.keys():
        if known[key] is not None:
            known[key] = tuple(str(item) for item in known[key])
    return known
