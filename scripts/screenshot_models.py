"""Take the README's screenshots of the Models tab from the real app under Xvfb.

    Xvfb :99 -screen 0 1280x800x24 &
    DISPLAY=:99 .venv/bin/python scripts/screenshot_models.py docs/

Runs the window on a temporary home, against the local test hub (tests/hubserver.py) so the
search results and the download are real transfers, and saves screenshot-models-*.png with
ImageMagick's `import -window root`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs").resolve()
    home = Path(tempfile.mkdtemp(prefix="slmdesk-shot-"))
    os.environ["SLMDESK_HOME"] = str(home)
    from tests.hubserver import default_hub

    hub = default_hub(home / "hub").start()
    os.environ["HF_ENDPOINT"] = hub.url
    os.environ["HF_HOME"] = str(home / "hf-home")
    hub.chunk_delay_s = 0.01

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from slmdesk.app import build_window

    app = QApplication(sys.argv)
    core, engine, win = build_window()
    win.resize(1280, 800)
    win.show()

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def wait(cond: object, seconds: float = 60) -> None:
        end = time.monotonic() + seconds
        while not cond() and time.monotonic() < end:  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.02)

    def shot(name: str) -> None:
        pump(0.5)
        subprocess.run(["import", "-window", "root", str(out / name)], check=True)
        print("wrote", out / name)

    wait(lambda: win.loaded is not None)
    lib = win.library_view
    win.tabs.setCurrentWidget(lib)
    lib.tabs.setCurrentIndex(1)  # catalog
    lib.catalog_view.sortByColumn(2, lib.catalog_view.horizontalHeader().sortIndicatorOrder())
    shot("screenshot-models-catalog.png")

    lib.tabs.setCurrentIndex(2)
    lib.search_box.setText("GGUF")
    lib.search_hub()
    wait(lambda: len(lib.repos.rows) > 0)
    for i, r in enumerate(lib.repos.rows):
        if r.repo_id.startswith("HuggingFaceTB/"):
            lib.select_row(lib.repos_view, lib.repos_proxy, i)
    wait(lambda: len(lib.files.rows) > 0)
    lib.select_row(lib.files_view, lib.files_proxy, 0)
    lib.download_selected_file()
    wait(lambda: any((d.fraction or 0) > 0.35 for d in lib.download_rows.rows), 120)
    shot("screenshot-models-downloads.png")
    lib.tabs.setCurrentIndex(0)
    lib.select_model_row(win.model.id)
    shot("screenshot-models-installed.png")
    QTimer.singleShot(0, win.close)
    win.close()
    engine.shutdown()
    core.db.close()
    hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
