"""Take the README's chat, settings, classify and data-set screenshots from the real app
under Xvfb.

    Xvfb :99 -screen 0 1280x800x24 &
    DISPLAY=:99 .venv/bin/python scripts/screenshot_chat.py docs/

Runs the window on a temporary home with the starter model, sends two real prompts, and
saves screenshot-chat.png, screenshot-settings.png (the conversation settings panel open),
screenshot-classify.png (eight reviews, batch calibration) and screenshot-datasets.png
(a labelled set with the model's suggestions for its unlabelled rows) with ImageMagick's
`import -window root`.
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

REVIEWS = [
    ("I loved this film, it was wonderful.", "positive"),
    ("Terrible service, I will never come back.", "negative"),
    ("What a fantastic day, everything went great!", "positive"),
    ("The food was cold and tasted awful.", "negative"),
    ("Absolutely brilliant, highly recommended.", "positive"),
    ("This is the worst purchase I have ever made.", "negative"),
    ("Great value and friendly staff.", "positive"),
    ("Broken on arrival and support ignored me.", "negative"),
]
UNLABELLED = ["A delightful surprise from start to finish.", "Boring, slow and far too long.",
              "I am very happy with the result.", "I hate it, a complete waste of money."]
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
    win.chat_page.settings_panel.max_tokens.setValue(200)
    win.chat_page.settings_panel.flush()
    for i, prompt in enumerate(PROMPTS):
        if i:
            win.chat.new_chat()
        win.chat_page.composer.setPlainText(prompt)
        win.chat.send_requested()
        wait(lambda: win.chat.gen_job is None and win.chat.writer is None)
    shot("screenshot-chat.png")
    win.settings_button.setChecked(True)
    shot("screenshot-settings.png")
    win.settings_button.setChecked(False)

    # Classify: the two-label starter, eight reviews, batch calibration.
    cv = win.classify_view
    win.tabs.setCurrentWidget(cv)
    [starter] = [a for a in cv.setup.starter_button.menu().actions()
                 if a.text() == "positive, negative"]
    starter.trigger()
    cv.setup.calibration.setCurrentIndex(cv.setup.calibration.findData("batch"))
    cv.text_input.texts.setPlainText("\n".join(text for text, _ in REVIEWS))
    finished: list[bool] = []
    cv.run_finished.connect(lambda cancelled: finished.append(cancelled))
    cv.run_button.click()
    wait(lambda: bool(finished))
    shot("screenshot-classify.png")

    # Data sets: labelled reviews plus unlabelled ones the model pre-labels.
    from slmdesk.store.datasets import DatasetRepository

    dv = win.datasets_view
    repo = DatasetRepository(core.db)
    ds = repo.create("Reviews", kind="labels", labels=["positive", "negative"])
    for text, label in REVIEWS:
        repo.add_labelled_text(ds, text, label, source="typed")
    for text in UNLABELLED:
        repo.add_labelled_text(ds, text, None, source="typed")
    win.tabs.setCurrentWidget(dv)
    dv.dataset_list.refresh_datasets(select="Reviews")
    done: list[str] = []
    dv.run_finished.connect(lambda kind, _cancelled: done.append(kind))
    dv.model_runs.prelabel_button.click()
    wait(lambda: bool(done))
    shot("screenshot-datasets.png")
    win.close()
    engine.shutdown()
    core.db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
