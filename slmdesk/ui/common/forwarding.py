"""forward_to: a tab's method that calls the same method of one of its parts, with the
part's signature and docstring (so the tab's API is one line a method)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def forward_to(part: str, method: Callable[Concatenate[Any, P], R]) -> Callable[
        Concatenate[Any, P], R]:
    """A method that calls ``method`` (by name, so patches and overrides are seen) on the
    owner's attribute ``part``."""
    name = method.__name__

    def forwarded(owner: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = getattr(getattr(owner, part), name)(*args, **kwargs)
        return result

    forwarded.__name__ = forwarded.__qualname__ = name
    forwarded.__doc__ = method.__doc__
    return forwarded
