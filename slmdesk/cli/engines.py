"""`slmdesk engines`: the remote OpenAI-compatible engines (slmdesk.remote) — list, add, remove,
check."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    from slmdesk.remote.command import add_parser, run

    add_parser(sub).set_defaults(func=run)
