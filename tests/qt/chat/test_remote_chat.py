"""The window chats with a model on a remote engine, chosen in the model picker: the fake
engine for the faults (killed mid-stream, Stop), the real peer `slmdesk serve` for a reply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from slmdesk.server.runner import LocalServer
from slmdesk.store.chats import ChatRepository, Message
from slmdesk.store.engines import EngineRepository
from slmdesk.ui.engine_thread import ChatJob
from tests.engine_jobs import each_job
from tests.hardening import helpers
from tests.remote import conftest as remote_fixtures
from tests.remote.fake_engine import MODEL, FakeEngine
from tests.server.conftest import TOKEN, _served

# The fake engine's fixtures, as tests/remote has them.
fake_engine = remote_fixtures.fake_engine
fake = remote_fixtures.fake


class Window(helpers.Window):
    """A window on a home with no local model and one saved, checked remote engine."""

    def __init__(self, qtbot: Any, monkeypatch: pytest.MonkeyPatch, url: str, models: list[str],
                 *, api_key: str | None = None, features: dict[str, bool] | None = None
                 ) -> None:
        from slmdesk.startup import open_core

        monkeypatch.setenv("SLMDESK_STARTER_MODEL", "/nonexistent/no-starter.gguf")
        db = open_core().db
        repo = EngineRepository(db)
        repo.add("box", url, api_key)
        repo.record_check("box", {"kind": "openai-compatible", "models": models,
                                  "model": models[0], "n_ctx": 2048,
                                  "features": features or {},
                                  "reasons": {}})
        db.close()
        super().__init__(qtbot, wait_loaded=False)

    def pick(self, label: str) -> None:
        picker = self.win.model_picker
        index = picker.findText(label)
        assert index >= 0, [picker.itemText(i) for i in range(picker.count())]
        picker.setCurrentIndex(index)
        picker.activated.emit(index)

    def send(self, qtbot: Any, text: str) -> None:
        helpers.send(qtbot, self.win, text)

    def reply(self) -> Message:
        chats = ChatRepository(self.win.db)
        [conversation] = chats.list_conversations()
        return chats.path(conversation.id)[-1]


@pytest.fixture
def window(qtbot: Any, monkeypatch: pytest.MonkeyPatch, fake: FakeEngine) -> Iterator[Window]:
    w = Window(qtbot, monkeypatch, fake.url, [MODEL, "other-model"])
    yield w
    w.close()


def test_remote_models_are_listed_marked_and_chosen_without_loading(
        qtbot: Any, window: Window) -> None:
    win = window.win
    labels = [win.model_picker.itemText(i) for i in range(win.model_picker.count())]
    assert labels == [f"{MODEL} (remote · box)", "other-model (remote · box)"]
    loads: list[object] = []
    win.engine.job_submitted.connect(loads.append)
    assert win.session.remote is None  # listed, not chosen
    window.pick("other-model (remote · box)")
    assert win.session.remote is not None and win.session.remote.model.name == "other-model"
    assert loads == [] and win.loaded is None  # nothing loads on this computer
    assert "remote" in win.model_state.text() and win.chat_page.send_button.isEnabled()
    # The tabs that classify with the local model see none (never a model not shown).
    assert win.classify_view.choice.model is None and win.classify_view.choice.loaded is None


def test_chat_streams_from_the_remote_model_and_is_stored(qtbot: Any, window: Window,
                                                          fake: FakeEngine) -> None:
    win = window.win
    window.pick(f"{MODEL} (remote · box)")
    chunks: list[str] = []
    each_job(win.engine, ChatJob, "text_arrived", chunks.append)
    window.send(qtbot, "Hi there")
    reply = window.reply()
    assert reply.finish_reason == "stop" and reply.content == "Hello there, friend."
    assert "".join(chunks) == reply.content
    assert reply.metadata["model_name"] == MODEL and reply.metadata["engine"] == "box"
    assert reply.model_id is None
    assert fake.requests[-1]["model"] == MODEL
    assert fake.requests[-1]["messages"][-1] == {"role": "user", "content": "Hi there"}
    assert "remote" in win.model_state.text()


def test_engine_killed_mid_stream_keeps_the_reply_as_interrupted(
        qtbot: Any, window: Window, fake: FakeEngine) -> None:
    fake.mode = "killed"
    window.pick(f"{MODEL} (remote · box)")
    window.send(qtbot, "Hi")
    reply = window.reply()
    assert reply.finish_reason == "interrupted" and reply.content == "Hello there,"
    assert any("kept" in note for note in reply.metadata["notes"])
    # Continue cannot be sent to an OpenAI chat API: refused with a message, reply kept.
    window.win.chat.continue_reply(reply.id)
    assert window.win.chat.gen_job is None
    assert "cannot continue a reply" in window.win.banner.text()
    assert window.reply() == reply


def test_stop_cancels_a_remote_reply(qtbot: Any, window: Window, fake: FakeEngine) -> None:
    fake.mode = "slow"
    win = window.win
    window.pick(f"{MODEL} (remote · box)")
    win.chat_page.composer.setPlainText("Tell me a long story")
    qtbot.keyClick(win.chat_page.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.chat.writer is not None and len(win.chat.writer.text) > 20,
                    timeout=30_000)
    qtbot.keyClick(win, Qt.Key.Key_Escape)  # Esc stops the reply
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=10_000)
    reply = window.reply()
    assert reply.finish_reason == "cancelled" and reply.content.startswith("Hello there,")


# the real peer -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def serve(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    yield from _served(tmp_path_factory.mktemp("serve-home"), with_model=True)


@pytest.mark.model
def test_window_chats_through_slmdesk_serve(qtbot: Any, monkeypatch: pytest.MonkeyPatch,
                                            serve: LocalServer) -> None:
    from slmdesk.engine.remote.capabilities import list_models
    from slmdesk.engine.remote.http import RemoteHttp, normalise_base_url

    url = normalise_base_url(serve.base_url)
    models = list_models(RemoteHttp(url, TOKEN)).ids
    window = Window(qtbot, monkeypatch, url, models, api_key=TOKEN)
    try:
        win = window.win
        window.pick(f"{models[0]} (remote · box)")
        win.chat_page.settings_panel.max_tokens.setValue(16)
        win.chat_page.settings_panel.flush()
        chunks: list[str] = []
        each_job(win.engine, ChatJob, "text_arrived", chunks.append)
        window.send(qtbot, "Say hello.")
        reply = window.reply()
        assert reply.finish_reason in ("stop", "length") and reply.content.strip()
        assert "".join(chunks) == reply.content
        assert reply.completion_tokens and reply.metadata["model_name"] == models[0]
    finally:
        window.close()
