"""How late the GUI event loop runs while a reply streams into the real window (offscreen)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any


def _probe(app: Any, until: Any, interval_ms: int = 5) -> list[float]:
    """Lateness (ms) of a repeating timer while ``until()`` is false."""
    from PySide6.QtCore import QTimer

    late: list[float] = []
    expected = [time.perf_counter() + interval_ms / 1000]

    def tick() -> None:
        now = time.perf_counter()
        late.append(max(0.0, (now - expected[0]) * 1000))
        expected[0] = now + interval_ms / 1000

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    timer.start()
    while not until():
        app.processEvents()
        time.sleep(0.0005)
    timer.stop()
    return late


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def measure(threads: int = 1, tokens: int = 256) -> dict[str, float]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="slmdesk-bench-") as home:
        os.environ["SLMDESK_HOME"] = home
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance() or QApplication([])
        from slmdesk.app import build_window
        from slmdesk.core import open_core
        from slmdesk.settings import load_settings, save_settings

        core0 = open_core(home)
        s = load_settings(core0.db)
        s.n_threads = threads
        save_settings(core0.db, s)
        core0.db.close()
        core, engine, win = build_window(home)
        win.show()
        deadline = time.perf_counter() + 60
        while win.loaded is None and time.perf_counter() < deadline:
            app.processEvents()
        idle_end = time.perf_counter() + 2.0
        idle = _probe(app, lambda: time.perf_counter() > idle_end)
        win.settings_panel.max_tokens.setValue(tokens)
        win.settings_panel.temperature.setValue(0.8)
        win.settings_panel.seed.setValue(11)
        win.settings_panel.flush()
        win.composer.setPlainText(
            "Write a long Markdown guide to baking bread, with headings, lists, a table and "
            "a code block."
        )
        win.send_requested()
        streaming = _probe(app, lambda: win.gen_job is None)
        from slmdesk.store.repositories import ChatRepository

        reply = ChatRepository(core.db).path(win.conversation.id)[-1]
        win.close()
        engine.shutdown()
        core.db.close()
    return {
        "ui_stall_max_ms": max(streaming),
        "ui_stall_p99_ms": p99(streaming),
        "ui_stall_idle_p99_ms": p99(idle),
        "ui_stall_idle_max_ms": max(idle),
        "ui_stall_reply_tokens": float(reply.completion_tokens or 0),
        "ui_stall_reply_chars": float(len(reply.content)),
    }
