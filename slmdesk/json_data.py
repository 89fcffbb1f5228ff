"""Reading JSON back: text parsed with the caller's own words for what fails, and the keys of
saved JSON that name a dataclass's fields."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


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
    of slmdesk may hold keys this one does not know, and those are left out."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}
