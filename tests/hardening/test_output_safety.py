"""Hostile model output (HTML, remote images, file: links, control characters, a 1 MB line,
invalid UTF-8 split across tokens) renders safely and is stored exactly.

The 135M model cannot be made to emit chosen bytes, so these tests keep the whole real
path (llama.cpp sampling, the engine's UTF-8 stream, the engine thread, ReplyWriter, SQLite,
the chat view) and replace only what each sampled token *decodes to* with the next piece of
a hostile byte script.
"""

from __future__ import annotations

import codecs
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl

from slmdesk.engine.llama_engine import _Utf8Stream
from slmdesk.engine.params import SamplingParams
from slmdesk.store.chats import ChatRepository

# One piece per generated token. Multi-byte characters are split across tokens, some
# sequences are invalid, and the last piece leaves a sequence unfinished.
HOSTILE_PIECES: list[bytes] = [
    b'<img src="https://evil.test/pixel.png"><script>alert(1)</script>\n\n',
    b"![tracker](https://evil.test/t.png) ![local](file:///etc/passwd) ",
    b"[open me](file:///etc/shadow) <a href=\"file:///etc/hosts\">hosts</a> ",
    b'<style>*{display:none}</style><iframe src="https://evil.test"></iframe>\n\n',
    b"ctl:\x00\x07\x08\x1b[31mred\x1b[0m\r\x7f\x0b\x0c end\n",
    b"bidi:\xe2",  # U+202E RIGHT-TO-LEFT OVERRIDE, split over three tokens
    b"\x80",
    b"\xae!\n",
    b"emoji:\xf0\x9f",  # U+1F600 split over three tokens
    b"\x98",
    b"\x80 bad:\xff\xfe",  # bytes that never occur in UTF-8
    b"\xc3",  # a two-byte start followed by ASCII: invalid
    b"( \xed\xa0\x80 ",  # an encoded surrogate: invalid
    b"\xe2\x82",  # truncated three-byte sequence
    b" overlong:\xc0\xaf \xe0\x80\xaf\n",
    b"line:" + b"A" * 1_000_000 + b" needleword\n",
    b"tail:\xf0\x9f\x98",  # unfinished at the very end: flushed as U+FFFD
]
EXPECTED = b"".join(HOSTILE_PIECES).decode("utf-8", errors="replace")


def _feed(pieces: list[bytes]) -> str:
    stream = _Utf8Stream()
    return "".join(stream.feed(p) for p in pieces) + stream.flush()


def test_utf8_stream_equals_a_one_shot_decode_however_tokens_split_the_bytes() -> None:
    data = b"".join(HOSTILE_PIECES[:-2]) + b"tail:\xf0\x9f\x98"
    expected = data.decode("utf-8", errors="replace")
    assert _feed([*HOSTILE_PIECES[:-2], b"tail:\xf0\x9f\x98"]) == expected
    # Every single cut and every pair of cuts in the interesting (non-1 MB) part.
    for cut in range(len(data) + 1):
        assert _feed([data[:cut], data[cut:]]) == expected
    for a, b in itertools.combinations(range(0, len(data) + 1, 3), 2):
        assert _feed([data[:a], data[a:b], data[b:]]) == expected
    # One byte per token, the worst case for a streaming decoder.
    assert _feed([bytes([x]) for x in data]) == expected
    assert "\ufffd" in expected and "\u202e" in expected and "\U0001f600" in expected


def test_reference_decoder_agrees_with_python() -> None:
    """The property above rests on Python's incremental decoder; pin it down."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out = "".join(decoder.decode(bytes([x])) for x in b"\xf0\x9f\x98\x80\xf0\x9f")
    assert out + decoder.decode(b"", final=True) == "\U0001f600\ufffd"


@pytest.fixture
def hostile_tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Make each sampled token decode to the next hostile piece (then to nothing)."""
    from slmdesk.engine.llama_engine import LlamaEngine

    served: list[bytes] = []
    script = iter(HOSTILE_PIECES)
    real = LlamaEngine._token_bytes

    def scripted(self: Any, token: int, *, special: bool = False) -> bytes:
        real_piece = real(self, token, special=special)  # the real lookup still runs
        if special:
            return real_piece  # special-token text (BOS/EOS names, labels), not a reply
        piece = next(script, b"")
        served.append(piece)
        return piece

    monkeypatch.setattr(LlamaEngine, "_token_bytes", scripted)
    yield served


