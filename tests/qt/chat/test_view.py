"""The transcript's message widgets: a streamed reply is drawn cheaply while it grows and
ends up rendered exactly as the same text rendered in one go (slmdesk/ui/chat/view.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from PySide6.QtGui import QTextDocument

from slmdesk.store.chats import Message
from slmdesk.ui.chat.view import MessageWidget

REPLY = (
    "# A plan\n\nHere is **bold text that spans chunks** and `code`, then a list:\n\n"
    "- one\n- two with a [link](https://example.com)\n  continued\n\n"
    "1. first\n2. second\n\n"
    "```python\nfor i in range(3):\n    print(\"i =\", i)  # a comment\n```\n"
    "> quoted ![img](https://x.test/a.png)\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    + "w" * 5000 + " after a very long word\n\n"
    "```\nan open fence at the end\nstill code"
)


def _message(content: str, status: str) -> Message:
    return Message(
        id="m1", conversation_id="c1", parent_id=None, role="assistant", content=content,
        status=status, finish_reason=None if status == "streaming" else "stop",
        model_id=None, prompt_tokens=None, completion_tokens=None, ttft_s=None,
        tokens_per_s=None, duration_s=None, metadata={}, created_at="", updated_at="",
    )


def _look(document: QTextDocument) -> tuple[str, list[list[tuple[int, int, str]]]]:
    """The document's HTML and, per block, the highlighter's coloured ranges."""
    ranges = []
    block = document.begin()
    while block.isValid():
        ranges.append([(r.start, r.length, r.format.foreground().color().name())
                       for r in block.layout().formats()])
        block = block.next()
    return document.toHtml(), ranges


@pytest.mark.parametrize("step", [5, 17, 200])
def test_a_streamed_reply_ends_as_a_one_shot_rendering(qtbot: Any, step: int) -> None:
    streamed = MessageWidget(_message("", "streaming"), ["m1"])
    qtbot.addWidget(streamed)
    streamed.resize(600, 400)
    for end in range(step, len(REPLY) + step, step):
        streamed.set_streaming_text(REPLY[:end])
        if end % (11 * step) == 0:
            streamed.flush_streaming_text()  # a rendering now and then, as the timer would
    final = dataclasses.replace(_message(REPLY, "done"))
    streamed.update_message(final, ["m1"])

    one_shot = MessageWidget(final, ["m1"])
    qtbot.addWidget(one_shot)
    one_shot.resize(600, 400)
    look = _look(one_shot.view.document())
    assert any(look[1])  # the code is coloured: the highlighter ran
    assert _look(streamed.view.document()) == look
    assert streamed.view.code_blocks == one_shot.view.code_blocks
    assert streamed.view.toPlainText() == one_shot.view.toPlainText()


def test_a_growing_line_is_appended_and_a_finished_line_is_rendered(qtbot: Any) -> None:
    widget = MessageWidget(_message("", "streaming"), ["m1"])
    qtbot.addWidget(widget)
    renders: list[str] = []
    original = widget.view.set_markdown
    widget.view.set_markdown = lambda text: (renders.append(text), original(text))[-1]
    text = ""
    for word in "Some **bold** words on one line".split(" "):
        text += word + " "
        widget.set_streaming_text(text)
    # Shown at once, as typed, without a Markdown rendering.
    assert renders == [] and widget.view.toPlainText() == text
    widget.set_streaming_text(text + "\n\nNext")
    qtbot.waitUntil(lambda: renders == [text + "\n\nNext"], timeout=2000)
    assert "**" not in widget.view.toPlainText()  # rendered as Markdown now
