"""Start-up and shutdown order of the GUI: QApplication, core, engine thread, window."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from slmdesk import APP_NAME, __version__

log = logging.getLogger(__name__)

# For the start-up benchmark (bench/startup.py): when set to a file path, the GUI writes
# "first-paint <time.monotonic()>" there once the main window has painted, then quits.
# A file, not stdout: llama-cpp-python points fds 1 and 2 at /dev/null while a model loads
# (verbose=False), and the engine thread is loading the model when the window first paints.
FIRST_PAINT_ENV = "SLMDESK_BENCH_FIRST_PAINT"
# The same for the main window itself (built after the shell has painted): its first paint.
WINDOW_PAINT_ENV = "SLMDESK_BENCH_WINDOW_PAINT"
# What the first paint must not wait for (the stamp file lists those already imported).
HEAVY_MODULES = ("sqlite_utils", "numpy", "pygments", "llama_cpp", "slmdesk.store.db",
                 "slmdesk.ui.main_window")


def _expected_text(exc: BaseException) -> str | None:
    """The message for an expected failure that escaped a slot, or None for a bug."""
    from slmdesk.errors import UserFacingError
    from slmdesk.store.db import is_disk_full

    if isinstance(exc, UserFacingError):
        return exc.message
    if is_disk_full(exc):
        return ("The disk is full: the last change could not be saved. Free some disk space "
                "and try again; everything saved before is intact.")
    return None


def report_exception(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """What the GUI does with an exception that escaped a slot.

    An expected failure (a full disk, any UserFacingError) goes to the main window's banner
    like every other message; anything else is a bug: logged with its traceback and shown
    in a dialog with the details. The app keeps running either way.
    """
    from PySide6.QtWidgets import QApplication, QMessageBox

    expected = _expected_text(exc)
    if expected is not None:
        log.warning("%s", expected)
        if QApplication.instance() is not None:
            for widget in QApplication.topLevelWidgets():
                if hasattr(widget, "show_error") and widget.isVisible():
                    widget.show_error(expected)
                    return
    details = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("unexpected error:\n%s", details)
    if QApplication.instance() is None:
        return
    box = QMessageBox(QMessageBox.Icon.Critical, "slmdesk: unexpected error",
                      f"Something went wrong: {expected or exc}\n\nThe app keeps running.")
    box.setDetailedText(details)
    box.exec()


def _install_excepthook() -> None:
    """A bug in a slot is logged and shown; the app keeps running."""

    def hook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        report_exception(exc_type, exc, tb)

    sys.excepthook = hook


def build_window(  # type: ignore[no-untyped-def]
    home: str | None = None, *, after_first_paint: bool = False
):
    """Open the core and build the main window with a running engine thread.

    ``after_first_paint`` (the app's own start) leaves the start-up notices and the
    automatic model load until the window has painted once, so it appears at once.
    """
    from slmdesk.catalog.registry import resolve_model
    from slmdesk.startup import open_core
    from slmdesk.ui.engine_thread import EngineClient
    from slmdesk.ui.main_window import MainWindow

    core = open_core(home)
    engine = EngineClient()
    window = MainWindow(core.db, engine)

    def start() -> None:
        from slmdesk.engine.backend import backend_info

        notices = []
        if backend_info().fallback_reason:
            notices.append(str(backend_info().fallback_reason))
        if core.interrupted_replies:
            notices.append(
                f"{core.interrupted_replies} reply/replies were interrupted when slmdesk "
                "last stopped; their text was kept and marked as interrupted."
            )
        if notices:
            window.show_error("\n".join(notices))
        try:
            model = resolve_model(core.db)
        except Exception as exc:  # noqa: BLE001 - no model is a normal first-run state
            window.show_error(str(exc))
        else:
            # automatic: a model whose last load took the app down is not loaded again.
            window.select_model(model, automatic=True)

    if after_first_paint:
        _run_after_first_paint(window, start)
    else:
        start()
    return core, engine, window


def _run_after_first_paint(
    window: Any, fn: Callable[[], None], *, at_latest_ms: int | None = 1000
) -> None:
    """Call ``fn`` once, from the event loop, after the window's first paint pass (or after
    ``at_latest_ms`` should the window never paint; None waits for the paint)."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            fn()

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                obj.removeEventFilter(self)
                # A 0 ms timer runs once the whole paint pass (children too) has returned.
                QTimer.singleShot(0, run)
            return False

    window.installEventFilter(FirstPaint(window))  # parented: lives as long as the window
    if at_latest_ms is not None:
        QTimer.singleShot(at_latest_ms, run)


