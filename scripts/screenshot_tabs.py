"""Render every tab of the real window, and the Train window, at several sizes, light and
dark, to check (and show) that the layouts hold: 800×600 and 1440×900, plus 800×600 at 200 %
scaling.

    .venv/bin/python scripts/screenshot_tabs.py docs/screenshots/          # all of them
    .venv/bin/python scripts/screenshot_tabs.py OUT --theme dark --sizes 800x600 --scale 1

Without a DISPLAY, each configuration runs in its own Xvfb (one process per theme and
scale: Qt reads QT_SCALE_FACTOR once). The window runs on a temporary home with the starter
model; the chat is stored text (no generation, so the pictures do not change with the CPU),
Classify labels eight reviews and Data sets pre-labels four, both with the real model; the
Server tab runs, with one chat request (eight tokens) in its log; the Train window shows the
result card of a real `slmdesk train --method lora` run that the window started (the zorp/blick
set of the tests, where zero-shot is near chance; minutes), or with --fake-train of the fake
command (tests/qt/train/fake_train.py: made-up events, in a second). Each picture is
`import -window root` (ImageMagick) of a screen exactly the window's size:
<tab>-<width>x<height>[-<scale>x]-<theme>.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshot_chat import REVIEWS, UNLABELLED  # noqa: E402

CHAT = [
    ("user", "Suggest a name for a small bakery that sells sourdough and cinnamon buns."),
    ("assistant", "How about **The Rising Crumb**? A few more ideas:\n\n"
                  "1. Sourdough & Swirl\n2. The Cinnamon Loaf\n3. Crust and Crumb Corner\n\n"
                  "Pick one that sounds like your neighbourhood."),
    ("user", "Write a short Python function that reverses a string, with a code block."),
    ("assistant", "Here is one way, using slicing:\n\n```python\ndef reverse(text: str) -> "
                  "str:\n    \"\"\"Return the text backwards.\"\"\"\n    return text[::-1]\n"
                  "```\n\n`reverse(\"bakery\")` gives `\"yrekab\"`."),
]
FAKE_TRAIN = ROOT / "tests" / "qt" / "train" / "fake_train.py"
TRAIN_SET = "zorp-blick"
TRAIN_SPLITS = {"train": 12, "validation": 5, "test": 14}  # as tests/cli/test_train_cli.py
ALL_CONFIGS = (("light", "800x600,1440x900", "1"), ("dark", "800x600,1440x900", "1"),
               ("light", "800x600", "2"))


def dark_palette() -> Any:
    """A dark desktop theme: light text on dark grey (as Fusion's dark schemes draw it)."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    role = QPalette.ColorRole
    for r, colour in ((role.Window, "#353535"), (role.WindowText, "#f0f0f0"),
                      (role.Base, "#2a2a2a"), (role.AlternateBase, "#3a3a3a"),
                      (role.Text, "#f0f0f0"), (role.Button, "#454545"),
                      (role.ButtonText, "#f0f0f0"), (role.Highlight, "#3b78c4"),
                      (role.HighlightedText, "#ffffff"), (role.ToolTipBase, "#2a2a2a"),
                      (role.ToolTipText, "#f0f0f0"), (role.PlaceholderText, "#a0a0a0"),
                      (role.Link, "#8ab4f8"), (role.Mid, "#5a5a5a"), (role.Dark, "#232323"),
                      (role.Light, "#505050")):
        palette.setColor(r, QColor(colour))
    # Greyed-out when disabled, as a real dark theme draws it (without this, a disabled
    # button or field looked enabled in the dark pictures).
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText, role.PlaceholderText):
        palette.setColor(disabled, r, QColor("#7a7a7a"))
    palette.setColor(disabled, role.Base, QColor("#303030"))
    palette.setColor(disabled, role.Button, QColor("#3c3c3c"))
    return palette


def fill_home(db: Any) -> None:
    """A stored chat and a labelled data set, before the window opens."""
    from slmdesk.store.chats import ChatRepository
    from slmdesk.store.datasets import DatasetRepository

    chats = ChatRepository(db)
    conv = chats.create_conversation(title="Bakery names")
    for role, text in CHAT:
        chats.append_message(conv.id, role, text)
    repo = DatasetRepository(db)
    ds = repo.create("Reviews", kind="labels", labels=["positive", "negative"])
    for text, label in REVIEWS:
        repo.add_labelled_text(ds, text, label, source="typed")
    for text in UNLABELLED:
        repo.add_labelled_text(ds, text, None, source="typed")
    from tests.training_data import make_dataset

    make_dataset(db, TRAIN_SET, splits=TRAIN_SPLITS)


