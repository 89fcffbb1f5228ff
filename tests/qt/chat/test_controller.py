"""slmdesk/ui/chat/controller.py in the real window on the 135M model: what Send may start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from slmdesk.store.chats import ChatRepository
from tests.qt.chat.test_window import App

pytestmark = pytest.mark.model


@pytest.fixture
def app(qtbot: Any, model_path: Path) -> Any:
    a = App(qtbot)
    yield a
    if a.core.db.conn is not None:
        a.close()


def test_an_overlong_message_cannot_be_sent_and_starts_no_chat(qtbot: Any, app: Any) -> None:
    # Issue 16, defect 9: the warning was right but Send stayed enabled; sending made a
    # chat with a failed reply and a full context bar; the note and the bar disagreed.
    win = app.win
    page = win.chat_page
    page.settings_panel.system_prompt.setPlainText("You are a helpful assistant.")
    page.settings_panel.flush()
    page.composer.setPlainText("word " * 3000)
    win.chat.update_context_bar()
    assert page.fit_note.isVisible() and "context holds 2048" in page.fit_note.text()
    assert not page.send_button.isEnabled()
    # One estimate: the note's figure is the context bar's figure for this new chat.
    needed = re.search(r"about (\d+) tokens", page.fit_note.text())
    assert needed and win.context_bar.text() == f"used {needed[1]} / 2048 tokens"
    # Enter sends no matter what the button shows: it must refuse too.
    qtbot.keyClick(page.composer, Qt.Key.Key_Return)
    assert win.chat.gen_job is None
    assert ChatRepository(win.db).list_conversations() == []
    assert win.banner.isVisible() and "context holds 2048" in win.banner.text()
    assert page.composer.toPlainText().startswith("word")  # the text is not lost
    # Shortened, it can be sent again.
    page.composer.setPlainText("Say hi.")
    win.chat.update_context_bar()
    assert page.send_button.isEnabled() and not page.fit_note.isVisible()


def _stored_chat(win: Any, *exchange: str) -> str:
    """A conversation written straight to the store (no generation), opened in the window."""
    chats = ChatRepository(win.db)
    conv = chats.create_conversation(title="Stored")
    for i, text in enumerate(exchange):
        chats.append_message(conv.id, "user" if i % 2 == 0 else "assistant", text)
    win.chat_page.sidebar.refresh()
    win.chat.open_conversation(conv.id)
    return conv.id


def test_copy_and_export_confirm_in_the_status_line(qtbot: Any, app: Any,
                                                    tmp_path: Path) -> None:
    # Issue 16, item 10: no "Copied"/"Exported" confirmation; and a message label must not
    # widen the window (defect 2), so the confirmation is the status bar's passing message.
    win = app.win
    _stored_chat(win, "Hello", "Hi there, " + "a long reply " * 40)
    width = win.width()
    win.chat_page.chat_view.widgets[1].copy_button.click()
    assert win.statusBar().currentMessage() == "Message copied"
    out = tmp_path / "a chat.md"
    win.chat.files.export_to(str(out), "md")
    qtbot.waitUntil(lambda: win.statusBar().currentMessage() == "Exported to a chat.md",
                    timeout=10_000)
    assert win.width() == width


def test_new_chat_while_a_reply_streams_keeps_the_reply(qtbot: Any, app: Any) -> None:
    # Issue 16, item 10: New chat was disabled while a reply streamed. Now it leaves the
    # reply's view; the reply goes on in its own chat and reaches the disk as it grows.
    from tests.qt.chat.test_window import LONG_STORY, send

    win = app.win
    page = win.chat_page
    page.settings_panel.max_tokens.setValue(400)
    page.settings_panel.flush()
    send(qtbot, win, LONG_STORY, wait=False)
    qtbot.waitUntil(lambda: win.chat.writer is not None and win.chat.writer.text != "",
                    timeout=60_000)
    streaming = win.chat.turn.conversation.id
    assert page.sidebar.new_button.isEnabled() and win.new_action.isEnabled()
    page.sidebar.new_button.click()
    assert win.chat.conversation is None and page.chat_view.widgets == []
    assert win.chat.gen_job is not None  # still writing, off screen
    chats = ChatRepository(win.db)
    reply_id = win.chat.writer.message_id
    saved = len(chats.get_message(reply_id).content)
    qtbot.waitUntil(lambda: len(chats.get_message(reply_id).content) > saved + 20,
                    timeout=60_000)
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=30_000)
    reply = chats.get_message(reply_id)
    assert reply.status == "complete" and reply.finish_reason == "cancelled"
    assert reply.content and reply.conversation_id == streaming
    assert win.chat.conversation is None and page.chat_view.widgets == []  # still the new one
    win.chat.open_conversation(streaming)
    assert page.chat_view.widgets[-1].message.content == reply.content


def test_restart_opens_the_last_open_chat(qtbot: Any, model_path: Path) -> None:
    # Issue 16, item 10: a restart opened a blank chat instead of the last one.
    first = App(qtbot)
    shown = _stored_chat(first.win, "Remember me", "I will.")
    other = ChatRepository(first.win.db).create_conversation(title="Newer")
    first.win.chat_page.sidebar.refresh()
    first.close()
    second = App(qtbot)
    assert second.win.chat.conversation is not None
    assert second.win.chat.conversation.id == shown != other.id
    assert [w.message.content for w in second.win.chat_page.chat_view.widgets] == [
        "Remember me", "I will."]
    assert second.win.chat_page.sidebar.current_id() == shown
    # Deleted in between: the next start falls back to a new chat.
    ChatRepository(second.win.db).delete_conversation(shown)
    second.win.chat_page.sidebar.refresh()
    second.close()
    third = App(qtbot)
    assert third.win.chat.conversation is None and third.win.chat_page.chat_view.widgets == []
    third.close()


def test_continue_goes_on_in_the_same_reply(qtbot: Any, app: Any) -> None:
    # Issue 16, item 10: no Continue for stopped or length-cut replies. Properties only:
    # the same message grows from its saved text, the engine was given that text.
    from tests.qt.chat.test_window import LONG_STORY, send

    win = app.win
    page = win.chat_page
    page.settings_panel.temperature.setValue(0.0)
    page.settings_panel.max_tokens.setValue(12)
    page.settings_panel.flush()
    send(qtbot, win, LONG_STORY)
    chats = ChatRepository(win.db)
    cut = chats.path(win.chat.conversation.id)[-1]
    assert cut.finish_reason == "length" and cut.completion_tokens == 12
    widget = page.chat_view.widget_for(cut.id)
    assert widget.continue_button is not None and widget.continue_button.isVisible()
    seen: list[str] = []
    original = win.engine.engine.stream_chat

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("continue_from", ""))
        return original(*args, **kwargs)

    win.engine.engine.stream_chat = spy
    widget.continue_button.click()
    assert win.chat.gen_job is not None
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=120_000)
    assert seen == [cut.content]
    grown = chats.get_message(cut.id)
    assert grown.status == "complete" and grown.finish_reason in ("stop", "length")
    assert grown.content.startswith(cut.content) and len(grown.content) > len(cut.content)
    assert grown.completion_tokens is not None and grown.completion_tokens > 12
    assert len(chats.siblings(cut.id)) == 1 and chats.path(cut.conversation_id)[-1].id == cut.id
    shown = page.chat_view.widget_for(cut.id)
    assert shown is not None and shown.message.content == grown.content


def test_delete_one_message_and_its_branch_below(qtbot: Any, app: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 16, item 10: no deleting a single message. It asks first; a "no" keeps it.
    win = app.win
    cid = _stored_chat(win, "First", "Reply one", "Second", "Reply two")
    chats = ChatRepository(win.db)
    first, reply_one, second, _reply_two = chats.path(cid)
    other = chats.append_message(cid, "assistant", "Another reply one", parent_id=first.id)
    chats.set_leaf(cid, _reply_two.id)
    win.chat.open_conversation(cid)
    asked: list[int] = []
    monkeypatch.setattr(win.chat, "confirm_delete", lambda below: asked.append(below) or False)
    win.chat_page.chat_view.widget_for(second.id).delete_button.click()
    assert asked == [1] and chats.count_messages(cid) == 5
    monkeypatch.setattr(win.chat, "confirm_delete", lambda below: True)
    win.chat_page.chat_view.widget_for(reply_one.id).delete_button.click()
    # Gone: the reply and what followed it; kept: the message above and the other version.
    assert {m.id for m in chats.messages(cid)} == {first.id, other.id}
    assert [w.message.id for w in win.chat_page.chat_view.widgets] == [first.id, other.id]
    assert win.statusBar().currentMessage() == "Message deleted"
