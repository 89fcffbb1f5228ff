"""A bare PySide6 main window that prints when it first paints and quits: the start-up baseline.

Run as a script (not imported by the benchmark) so its start-up cost is a fresh interpreter's,
like the app's; it writes its stamp as slmdesk's SLMDESK_BENCH_FIRST_PAINT hook does.
With ``--rss`` it prints its resident memory as JSON instead (bench/startup.py's baseline).
"""

import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow


class _FirstPaint(QObject):
    """Print a CLOCK_MONOTONIC stamp once the window's first paint pass has finished."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            obj.removeEventFilter(self)
            # A 0 ms timer runs after the whole paint pass (children included) returns.
            QTimer.singleShot(0, _report)
        return False


def _report() -> None:
    if "--rss" in sys.argv:
        QTimer.singleShot(500, _report_rss)  # settle, as the app's measurement does
        return
    stamp = f"first-paint {time.monotonic():.6f}\n"
    path = os.environ.get("SLMDESK_BENCH_FIRST_PAINT")
    if path:
        Path(path).write_text(stamp, encoding="utf-8")
    else:
        print(stamp, end="", flush=True)
    QApplication.quit()


def _report_rss() -> None:
    import json

    import psutil

    print(json.dumps({"rss": psutil.Process().memory_info().rss}), flush=True)
    QApplication.quit()


def main() -> int:
    app = QApplication(sys.argv)
    window = QMainWindow()
    window.setWindowTitle("bare")
    window.resize(1200, 760)
    window.setCentralWidget(QLabel("hello"))
    watcher = _FirstPaint()
    window.installEventFilter(watcher)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