class Shooter:
    """The window on a temporary home, and the pictures of its tabs."""

    def __init__(self, out: Path, theme: str, scale: str, *, fake_train: bool = False) -> None:
        from PySide6.QtWidgets import QApplication

        from slmdesk.app import build_window
        from slmdesk.startup import open_core

        self.out, self.theme, self.scale = out, theme, scale
        self.fake_train = fake_train
        os.environ["SLMDESK_HOME"] = tempfile.mkdtemp(prefix="slmdesk-shot-")
        core = open_core()
        fill_home(core.db)
        core.db.close()
        self.app = QApplication(sys.argv)
        self.app.setStyle("Fusion")
        if theme == "dark":
            self.app.setPalette(dark_palette())
        self.core, self.engine, self.win = build_window()
        self.win.move(0, 0)
        self.win.show()
        self.wait(lambda: self.win.loaded is not None)

    def wait(self, cond: Callable[[], object], seconds: float = 300) -> None:
        end = time.monotonic() + seconds
        while not cond() and time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.02)

    def shot(self, tab: str, size: str, window: Any = None) -> None:
        self.wait(lambda: False, 0.6)
        scale = f"-{self.scale}x" if self.scale != "1" else ""
        path = self.out / f"{tab}-{size}{scale}-{self.theme}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True)
        grown = (window or self.win).size().toTuple()
        print("wrote", path, "" if f"{grown[0]}x{grown[1]}" == size else f"(window {grown})")

    def prepare(self) -> None:
        """Open the stored chat, classify the reviews, pre-label the data set, train (the
        fake command)."""
        win = self.win
        [conv] = [c for c in win.chat.chats.list_conversations() if c.title == "Bakery names"]
        win.chat.open_conversation(conv.id)
        cv = win.classify_view
        [starter] = [a for a in cv.setup.starter_button.menu().actions()
                     if a.text() == "positive, negative"]
        starter.trigger()
        cv.text_input.texts.setPlainText("\n".join(text for text, _ in REVIEWS))
        finished: list[bool] = []
        cv.run_finished.connect(finished.append)
        cv.run_button.click()
        self.wait(lambda: bool(finished))
        dv = win.datasets_view
        dv.dataset_list.refresh_datasets(select="Reviews")
        done: list[str] = []
        dv.run_finished.connect(lambda kind, _cancelled: done.append(kind))
        dv.model_runs.prelabel_button.click()
        self.wait(lambda: bool(done))
        self.train()

    def serve_one_request(self) -> None:
        """Start the Server tab's server and send it one short chat request (only for the
        Server tab's picture: the others would say "Serving …" in their status line)."""
        server = self.win.server_view
        server.port_spin.setValue(0)  # any free port
        server.start_button.click()
        self.wait(lambda: server.control.running, 60)
        url = (server.control.base_url or "").replace("0.0.0.0", "127.0.0.1")
        body = json.dumps({"model": self.win.model.name, "max_tokens": 8, "temperature": 0,
                           "messages": [{"role": "user", "content": "Say hello."}]}).encode()
        request = urllib.request.Request(f"{url}/chat/completions", body,
                                         {"Content-Type": "application/json"})
        thread = threading.Thread(target=lambda: urllib.request.urlopen(request, timeout=120))
        thread.start()
        self.wait(lambda: not thread.is_alive() and bool(server.log_model.rows), 120)

    def train(self) -> None:
        """The Train window after a real run of `slmdesk train --method lora` (the child
        process the window starts) on the zorp/blick set of the tests, where zero-shot is near
        chance; the fake command (tests/qt/train/fake_train.py) with --fake-train."""
        from slmdesk.ui.train.command import train_argv
        from slmdesk.ui.train.window_link import open_train_dialog

        def fake(options: Any) -> list[str]:
            return [sys.executable, str(FAKE_TRAIN), "classifier",
                    *train_argv(options, program=[])]

        dialog = open_train_dialog(self.win, TRAIN_SET,
                                   command=fake if self.fake_train else None)
        self.train_dialog = dialog
        dialog.form.name_edit.setText("zorp-blick-lora")
        if not self.fake_train:
            dialog.form.method_box.setCurrentIndex(dialog.form.method_box.findData("lora"))
        dialog.start()
        self.wait(lambda: dialog.result_card.isVisible(), 1800)
        dialog.hide()

    def shoot_all(self, size: str) -> None:
        width, height = (int(n) for n in size.split("x"))
        win = self.win
        win.resize(width, height)
        win.tabs.setCurrentWidget(win.chat_page)
        self.shot("chat", size)
        win.settings_button.setChecked(True)
        self.shot("chat-settings", size)
        win.settings_button.setChecked(False)
        for name, tab in (("classify", win.classify_view), ("datasets", win.datasets_view),
                          ("models", win.library_view)):
            win.tabs.setCurrentWidget(tab)
            self.shot(name, size)
        win.tabs.setCurrentWidget(win.server_view)
        self.serve_one_request()
        self.shot("server", size)
        win.server_view.control.stop()
        self.wait(lambda: win.server_view.control.state == "stopped", 30)
        # The Train window over the whole screen, as big as the main window.
        dialog = self.train_dialog
        dialog.show()
        dialog.move(0, 0)
        dialog.resize(width, height)
        self.shot("train", size, dialog)
        dialog.hide()

    def close(self) -> None:
        self.win.server_view.shutdown()
        self.train_dialog.close()
        self.win.close()
        self.engine.shutdown()
        self.core.db.close()


def run_all(out: Path, extra: list[str]) -> int:
    """Each configuration in its own process and its own Xvfb of the window's size."""
    for theme, sizes, scale in ALL_CONFIGS:
        for size in sizes.split(","):
            width, height = (int(n) * int(scale) for n in size.split("x"))
            display = ":97"
            xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0",
                                     f"{width}x{height}x24", "-nolisten", "tcp"])
            try:
                time.sleep(1)
                env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb",
                           QT_SCALE_FACTOR=scale)
                subprocess.run([sys.executable, __file__, str(out), "--theme", theme,
                                "--sizes", size, "--scale", scale, *extra], env=env,
                               check=True)
            finally:
                xvfb.terminate()
                xvfb.wait()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/screenshots")
    parser.add_argument("--theme", choices=("light", "dark"))
    parser.add_argument("--sizes", default="800x600")
    parser.add_argument("--scale", default="1")
    parser.add_argument("--fake-train", action="store_true",
                        help="the Train window after the fake command (a second) instead of a "
                             "real LoRA run (minutes)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.theme is None:
        return run_all(out, ["--fake-train"] if args.fake_train else [])
    shooter = Shooter(out, args.theme, args.scale, fake_train=args.fake_train)
    shooter.prepare()
    for size in args.sizes.split(","):
        shooter.shoot_all(size)
    shooter.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
