"""Take the README's chat screenshots from the real app under Xvfb.

    Xvfb :99 -screen 0 1280x800x24 &
    DISPLAY=:99 .venv/bin/python scripts/screenshot_chat.py docs/

Runs the window on a temporary home with the starter model, sends two real prompts, and
saves screenshot-chat.png and screenshot-settings.png (the conversation settings panel
open) with ImageMagick's `import -window root`.
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

PROMPTS = ("Suggest a name for a small bakery.",
           "Write a short Python function that reverses a string, with a code block.")


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs").resolve()
    os.environ["SLMDESK_HOME"] = tempfile.mkdtemp(prefix="slmdesk-shot-")
    from PySide6.QtWidgets import QApplication

    from slmdesk.app import build_window

    app = QApplication(sys.argv)
    core, engine, win = build_window()
    win.resize(1280, 800)
    win.show()

    def wait(cond: object, seconds: float = 300) -> None:
        end = time.monotonic() + seconds
        while not cond() and time.monotonic() < end:  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.02)

    def shot(name: str) -> None:
        wait(lambda: False, 0.5)
        subprocess.run(["import", "-window", "root", str(out / name)], check=True)
        print("wrote", out / name)

    wait(lambda: win.loaded is not None)
    win.settings_panel.max_tokens.setValue(200)
    win.settings_panel.flush()
    for i, prompt in enumerate(PROMPTS):
        if i:
            win.new_chat()
        win.composer.setPlainText(prompt)
        win.send_requested()
        wait(lambda: win.gen_job is None and win.writer is None)
    shot("screenshot-chat.png")
    win.settings_button.setChecked(True)
    shot("screenshot-settings.png")
    win.close()
    engine.shutdown()
    core.db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
