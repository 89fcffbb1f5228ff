"""Paint first: the start-up shell is on screen before the store and the heavy imports, and
the main window replaces it once built (slmdesk.app.run_gui)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_shell_paints_before_the_store_and_the_heavy_imports(tmp_path: Path) -> None:
    stamp = tmp_path / "first-paint"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SLMDESK_HOME": str(tmp_path / "h"),
           "SLMDESK_BENCH_FIRST_PAINT": str(stamp)}
    proc = subprocess.run([sys.executable, "-m", "slmdesk"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = stamp.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("first-paint ")
    # slmdesk.app.HEAVY_MODULES: none of them was needed for the first paint.
    assert lines[1] == "imported-before ", lines
    # Nothing was opened before that paint either: no database yet.
    assert not (tmp_path / "h" / "data" / "slmdesk.db").exists()


def test_the_main_window_follows_with_the_store_open(tmp_path: Path) -> None:
    # In a process of its own: run_gui ends with QApplication.quit(), after which no
    # nested event loop of this test process would run again.
    stamp = tmp_path / "window-paint"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SLMDESK_HOME": str(tmp_path / "h"),
           "SLMDESK_BENCH_WINDOW_PAINT": str(stamp)}
    env.pop("SLMDESK_BENCH_FIRST_PAINT", None)
    proc = subprocess.run([sys.executable, "-m", "slmdesk"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = stamp.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("first-paint ")
    # By the main window's paint the store is open and the window's modules are loaded.
    assert "slmdesk.store.db" in lines[1] and "slmdesk.ui.main_window" in lines[1], lines
    assert (tmp_path / "h" / "data" / "slmdesk.db").is_file()
