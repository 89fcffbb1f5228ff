"""`slmdesk serve`'s arguments (cli/serve.py; the refusals need no model)."""

from __future__ import annotations

import argparse

import pytest

from slmdesk.cli.serve import add_parsers, run
from slmdesk.errors import InvalidInputError


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="slmdesk")
    add_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_defaults_bind_loopback_without_token() -> None:
    args = _parse()
    assert (args.host, args.port, args.token, args.cors_origin) == ("127.0.0.1", 8080, None, [])
    args = _parse("-m", "smol", "--cors-origin", "http://a:1", "--cors-origin", "http://b:2")
    assert args.model == "smol" and args.cors_origin == ["http://a:1", "http://b:2"]
    assert args.parallel == 4 and _parse("--parallel", "1").parallel == 1


def test_keep_chats_is_off_unless_asked_for() -> None:
    assert _parse().keep_chats is False
    assert _parse("--keep-chats").keep_chats is True


def test_another_host_without_token_is_refused_before_loading() -> None:
    with pytest.raises(InvalidInputError, match="--token"):
        run(_parse("--host", "0.0.0.0"))


def test_bad_numbers_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="--threads"):
        run(_parse("--threads", "0"))
    with pytest.raises(InvalidInputError, match="--parallel"):
        run(_parse("--parallel", "0"))
