"""Tests of scripts/check_sizes.py: the tree keeps within the class and function size limits."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_sizes.py"


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_sizes", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_sizes"] = module
    spec.loader.exec_module(module)
    return module


check_sizes = _load_checker()


def test_the_tree_has_no_oversized_class_or_function() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_an_oversized_function_and_class_fail(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    methods = "\n".join(f"    def m{i}(self) -> int:\n        return {i}\n" for i in range(170))
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "big.py").write_text(
        f"def long_function() -> None:\n{body}\n\n\nclass Big:\n{methods}\n", encoding="utf-8"
    )
    (package / "small.py").write_text("def short() -> int:\n    return 1\n", encoding="utf-8")

    found = check_sizes.offenders_in_tree(package)

    assert [(o.path, o.kind, o.name) for o in found] == [
        ("pkg/big.py", "function", "long_function"),
        ("pkg/big.py", "class", "Big"),
    ]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(package)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "pkg/big.py:1 function long_function (82 lines)" in result.stdout


def test_a_function_of_exactly_the_limit_passes() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(79))
    source = f"def at_limit() -> None:\n{body}\n"
    assert check_sizes.offenders_in_source(source, "pkg/m.py") == []


def test_the_allow_list_names_only_functions_with_a_reason() -> None:
    for name, reason in check_sizes.LAYOUT_FUNCTIONS.items():
        assert ":" in name and name.split(":")[0].startswith("slmdesk/"), name
        assert reason.strip(), name
