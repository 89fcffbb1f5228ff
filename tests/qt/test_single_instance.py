"""slmdesk/ui/single_instance.py: one app per data folder; a second copy brings the first
forward and exits 0 with a message (issue 16, item 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from slmdesk.ui.single_instance import SingleInstance

ROOT = Path(__file__).resolve().parents[2]


def test_the_second_holder_is_refused_and_asks_the_first_to_raise(
    qtbot: Any, tmp_path: Path
) -> None:
    first = SingleInstance(tmp_path / "data")
    assert first.acquired
    second = SingleInstance(tmp_path / "data")
    assert not second.acquired
    with qtbot.waitSignal(first.raise_requested, timeout=5000):
        assert second.ask_first_to_raise()
    other_folder = SingleInstance(tmp_path / "other")
    assert other_folder.acquired  # another data folder is another app
    first.release()
    third = SingleInstance(tmp_path / "data")
    assert third.acquired  # free again once the first let go
    for held in (other_folder, third, second):
        held.release()


def test_a_second_app_on_the_same_folder_exits_0_and_raises_the_first(
    qtbot: Any, tmp_path: Path
) -> None:
    home = tmp_path / "h"
    first = SingleInstance(home / "data")  # this test plays the running app
    assert first.acquired
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SLMDESK_HOME": str(home)}
    with qtbot.waitSignal(first.raise_requested, timeout=60_000):
        proc = subprocess.Popen([sys.executable, "-m", "slmdesk"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "already running" in out and "brought forward" in out
    assert not (home / "data" / "slmdesk.db").exists()  # it opened nothing
    first.release()
