"""slmdesk/ui/chat/model_defaults.py in the real window: a model's own defaults, saved from the
settings panel, start each new chat with that model; a saved chat keeps its own settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from slmdesk.engine.params import SamplingParams
from slmdesk.settings import DEFAULT_SYSTEM_PROMPT, model_defaults
from slmdesk.store.chats import ChatRepository
from slmdesk.store.models import ModelRepository
from tests.qt.chat.test_window import App

pytestmark = pytest.mark.model


@pytest.fixture
def app(qtbot: Any, model_path: Path) -> Any:
    a = App(qtbot)
    yield a
    if a.core.db.conn is not None:
        a.close()


def _second_model(win: Any, model_path: Path, tmp_path: Path) -> Any:
    """The same GGUF under another path and name: a second model in the picker."""
    target = tmp_path / "second.gguf"
    try:
        os.link(model_path, target)
    except OSError:
        shutil.copyfile(model_path, target)
    first = win.model
    second = ModelRepository(win.db).add(
        name="Second model", path=str(target), size_bytes=target.stat().st_size,
        architecture=first.architecture, quantization=first.quantization,
        parameter_count=first.parameter_count, context_length=first.context_length,
        licence=first.licence, source="import")
    win.refresh_models()
    return second


def _pick(qtbot: Any, win: Any, model_id: str) -> None:
    """Choose a model in the picker, as a click does, and wait for it to load."""
    index = win.model_picker.findData(model_id)
    win.model_picker.setCurrentIndex(index)
    win.model_picker.activated.emit(index)
    qtbot.waitUntil(lambda: win.loaded is not None and win.model.id == model_id,
                    timeout=60_000)


def test_saved_model_defaults_start_new_chats_and_reset_forgets_them(
        qtbot: Any, app: Any, model_path: Path, tmp_path: Path) -> None:
    win = app.win
    panel = win.chat_page.settings_panel
    first = win.model
    assert first.name in panel.model_defaults_title.text()
    assert not panel.reset_defaults_button.isEnabled()
    assert panel.context.value() == 2048  # the app's setting (App sets it)

    # Save this new chat's settings as the first model's defaults.
    panel.system_prompt.setPlainText("Answer in one short sentence.")
    panel.temperature.setValue(0.35)
    panel.max_tokens.setValue(6)
    panel.context.setValue(1024)
    panel.save_defaults_button.click()
    assert win.statusBar().currentMessage().startswith(f"Saved as the defaults of {first.name}")
    saved = model_defaults(win.db, first.id)
    assert saved.own and saved.system_prompt == "Answer in one short sentence."
    assert saved.sampling.temperature == 0.35 and saved.max_context == 1024
    assert panel.reset_defaults_button.isEnabled()

    # A saved chat keeps its own settings when another model is picked.
    chats = ChatRepository(win.db)
    kept = chats.create_conversation(title="Kept", system_prompt="Mine.",
                                     params=SamplingParams(temperature=1.1).to_json())
    win.chat_page.sidebar.refresh()
    win.chat.open_conversation(kept.id)
    second = _second_model(win, model_path, tmp_path)
    _pick(qtbot, win, second.id)
    assert panel.system_prompt_text() == "Mine." and panel.temperature.value() == 1.1
    assert "Second model" in panel.model_defaults_title.text()
    assert not panel.reset_defaults_button.isEnabled()  # it has none of its own

    # A new chat with the second model has the app's defaults; picking the first model
    # while that new chat is on screen brings in the first model's, and its context.
    win.chat.new_chat()
    assert panel.system_prompt_text() == DEFAULT_SYSTEM_PROMPT
    _pick(qtbot, win, first.id)
    assert panel.system_prompt_text() == "Answer in one short sentence."
    assert panel.temperature.value() == 0.35 and panel.max_tokens.value() == 6
    assert win.loaded.n_ctx == 1024  # the model's own context, not the app's 2048

    # Sending starts the chat with them.
    win.chat_page.composer.setPlainText("Hello")
    win.chat.send_requested()
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=60_000)
    started = chats.get_conversation(win.chat.conversation.id)
    assert started.system_prompt == "Answer in one short sentence."
    assert SamplingParams.from_json(started.params).temperature == 0.35
    assert chats.get_conversation(kept.id).system_prompt == "Mine."  # untouched

    # Reset: the model uses the app's defaults again, and a new chat shows them.
    win.chat.new_chat()
    panel.reset_defaults_button.click()
    assert not model_defaults(win.db, first.id).own
    assert panel.system_prompt_text() == DEFAULT_SYSTEM_PROMPT
    assert panel.context.value() == 2048 and not panel.reset_defaults_button.isEnabled()
    assert win.statusBar().currentMessage() == f"{first.name} uses the app's defaults again"
