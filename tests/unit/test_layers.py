"""`./dev lint`'s import-layer check (import-linter, [tool.importlinter] in pyproject.toml)
passes on the tree and fails on an upward import or on Qt below the faces."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists() and not os.environ.get("CI"),
    reason="import-linter is not installed (./dev setup installs it)",
)


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy's slmdesk, not the editable install of the checkout.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300,
    )


def _copy_of_the_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "slmdesk", tree / "slmdesk",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _add_line(path: Path, line: str) -> None:
    text = path.read_text(encoding="utf-8")
    anchor = "from __future__ import annotations\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + line + "\n", 1), encoding="utf-8")


def test_the_tree_keeps_its_layers(tmp_path: Path) -> None:
    proc = _lint(_copy_of_the_tree(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken." in proc.stdout


def test_an_upward_import_fails_the_check(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    # The engine reaching up into the store.
    _add_line(tree / "slmdesk" / "engine" / "gguf.py", "import slmdesk.store.db  # noqa")
    proc = _lint(tree)
    assert proc.returncode != 0
    assert "slmdesk.engine.gguf -> slmdesk.store.db" in proc.stdout, proc.stdout


def test_qt_below_the_faces_fails_the_check(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    _add_line(tree / "slmdesk" / "classify" / "spec.py", "import PySide6.QtCore  # noqa")
    proc = _lint(tree)
    assert proc.returncode != 0
    assert "Qt only in the faces BROKEN" in proc.stdout, proc.stdout
