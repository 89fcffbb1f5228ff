"""The command line's parser (slmdesk/cli/__init__.py): every command has a handler, and
building the parser loads none of the heavy modules the command groups use."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from slmdesk.app import HEAVY_MODULES
from slmdesk.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser below ``parser`` that takes no further command, with its words."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _commands(child, (*path, name))


def test_every_command_has_a_handler() -> None:
    commands = list(_commands(build_parser()))
    assert len(commands) > 30
    missing = [" ".join(words) for words, parser in commands
               if not callable(parser.get_default("func"))]
    assert not missing, f"commands without set_defaults(func=...): {missing}"


def test_parsing_a_command_imports_no_heavy_module() -> None:
    code = ("import sys; from slmdesk.cli import build_parser; "
            "build_parser().parse_args(['data', 'export', 'x', '--format', 'csv']); "
            "print(','.join(m for m in sys.modules if m == 'PySide6' or m.startswith(("
            + ", ".join(repr(m) for m in (*HEAVY_MODULES, "huggingface_hub")) + "))))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
