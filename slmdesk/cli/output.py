"""What commands print and write: JSON, a result or a listing (JSON with --json, else lines),
files, and progress lines on stderr."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from slmdesk.errors import UserFacingError

T = TypeVar("T")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def print_result(json_mode: bool, data: Any, text: str) -> None:
    """``data`` as JSON with --json, else ``text``."""
    if json_mode:
        print_json(data)
    else:
        print(text)


def print_listing(items: Sequence[T], *, json_mode: bool, to_json: Callable[[T], Any],
                  line: Callable[[T], str], empty: str) -> None:
    """A JSON array of ``items``, or one line each (``empty`` when there are none)."""
    if json_mode:
        print_json([to_json(item) for item in items])
        return
    if not items:
        print(empty)
    for item in items:
        print(line(item))


def write_output(path: str, text: str, *, newline: str | None = "") -> None:
    """Write ``text`` to ``path`` (``newline`` as for ``open``); failing is a UserFacingError."""
    try:
        with open(path, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
    except OSError as exc:
        raise UserFacingError(f"Cannot write {path}: {exc.strerror or exc}") from exc


class Progress:
    """A compact progress line on stderr: redrawn in place on a terminal, else a few lines."""

    def __init__(self, total: int, verb: str = "classified") -> None:
        self.total = total
        self.verb = verb
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.step = max(1, total // 10)
        self.shown = 0
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if total != self.total:
            self.total, self.step = total, max(1, total // 10)
        self.done = done
        rate = done / max(time.monotonic() - self.started, 1e-9)
        line = f"{self.verb} {done}/{total} ({rate:.1f} texts/s)"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if done >= total else ""))
            sys.stderr.flush()
        elif done >= total or done - self.shown >= self.step:
            print(line, file=sys.stderr, flush=True)
            self.shown = done

    def stopped(self, done: int) -> None:
        """End the line and say where an interrupted run stopped."""
        if self.tty and 0 < self.done < self.total:
            sys.stderr.write("\n")
        print(f"slmdesk: interrupted after {done} of {self.total} texts", file=sys.stderr)
