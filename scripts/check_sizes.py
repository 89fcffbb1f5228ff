"""Checks that no class in slmdesk/ spans over 500 lines and no function over 80 lines.

Run from the repository root (``./dev lint`` does): prints every offender as
``path:line kind name (N lines)`` and exits 1 if there is one. Declarative widget layout (a
function that only builds and places widgets) may be longer; such functions are named in
``LAYOUT_FUNCTIONS`` below, each with its reason.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_CLASS_LINES = 500
MAX_FUNCTION_LINES = 80

# "relative/path.py:Qualified.name" -> why it may be longer than MAX_FUNCTION_LINES.
# Only functions that are declarative widget layout belong here.
LAYOUT_FUNCTIONS: dict[str, str] = {}


@dataclass(frozen=True)
class Offender:
    """One class or function that is longer than its limit."""

    path: str
    line: int
    kind: str
    name: str
    lines: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.kind} {self.name} ({self.lines} lines)"


Definition = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


def _span(node: Definition) -> int:
    """Lines from the first decorator (or the def/class line) to the last line."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return (node.end_lineno or node.lineno) - first + 1


def _walk(parent: ast.AST, prefix: str) -> Iterator[tuple[str, Definition]]:
    """Every class and function below ``parent``, with its dotted name; definitions nested in
    if/try/with blocks count too."""
    for node in ast.iter_child_nodes(parent):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from _walk(node, f"{name}.")
        else:
            yield from _walk(node, prefix)


def offenders_in_source(source: str, path: str) -> list[Offender]:
    """The classes and functions of one module's source that are over their limits."""
    found = []
    for name, node in _walk(ast.parse(source, filename=path), ""):
        lines = _span(node)
        if isinstance(node, ast.ClassDef):
            if lines > MAX_CLASS_LINES:
                found.append(Offender(path, node.lineno, "class", name, lines))
        elif lines > MAX_FUNCTION_LINES and f"{path}:{name}" not in LAYOUT_FUNCTIONS:
            found.append(Offender(path, node.lineno, "function", name, lines))
    return found


def offenders_in_tree(root: Path) -> list[Offender]:
    """Every offender in the Python files under ``root`` (paths relative to its parent)."""
    found = []
    for file in sorted(root.rglob("*.py")):
        relative = file.relative_to(root.parent).as_posix()
        found.extend(offenders_in_source(file.read_text(encoding="utf-8"), relative))
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path("slmdesk")
    found = offenders_in_tree(root)
    for offender in found:
        print(offender)
    if found:
        print(
            f"check_sizes: {len(found)} over the limits "
            f"(class {MAX_CLASS_LINES}, function {MAX_FUNCTION_LINES} lines)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
