"""The engine thread and the chat window, driven with qtbot on the real 135M model."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtWidgets import QDialog

from slmdesk.engine.params import LoadParams, SamplingParams
from slmdesk.store.chats import ChatRepository
from slmdesk.ui.engine_thread import ChatJob, EngineClient
from tests.engine_jobs import each_job
from tests.lora_adapter import write_lora_adapter

pytestmark = pytest.mark.model

GREEDY = SamplingParams(temperature=0, max_tokens=32)
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
LONG_STORY = "Write a very long story about a dragon, in ten chapters."


@pytest.fixture
def client(qtbot: Any, model_path: Path) -> Any:
    c = EngineClient()
    yield c
    c.shutdown()


def test_worker_loads_and_streams_off_the_gui_thread(qtbot: Any, client: Any,
                                                     model_path: Path) -> None:
    threads: set[int] = set()
    gui = threading.get_ident()
    load = client.load(str(model_path), LoadParams(max_context=1024, n_threads=1))
    started: list[str] = []
    infos: list[Any] = []
    load.started.connect(started.append)
    load.loaded.connect(infos.append)
    # The job's own signal, and the client's for whoever watches the model.
    client.model_loaded.connect(infos.append)
    with qtbot.waitSignals([load.loaded, client.model_loaded], timeout=60_000):
        pass
    assert started == [str(model_path)] and load.done
    assert len(infos) == 2 and infos[0] is infos[1] and infos[0].architecture == "llama"

    chunks: list[str] = []
    original = client.engine.stream_chat

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return original(*args, **kwargs)

    client.engine.stream_chat = spy
    job = client.generate(
        [SYSTEM, {"role": "user", "content": "What is the capital of France?"}], GREEDY)
    job.text_arrived.connect(chunks.append)
    with qtbot.waitSignal(job.finished, timeout=60_000) as done:
        pass
    result = done.args[0]
    # Never the words (they change with the CPU): a reply, streamed exactly as returned.
    assert result.finish_reason in ("stop", "length") and result.text.strip()
    assert "".join(chunks) == result.text
    assert threads and gui not in threads
    # Token counting from the GUI thread works while the engine thread is idle or busy.
    assert client.measure_prompt([{"role": "user", "content": "hello"}]) > 0


def test_cancel_from_the_gui_thread_stops_the_reply(qtbot: Any, client: Any,
                                                    model_path: Path) -> None:
    with qtbot.waitSignal(client.model_loaded, timeout=60_000):
        client.load(str(model_path), LoadParams(max_context=1024, n_threads=1))
    job = client.generate([SYSTEM, {"role": "user", "content": LONG_STORY}],
                          SamplingParams(temperature=0.8, seed=3, max_tokens=500))
    job.text_arrived.connect(lambda _text: job.cancel())
    with qtbot.waitSignal(job.finished, timeout=60_000) as done:
        pass
    assert done.args[0].finish_reason == "cancelled"
    assert done.args[0].completion_tokens < 500


def test_bad_model_load_fails_with_a_message_and_the_thread_lives(
    qtbot: Any, client: Any, tmp_path: Path, model_path: Path
) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 100)
    job = client.load(str(bad))
    with qtbot.waitSignal(job.failed, timeout=30_000) as failed:
        pass
    assert "broken.gguf" in failed.args[0]
    with qtbot.waitSignal(client.model_loaded, timeout=60_000):
        client.load(str(model_path), LoadParams(max_context=1024, n_threads=1))


# -- the window ---------------------------------------------------------------------------
class App:
    """A window on a home, opened and closed the way run_gui does it."""

    def __init__(self, qtbot: Any) -> None:
        from slmdesk.app import build_window
        from slmdesk.paths import get_paths
        from slmdesk.settings import load_settings, save_settings
        from slmdesk.store.db import open_database

        # One thread is steadier than two on the shared CI cores.
        db = open_database(get_paths().ensure().database)
        s = load_settings(db)
        s.n_threads = 1
        s.max_context = 2048
        save_settings(db, s)
        db.close()
        self.core, self.engine, self.win = build_window()
        qtbot.addWidget(self.win)
        self.win.show()
        qtbot.waitUntil(lambda: self.win.loaded is not None, timeout=60_000)

    def close(self) -> None:
        from PySide6.QtWidgets import QApplication

        self.win.close()
        self.engine.shutdown()
        for _ in range(3):
            QApplication.processEvents()
        self.win.finish_pending_reply()
        self.core.db.close()


@pytest.fixture
def app(qtbot: Any, model_path: Path) -> Any:
    a = App(qtbot)
    yield a
    if a.core.db.conn is not None:
        try:
            a.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


def send(qtbot: Any, win: Any, text: str, *, wait: bool = True) -> None:
    win.chat_page.composer.setPlainText(text)
    qtbot.keyClick(win.chat_page.composer, Qt.Key.Key_Return)
    if wait:
        qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=120_000)


def reply_texts(win: Any) -> list[str]:
    return [w.message.content for w in win.chat_page.chat_view.widgets
            if w.message.role == "assistant"]


def test_type_send_stream_and_store(qtbot: Any, app: Any) -> None:
    win = app.win
    assert win.model.licence == "Apache-2.0"
    tip = win.model_picker.itemData(win.model_picker.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    assert "licence: Apache-2.0" in tip and "Q4_1" in tip
    chunks: list[str] = []
    bar_values: list[int] = []
    each_job(win.engine, ChatJob, "text_arrived", chunks.append)
    win.context_bar.valueChanged.connect(bar_values.append)
    win.chat_page.settings_panel.temperature.setValue(0.0)
    win.chat_page.settings_panel.flush()
    send(qtbot, win, "What is the capital of France?")
    assert chunks, "no tokens streamed into the view"
    chats = ChatRepository(win.db)
    [conv] = chats.list_conversations()
    user, reply = chats.path(conv.id)
    assert user.content == "What is the capital of France?"
    assert reply.finish_reason in ("stop", "length") and reply.content.strip()
    # What streamed into the window is what was stored.
    assert "".join(chunks) == reply.content
    assert reply.completion_tokens and reply.tokens_per_s
    view_text = win.chat_page.chat_view.plain_text()
    words = re.findall(r"[A-Za-z]{4,}", reply.content)
    assert words and all(w in view_text for w in words[:5])
    details = win.chat_page.chat_view.widget_for(reply.id).details.text()
    assert "tokens" in details and "tok/s" in details and "first token" in details
    assert "tok/s" in win.status_speed.text()
    assert win.context_bar.value() > 0 and win.context_bar.maximum() == 2048
    # The conversation as the next turn will see it: at least what the reply used.
    assert win.context_bar.value() >= reply.prompt_tokens + reply.completion_tokens
    assert len(set(bar_values)) >= 2  # it moved while the reply streamed
    assert conv.params["temperature"] == 0.0


def test_a_fine_tune_picked_in_the_window_streams_and_stores_its_reply(
    qtbot: Any, app: Any, tmp_path: Path
) -> None:
    """A fine-tune (the base model plus a LoRA adapter, as `slmdesk train` registers one) is
    one more entry in the model picker: choosing it loads the adapter, and it chats."""
    from slmdesk.store.models import ModelRepository

    win = app.win
    base = win.model
    adapter = str(write_lora_adapter(tmp_path / "zorp-bot.gguf"))
    fine_tune = ModelRepository(win.db).add_fine_tune(name="Zorp bot", base=base,
                                                      adapter_path=adapter)
    win.refresh_models()
    index = win.model_picker.findData(fine_tune.id)
    assert index >= 0 and win.model_picker.itemText(index).startswith("Zorp bot")
    win.model_picker.setCurrentIndex(index)
    win.model_picker.activated.emit(index)  # what choosing the entry does
    qtbot.waitUntil(lambda: win.loaded is not None and win.loaded.adapter is not None
                    and win.loaded.adapter.path == adapter,
                    timeout=60_000)
    assert win.model.id == fine_tune.id and win.loaded.adapter is not None
    assert win.loaded.adapter.scale == 1.0
    chunks: list[str] = []
    each_job(win.engine, ChatJob, "text_arrived", chunks.append)
    send(qtbot, win, "What is 2 plus 3?")
    chats = ChatRepository(win.db)
    [conv] = chats.list_conversations()
    user, reply = chats.path(conv.id)
    assert user.content == "What is 2 plus 3?"
    # Properties only: a reply streamed from the fine-tune, stored as it streamed.
    assert chunks and reply.content.strip() and reply.finish_reason in ("stop", "length")
    assert "".join(chunks) == reply.content
    assert reply.model_id == fine_tune.id and conv.model_id == fine_tune.id
    # Back to the base model: the adapter is gone.
    win.model_picker.activated.emit(win.model_picker.findData(base.id))
    qtbot.waitUntil(lambda: win.loaded is not None and win.model.id == base.id, timeout=60_000)
    assert win.loaded.adapter is None


def test_stop_regenerate_edit_branches_and_search_after_restart(
    qtbot: Any, model_path: Path
) -> None:
    first = App(qtbot)
    win = first.win
    win.chat_page.settings_panel.max_tokens.setValue(300)
    win.chat_page.settings_panel.flush()
    send(qtbot, win, LONG_STORY, wait=False)
    qtbot.waitUntil(lambda: win.chat.writer is not None and len(win.chat.writer.text) > 20,
                    timeout=60_000)
    qtbot.keyClick(win, Qt.Key.Key_Escape)  # Esc stops the reply
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=30_000)
    chats = ChatRepository(win.db)
    [conv] = chats.list_conversations()
    stopped = chats.path(conv.id)[-1]
    assert stopped.finish_reason == "cancelled" and stopped.content

    # Regenerate: a second version of the reply; the first is kept.
    win.chat_page.settings_panel.max_tokens.setValue(24)
    win.chat_page.settings_panel.flush()
    win.chat_page.chat_view.widget_for(stopped.id).action_button.click()
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=120_000)
    replies = chats.siblings(stopped.id)
    assert replies[0].id == stopped.id and len(replies) == 2
    newest = win.chat_page.chat_view.widgets[-1]
    assert newest.branch_label.text() == "2/2" and newest.prev_button.isVisible()

    # Switch back to version 1 with the ‹ button.
    newest.prev_button.click()
    assert win.chat_page.chat_view.widgets[-1].message.id == stopped.id
    assert win.chat_page.chat_view.widgets[-1].branch_label.text() == "1/2"

    # Edit and resend the user message: a new branch from the first message.
    user_widget = win.chat_page.chat_view.widgets[0]
    assert user_widget.action_button.isEnabled(), user_widget.action_button.text()
    user_widget.action_button.click()
    assert not user_widget.editor.isHidden()
    user_widget.editor.setPlainText("Tell me about zebras in one sentence.")
    user_widget.send_edit_button.click()
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=120_000)
    path = chats.path(conv.id)
    assert path[0].content == "Tell me about zebras in one sentence."
    assert len(chats.siblings(path[0].id)) == 2
    assert win.chat_page.chat_view.widgets[0].branch_label.text() == "2/2"
    every = chats.messages(conv.id)
    assert len(every) == 5  # nothing was erased: 2 user versions, 3 replies
    first.close()

    # Restart on the same home and find the first version of the question by full-text
    # search: it lives on a branch that is not shown, so opening the hit switches to it.
    second = App(qtbot)
    win2 = second.win
    original_question = ChatRepository(win2.db).siblings(path[0].id)[0]
    assert original_question.content == LONG_STORY
    win2.chat_page.sidebar.search_box.setText("chapters")
    sidebar2 = win2.chat_page.sidebar
    qtbot.waitUntil(lambda: sidebar2.stack.currentWidget() is sidebar2.hits, timeout=5_000)
    hit = win2.chat_page.sidebar.hits.item(0)
    assert hit.flags() & Qt.ItemFlag.ItemIsEnabled
    win2.chat_page.sidebar.hits.itemClicked.emit(hit)
    assert win2.chat.conversation is not None and win2.chat.conversation.id == conv.id
    shown = [w.message.id for w in win2.chat_page.chat_view.widgets]
    assert shown[0] == original_question.id
    assert win2.chat_page.chat_view.widgets[0].branch_label.text() == "1/2"
    second.close()


def test_close_while_streaming_saves_the_reply_as_cancelled(qtbot: Any, app: Any) -> None:
    win = app.win
    win.chat_page.settings_panel.max_tokens.setValue(2000)
    win.chat_page.settings_panel.flush()
    send(qtbot, win, LONG_STORY, wait=False)
    qtbot.waitUntil(lambda: win.chat.writer is not None and win.chat.writer.text != "",
                    timeout=60_000)
    app.close()
    from slmdesk.startup import open_core

    core = open_core()
    try:
        chats = ChatRepository(core.db)
        [conv] = chats.list_conversations()
        reply = chats.path(conv.id)[-1]
        assert reply.finish_reason == "cancelled"
        assert reply.status == "complete"
        assert reply.content
    finally:
        core.db.close()


def test_sidebar_groups_renames_pins_deletes_with_undo(qtbot: Any, app: Any) -> None:
    from pytestqt.modeltest import ModelTester

    win = app.win
    chats = ChatRepository(win.db)
    a = chats.create_conversation(title="Alpha")
    b = chats.create_conversation(title="Beta")
    win.chat_page.sidebar.refresh()
    ModelTester(None).check(win.chat_page.sidebar.model)
    model = win.chat_page.sidebar.model
    assert model.item(0).text() == "Today"
    assert [model.item(0).child(r).text() for r in range(2)] == ["Beta", "Alpha"]

    # Rename inline.
    model.item(0).child(1).setText("Alpha renamed")
    assert chats.get_conversation(a.id).title == "Alpha renamed"

    # Pin moves it to a "Pinned" group at the top.
    win.chat_page.sidebar.toggle_pin(a.id)
    assert model.item(0).text() == "Pinned"
    assert model.item(0).child(0).text() == "Alpha renamed"
    ModelTester(None).check(model)

    # Delete, then undo.
    win.chat_page.sidebar.delete(b.id)
    assert [c.id for c in chats.list_conversations()] == [a.id]
    assert win.chat_page.sidebar.undo_bar.isVisible()
    win.chat_page.sidebar.undo_button.click()
    assert {c.id for c in chats.list_conversations()} == {a.id, b.id}


def test_settings_panel_presets_and_per_conversation_settings(qtbot: Any, app: Any) -> None:
    win = app.win
    panel = win.chat_page.settings_panel
    names = [panel.preset_box.itemData(i) for i in range(panel.preset_box.count())]
    assert {"Precise", "Balanced", "Creative"} <= set(names)
    panel.preset_box.setCurrentIndex(names.index("Creative"))
    panel.preset_box.activated.emit(names.index("Creative"))
    assert panel.temperature.value() == pytest.approx(1.0)
    panel.system_prompt.setPlainText("Answer like a pirate.")
    panel.top_k.setValue(7)
    panel.flush()
    send(qtbot, win, "Hello there")
    conv = win.chat.conversation
    assert conv.system_prompt == "Answer like a pirate."
    assert conv.params["top_k"] == 7 and conv.params["temperature"] == pytest.approx(1.0)
    panel.save_preset("Pirate")
    assert "Pirate" in [panel.preset_box.itemData(i) for i in range(panel.preset_box.count())]
    # A new chat starts from the defaults; the old one keeps its settings.
    win.chat.new_chat()
    assert panel.system_prompt_text() != "Answer like a pirate."
    win.chat.open_conversation(conv.id)
    assert panel.system_prompt_text() == "Answer like a pirate."
    assert panel.top_k.value() == 7


def test_composer_drop_and_context_warnings(qtbot: Any, app: Any, tmp_path: Path) -> None:
    win = app.win
    note = tmp_path / "notes.md"
    note.write_text("# Notes\nremember the milk\n", encoding="utf-8")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(note))])
    win.chat_page.composer.insertFromMimeData(mime)
    assert "remember the milk" in win.chat_page.composer.toPlainText()
    win.chat.update_context_bar()
    small = win.context_bar.value()
    assert small > 0
    win.chat_page.composer.setPlainText("word " * 3000)
    win.chat.update_context_bar()
    assert win.context_bar.value() > small
    fit_note = win.chat_page.fit_note
    assert fit_note.isVisible() and "context holds 2048" in fit_note.text()
    binary = tmp_path / "photo.png"
    binary.write_bytes(b"\x89PNG")
    mime2 = QMimeData()
    mime2.setUrls([QUrl.fromLocalFile(str(binary))])
    win.chat_page.composer.insertFromMimeData(mime2)
    assert win.banner.isVisible() and "photo.png" in win.banner.text()


def test_export_and_import_round_trip_from_the_window(qtbot: Any, app: Any,
                                                      tmp_path: Path) -> None:
    win = app.win
    win.chat_page.settings_panel.max_tokens.setValue(16)
    win.chat_page.settings_panel.flush()
    send(qtbot, win, "Say hello.")
    original = win.chat.conversation.id
    out = tmp_path / "chat.json"
    win.chat.files.export_to(str(out), "json")
    qtbot.waitUntil(out.exists, timeout=10_000)
    qtbot.waitUntil(lambda: out.stat().st_size > 0, timeout=10_000)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["id"] == original
    win.chat.files.import_file(str(out))
    assert win.chat.conversation.id != original  # the id was taken, so it got a new one
    assert [m.content for m in ChatRepository(win.db).path(win.chat.conversation.id)] == [
        m["content"] for m in data["messages"]]
    md = tmp_path / "chat.md"
    win.chat.files.export_to(str(md), "md")
    qtbot.waitUntil(lambda: md.exists() and "Say hello." in md.read_text(), timeout=10_000)


def test_missing_model_file_is_shown_in_the_window(qtbot: Any, app: Any,
                                                   tmp_path: Path) -> None:
    from slmdesk.store.models import ModelRepository

    win = app.win
    record = ModelRepository(win.db).add(
        name="Gone", path=str(tmp_path / "gone.gguf"), size_bytes=1, architecture="llama",
        quantization=None, parameter_count=None, context_length=None, licence=None,
        source="import",
    )
    win.refresh_models()
    win.select_model(record)
    assert win.banner.isVisible() and "missing" in win.banner.text()
    assert win.loaded is not None  # the old model stays loaded


def test_classify_tab_shares_the_loaded_model(qtbot: Any, app: Any) -> None:
    win = app.win
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == [
        "Chat", "Classify", "Data sets", "Models", "Server"]
    win.tabs.setCurrentWidget(win.classify_view)
    assert not win.settings_button.isVisible()  # chat-only control
    assert win.classify_view.choice.loaded is win.loaded
    assert win.datasets_view.choice.loaded is win.loaded
    win.tabs.setCurrentIndex(0)
    assert win.settings_button.isVisible()


def test_rate_a_reply_and_save_the_exchange_as_an_edited_example(qtbot: Any, app: Any) -> None:
    from slmdesk.store.datasets import DatasetRepository

    win = app.win
    win.chat_page.settings_panel.max_tokens.setValue(16)
    win.chat_page.settings_panel.flush()
    send(qtbot, win, "Say hello to Ada.")
    reply_widget = win.chat_page.chat_view.widgets[-1]
    reply_widget.up_button.click()
    chats = ChatRepository(win.db)
    assert chats.get_message(reply_widget.message.id).metadata["rating"] == 1
    reply_widget.save_button.click()
    dialog = win.findChild(QDialog, "save_example_dialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.rating_group.checkedId() == 1
    dialog.reply_edit.setPlainText("Hello, Ada!")
    dialog.save()
    assert dialog.saved is not None
    datasets = DatasetRepository(win.db)
    [example] = datasets.examples(datasets.get("Chat examples"))
    assert example.messages == [
        {"role": "system", "content": win.chat.conversation.system_prompt},
        {"role": "user", "content": "Say hello to Ada."},
        {"role": "assistant", "content": "Hello, Ada!"},
    ]
    assert (example.rating, example.source, example.source_ref) == (
        1, "conversation", win.chat.conversation.id)
    # The stored reply itself is untouched: the edit went only into the example.
    assert chats.get_message(reply_widget.message.id).content == reply_widget.message.content
    reply_widget.up_button.click()  # un-rate
    assert "rating" not in chats.get_message(reply_widget.message.id).metadata


def test_status_line_names_the_cpu_variant_and_explains_it(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slmdesk.engine.backend import BackendInfo
    from slmdesk.ui import main_window

    win = app.win
    info = BackendInfo(backend="CPU", gpu_offload=False, llama_cpp_python_version="0.3.36",
                       system_info="", cpu_variant="haswell", cpu_variants=("x64", "haswell"))
    monkeypatch.setattr(main_window, "backend_info", lambda: info)
    win._show_backend()
    # Short in the status bar, so it can never widen the window; the rest in the tooltip.
    assert win.status_backend.text() == "CPU · haswell"
    assert win.status_backend.toolTip() == "llama.cpp: CPU, CPU build haswell (AVX2, FMA)"
    native = BackendInfo(backend="CPU", gpu_offload=False, llama_cpp_python_version="0.3.36",
                         system_info="")
    monkeypatch.setattr(main_window, "backend_info", lambda: native)
    win._show_backend()
    assert win.status_backend.text() == "CPU"
