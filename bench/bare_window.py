"""A bare PySide6 main window that prints when it first paints and quits: the start-up baseline.

Run as a script (not imported by the benchmark) so its start-up cost is a fresh interpreter's,
like the app's. It reports the same way slmdesk's SLMDESK_BENCH_FIRST_PAINT hook does.
"""

import sys
import time

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
    print(f"first-paint {time.monotonic():.6f}", flush=True)
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
