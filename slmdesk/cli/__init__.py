"""The `slmdesk` command line: the same core as the GUI, no Qt import unless the GUI starts."""

# Bare `slmdesk` starts the app, whose window paints first (slmdesk.app.run_gui): this module
# imports only the standard library and foundations at the top; the command modules, the
# GUI and the self-test are imported inside main() and build_parser(), when they are wanted.

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence

from slmdesk import __version__
from slmdesk.errors import UserFacingError
from slmdesk.paths import HOME_ENV

# The command groups, in the order `slmdesk --help` lists them. Each is a module of this
# package with add_parsers(subparsers); every command it adds sets its handler with
# set_defaults(func=...), a function of the parsed arguments that returns the exit code.
# A new group is a new module and its name here (the frozen build collects every slmdesk
# module: packaging/slmdesk.spec).
COMMAND_GROUPS = (
    "models",
    "chat",
    "chats",
    "classify",
    "classifiers",
    "data",
    "train",
    "serve",
    "engines",
    "doctor",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="slmdesk",
        description="Small language models on the desktop, offline. "
        "With no command, starts the app.",
    )
    p.add_argument("--version", action="version", version=f"slmdesk {__version__}")
    p.add_argument("--home", metavar="DIR", help=f"root every slmdesk directory in DIR "
                   f"(same as ${HOME_ENV})")
    p.add_argument("--self-test", action="store_true", help="run a quick self-test and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_GROUPS:
        importlib.import_module(f"{__name__}.{name}").add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # The app alone has nothing to parse, and its window paints first: building the parser
    # would come before it (app.run_gui).
    gui_only = not (sys.argv[1:] if argv is None else argv)
    args = None if gui_only else build_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SLMDESK_LOG", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args is not None and args.home:
        # Every directory, in this process and any it starts, is rooted in --home.
        os.environ[HOME_ENV] = os.path.abspath(args.home)
    try:
        if args is not None and args.self_test:
            from slmdesk.selftest import run_self_test

            return run_self_test()
        if args is None or args.command is None:
            from slmdesk.app import run_gui

            return run_gui()
        exit_code: int = args.func(args)
        return exit_code
    except UserFacingError as exc:
        print(f"slmdesk: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except sqlite3.OperationalError as exc:
        # A write the store layer does not map itself; still an expected failure.
        from slmdesk.store.db import is_disk_full

        if not is_disk_full(exc):
            raise
        print("slmdesk: error: The disk is full: the last change could not be saved. Free "
              "some disk space and try again; everything saved before is intact.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("slmdesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
