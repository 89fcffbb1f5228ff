"""The engine thread and the window, driven with qtbot on the real 135M model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from slmdesk.engine.params import LoadParams, SamplingParams
from slmdesk.engine.worker import EngineClient
from slmdesk.store.repositories import ChatRepository

pytestmark = pytest.mark.model

GREEDY = SamplingParams(temperature=0, max_tokens=32)
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


@pytest.fixture
def client(qtbot: Any, model_path: Path) -> Any:
    c = EngineClient()
    yield c
    c.shutdown()


def test_worker_loads_and_streams_off_the_gui_thread(qtbot: Any, client: Any,
                                                     model_path: Path) -> None:
    threads: set[int] = set()
    gui = threading.get_ident()
    with qtbot.waitSignal(client.loaded, timeout=60_000) as loaded:
        job = client.load(str(model_path), LoadParams(max_context=1024, n_threads=1))
    assert loaded.args[0] == job.id
    assert loaded.args[1].architecture == "llama"

    chunks: list[str] = []
    client.text_received.connect(lambda _id, text: chunks.append(text))
    original = client.engine.stream_chat

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return original(*args, **kwargs)

    client.engine.stream_chat = spy
    with qtbot.waitSignal(client.generation_finished, timeout=60_000) as done:
        client.generate([SYSTEM, {"role": "user", "content": "What is the capital of France?"}],
                        GREEDY)
    result = done.args[1]
    assert "Paris" in result.text
    assert "".join(chunks) == result.text
    assert threads and gui not in threads


def test_cancel_from_the_gui_thread_stops_the_reply(qtbot: Any, client: Any,
                                                    model_path: Path) -> None:
    with qtbot.waitSignal(client.loaded, timeout=60_000):
        client.load(str(model_path), LoadParams(max_context=1024, n_threads=1))
    job_holder: dict[str, Any] = {}

    def on_text(job_id: int, _text: str) -> None:
        client.cancel(job_id)

    client.text_received.connect(on_text)
    with qtbot.waitSignal(client.generation_finished, timeout=60_000) as done:
        job_holder["job"] = client.generate(
            [SYSTEM, {"role": "user", "content": "Write a long story about a dragon."}],
            SamplingParams(temperature=0.8, seed=3, max_tokens=500),
        )
    assert done.args[1].finish_reason == "cancelled"
    assert done.args[1].completion_tokens < 500


def test_bad_model_load_fails_with_a_message_and_the_thread_lives(
    qtbot: Any, client: Any, tmp_path: Path, model_path: Path
) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 100)
    with qtbot.waitSignal(client.load_failed, timeout=30_000) as failed:
        client.load(str(bad))
    assert "broken.gguf" in failed.args[1]
    with qtbot.waitSignal(client.loaded, timeout=60_000):
        client.load(str(model_path), LoadParams(max_context=1024, n_threads=1))


@pytest.fixture
def window(qtbot: Any, model_path: Path) -> Any:
    from slmdesk.app import build_window

    core, engine, win = build_window()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.loaded is not None, timeout=60_000)
    yield win
    engine.shutdown()
    win.finish_pending_reply()
    core.db.close()


def test_window_chats_streams_and_stores(qtbot: Any, window: Any) -> None:
    assert window.model is not None and window.model.licence == "Apache-2.0"
    tip = window.model_picker.itemData(window.model_picker.currentIndex(),
                                       Qt.ItemDataRole.ToolTipRole)
    assert "licence: Apache-2.0" in tip and "Q4_1" in tip
    chunks: list[str] = []
    window.engine.text_received.connect(lambda _id, t: chunks.append(t))
    window.composer.setPlainText("What is the capital of France?")
    window.send_button.click()
    assert window.stop_button.isEnabled()
    qtbot.waitUntil(lambda: window.gen_job is None, timeout=60_000)
    assert chunks
    text = window.transcript.toPlainText()
    assert "What is the capital of France?" in text
    chats = ChatRepository(window.db)
    [conv] = chats.list_conversations()
    user, reply = chats.messages(conv.id)
    assert user.content == "What is the capital of France?"
    assert reply.finish_reason == "stop"
    assert reply.content and reply.content in text
    assert reply.completion_tokens and reply.tokens_per_s
    assert "tok/s" in window.status_speed.text()
    assert window.status_context.text().startswith("used ")
    assert window.conversation_list.count() == 1


def test_window_stop_button_marks_reply_cancelled(qtbot: Any, window: Any) -> None:
    from slmdesk.settings import load_settings

    window.composer.setPlainText("Write a very long story about a dragon, in ten chapters.")
    window.send_button.click()
    qtbot.waitUntil(lambda: window.writer is not None and window.writer.text != "",
                    timeout=60_000)
    window.stop_button.click()
    qtbot.waitUntil(lambda: window.gen_job is None, timeout=30_000)
    chats = ChatRepository(window.db)
    [conv] = chats.list_conversations()
    reply = chats.messages(conv.id)[-1]
    assert reply.finish_reason == "cancelled"
    assert reply.content
    assert load_settings(window.db).default_model_id == window.model.id


def test_window_shows_load_errors_in_the_window(qtbot: Any, window: Any,
                                                tmp_path: Path) -> None:
    from slmdesk.store.repositories import ModelRepository

    bad = tmp_path / "gone.gguf"
    record = ModelRepository(window.db).add(
        name="Gone", path=str(bad), size_bytes=1, architecture="llama", quantization=None,
        parameter_count=None, context_length=None, licence=None, source="import",
    )
    window.refresh_models()
    window.select_model(record)
    assert window.banner.isVisible()
    assert "missing" in window.banner.text()
