"""`slmdesk serve`: the OpenAI-compatible server (slmdesk.server), started from the terminal."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    from slmdesk.server.command import add_parser, run

    add_parser(sub).set_defaults(func=run)