def _quit_after_first_paint(window: object, path: str) -> None:
    """Write a CLOCK_MONOTONIC stamp to ``path`` after the window's first paint pass; quit."""
    from PySide6.QtWidgets import QApplication

    def report() -> None:
        painted = time.monotonic()
        # Which of the heavy parts were already imported when the window first painted.
        heavy = [m for m in HEAVY_MODULES if m in sys.modules]
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"first-paint {painted:.6f}\nimported-before {','.join(heavy)}\n")
        QApplication.quit()

    _run_after_first_paint(window, report, at_latest_ms=None)


def _icon_path() -> Path | None:
    """The app icon: inside the frozen bundle (share/icons) or the checkout (resources/)."""
    bundle = getattr(sys, "_MEIPASS", None)
    candidates = [Path(bundle) / "share" / "icons" / "slmdesk.png"] if bundle else []
    candidates.append(Path(__file__).resolve().parent.parent / "resources" / "icons"
                      / "slmdesk.png")
    return next((p for p in candidates if p.is_file()), None)


def _shell_window() -> Any:
    """What paints first: an empty window in the main window's size, with the app's name.

    It needs only QtWidgets, so it is on screen before the store opens and before the heavy
    imports (sqlite-utils pulls numpy, the tabs, Pygments); the main window replaces it as
    soon as it is built.
    """
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel, QMainWindow

    shell = QMainWindow()
    shell.setObjectName("startup_shell")
    shell.setWindowTitle("slmdesk")
    shell.resize(1200, 760)  # MainWindow's default size
    label = QLabel("Opening slmdesk…", shell)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    shell.setCentralWidget(label)
    return shell


def _single_instance() -> Any:
    """This copy's hold on its data folder, or None when another copy holds it (that one
    was asked to bring its window forward, and the person is told so)."""
    from slmdesk.paths import get_paths
    from slmdesk.ui.single_instance import SingleInstance

    data_dir = get_paths().data_dir
    instance = SingleInstance(data_dir)
    if instance.acquired:
        return instance
    heard = instance.ask_first_to_raise()
    print(f"slmdesk is already running on {data_dir}"
          + ("; its window was brought forward." if heard else
             " (it did not answer; close it first)."))
    return None


def run_gui() -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName(APP_NAME)
    icon = _icon_path()
    if icon is not None:
        from PySide6.QtGui import QIcon

        QApplication.setWindowIcon(QIcon(str(icon)))
    app.setApplicationVersion(__version__)
    app.setOrganizationName(APP_NAME)
    _install_excepthook()
    instance = _single_instance()
    if instance is None:
        return 0  # another copy runs on this data folder; its window was brought forward
    # Paint first: the shell is on screen while the store opens and the window is built.
    shell = _shell_window()
    started: dict[str, Any] = {}

    def bring_forward() -> None:
        window = started.get("window", shell)
        window.showNormal() if window.isMinimized() else window.show()
        window.raise_()
        window.activateWindow()

    instance.raise_requested.connect(bring_forward)

    def build() -> None:
        core, engine, window = build_window(after_first_paint=True)
        started.update(core=core, engine=engine, window=window)
        if shell.isVisible() and not window.restore_ui_state_applied:
            window.setGeometry(shell.geometry())  # where the person saw it appear
        if os.environ.get(WINDOW_PAINT_ENV):
            _quit_after_first_paint(window, os.environ[WINDOW_PAINT_ENV])
        window.show()
        shell.close()

    shell.show()
    if os.environ.get(FIRST_PAINT_ENV):
        # The start-up benchmark: stamp the shell's first paint and quit, building nothing.
        _quit_after_first_paint(shell, os.environ[FIRST_PAINT_ENV])
    else:
        _run_after_first_paint(shell, build)
    code = app.exec()
    if not started:  # quit before the window was built (the start-up benchmark does)
        instance.release()
        return int(code)
    core, engine, window = started["core"], started["engine"], started["window"]
    # Shutdown order: cancel jobs, stop the engine thread, then free the model.
    engine.shutdown()
    # The cancelled reply's last signals cross two queued hops (worker → client → window).
    for _ in range(3):
        app.processEvents()
    window.finish_pending_reply()
    core.db.close()
    instance.release()
    return int(code)
