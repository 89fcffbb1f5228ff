"""What several commands share: their parsers, opening the core and its repositories, option
checks, questions and Ctrl-C handling (printing and writing: cli/output.py; loading a model:
cli/loading.py)."""

# The store is imported inside the functions that need it: building the parser imports this
# module, and `slmdesk --version` or a mistyped option should not pay for sqlite-utils.

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from slmdesk.errors import InvalidInputError

if TYPE_CHECKING:
    import sqlite_utils

    from slmdesk.startup import Core

T = TypeVar("T")
R = TypeVar("R")

THREADS_HELP = "CPU threads (default: physical cores)"


def add_command(
    sub: Any, name: str, func: Callable[[argparse.Namespace], int], help: str,
    *positionals: str, json_output: bool = False, description: str | None = None,
) -> argparse.ArgumentParser:
    """The subcommand ``name`` of ``sub`` (a subparsers object), run by ``func``.

    ``positionals`` are its positional arguments in order; one written in capitals is shown
    so and stored in lower case ("NEW_NAME" is ``args.new_name``). ``json_output`` adds
    --json, for commands that print data; ``description`` is the longer text of its --help.
    Returns the parser for further options.
    """
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    for positional in positionals:
        if positional.isupper():
            parser.add_argument(positional.lower(), metavar=positional)
        else:
            parser.add_argument(positional)
    if json_output:
        parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=func)
    return parser


def add_group(sub: Any, name: str, help: str) -> Any:
    """The command group ``name`` of ``sub``: the subparsers of its actions (one is required;
    the chosen one is ``args.<name>_command``)."""
    group: argparse.ArgumentParser = sub.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def open_core(*, register_starter: bool = True) -> Core:
    """The database and paths; ``register_starter=False`` for commands that need no model."""
    from slmdesk.startup import open_core as open_startup_core

    return open_startup_core(register_starter=register_starter)


def open_repository(repository: Callable[[sqlite_utils.Database], R], *,
                    register_starter: bool = False) -> tuple[Core, R]:
    """The core and one repository over its database (by default without the starter model:
    commands on stored conversations, classifiers and data sets need no model)."""
    core = open_core(register_starter=register_starter)
    return core, repository(core.db)


def open_item(repository: Callable[[sqlite_utils.Database], R], find: Callable[[R, str], T],
              key: str) -> tuple[Core, R, T]:
    """``open_repository`` and the item ``find`` gives for ``key`` (a missing one raises the
    repository's own "No … named" error)."""
    core, repo = open_repository(repository)
    return core, repo, find(repo, key)


def check_at_least_one(option: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise InvalidInputError(f"--{option} must be at least 1.")


def split_labels(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise InvalidInputError("--labels needs at least one label name.")
    return names


def confirm(question: str) -> bool:
    """Ask on a terminal; anything but yes (or no terminal) is no."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


@contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """While a reply streams, Ctrl-C stops the reply instead of the program."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        cancel.set()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