def _sampling() -> SamplingParams:
    # Greedy on a story prompt: the model does not stop before the script is used up.
    return SamplingParams(temperature=0, max_tokens=len(HOSTILE_PIECES), stop=())


STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


@pytest.mark.model
def test_engine_streams_hostile_bytes_as_the_exact_replacement_decoded_text(
    engine: Any, hostile_tokens: list[bytes]
) -> None:
    chunks: list[str] = []
    result = engine.stream_chat(STORY, _sampling(), on_text=chunks.append)
    assert result.completion_tokens == len(HOSTILE_PIECES), result.finish_reason
    assert hostile_tokens == HOSTILE_PIECES
    assert result.text == EXPECTED
    assert "".join(chunks) == EXPECTED


@pytest.mark.model
@pytest.mark.slow
def test_window_renders_hostile_output_safely_and_stores_it_exactly(
    qtbot: Any, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    hostile_tokens: list[bytes],
) -> None:
    from slmdesk.transfer import export_json, import_json
    from tests.qt.chat.test_window import App, send

    opened: list[str] = []
    monkeypatch.setattr("slmdesk.ui.chat.controller.QDesktopServices.openUrl",
                        lambda url: opened.append(url.toString()))
    app = App(qtbot)
    try:
        win = app.win
        win.chat_page.settings_panel.temperature.setValue(0.0)
        win.chat_page.settings_panel.max_tokens.setValue(len(HOSTILE_PIECES))
        win.chat_page.settings_panel.stop.setText("")
        win.chat_page.settings_panel.flush()
        send(qtbot, win, STORY[0]["content"])

        chats = ChatRepository(win.db)
        [conv] = chats.list_conversations()
        _, reply = chats.path(conv.id)
        # Stored exactly: what the decoder produced, byte for byte, NUL and 1 MB line included.
        assert reply.content == EXPECTED
        assert reply.finish_reason == "length"

        widget = win.chat_page.chat_view.widget_for(reply.id)
        assert widget is not None
        widget.flush_streaming_text()
        view = widget.view
        view.grab()  # paint: an image or style sheet would be requested now
        assert view.resource_requests == []
        shown = view.toPlainText()
        assert "<script>alert(1)</script>" in shown  # raw HTML shows as text
        assert "A" * 1000 in shown and "needleword" in shown
        assert "\u202e" in shown and "\U0001f600" in shown
        # file: links are refused, nothing is opened, even when clicked.
        for href in ("file:///etc/shadow", "file:///etc/passwd", "file:///etc/hosts"):
            with qtbot.waitSignal(view.link_refused):
                view.anchorClicked.emit(QUrl(href))
        assert opened == []

        # Search finds the word at the end of the megabyte line.
        assert [h.message.id for h in chats.search("needleword")] == [reply.id]
        # Export → import keeps it exactly too.
        data = json.loads(json.dumps(export_json(win.db, conv.id), ensure_ascii=False))
        copy = import_json(win.db, data)
        assert chats.path(copy.id)[-1].content == EXPECTED
    finally:
        app.close()

    # And after a restart.
    from slmdesk.paths import get_paths
    from slmdesk.store.db import open_database

    db = open_database(get_paths().database)
    try:
        contents = [m.content for c in ChatRepository(db).list_conversations()
                    for m in ChatRepository(db).path(c.id) if m.role == "assistant"]
        assert contents == [EXPECTED, EXPECTED]
    finally:
        db.close()
