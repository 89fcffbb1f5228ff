"""Shared pieces of the hardening tests: a clean CLI environment, in-process CLI runs, windows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI_TIMEOUT = 180


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: no inherited home, offline, offscreen."""
    env = {k: v for k, v in os.environ.items() if k != "SLMDESK_HOME"}
    env.update(HF_HUB_OFFLINE="1", QT_QPA_PLATFORM="offscreen")
    return env


def cli_command(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "slmdesk", "--home", str(home), *args]


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(home, *args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        encoding="utf-8", env=cli_env(), timeout=CLI_TIMEOUT,
    )


def one_line_error(returncode: int, stdout: str, stderr: str, *needles: str) -> str:
    """A handled failure: non-zero exit, one `slmdesk: error:` line, no traceback."""
    assert returncode != 0, stdout
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("slmdesk: error: "), line
    for needle in needles:
        assert needle in line, line
    return line


def main_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the `slmdesk` entry point in this process (same code as the subprocess)."""
    from slmdesk.cli import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def fast_settings(home: Path | None = None) -> None:
    """One thread and a small context: steadier on CI's shared cores."""
    from slmdesk.paths import get_paths
    from slmdesk.settings import load_settings, save_settings
    from slmdesk.store.db import open_database

    db = open_database(get_paths(str(home) if home else None).ensure().database)
    s = load_settings(db)
    s.n_threads = 1
    s.max_context = 1024
    save_settings(db, s)
    db.close()


class Window:
    """An offscreen main window on the test's home, opened and closed the way run_gui does."""

    def __init__(self, qtbot: Any, *, wait_loaded: bool = True) -> None:
        from slmdesk.app import build_window

        fast_settings()
        self.core, self.engine, self.win = build_window()
        qtbot.addWidget(self.win)
        self.win.show()
        if wait_loaded:
            qtbot.waitUntil(lambda: self.win.loaded is not None, timeout=120_000)

    def close(self) -> None:
        from PySide6.QtWidgets import QApplication

        self.win.close()
        self.engine.shutdown()
        for _ in range(3):
            QApplication.processEvents()
        self.win.finish_pending_reply()
        self.core.db.close()


def send(qtbot: Any, win: Any, text: str) -> None:
    """Type ``text`` into the composer, send it, wait for the reply to end."""
    from PySide6.QtCore import Qt

    win.chat_page.composer.setPlainText(text)
    qtbot.keyClick(win.chat_page.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=120_000)
