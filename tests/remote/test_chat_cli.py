"""`slmdesk chat --engine NAME|URL`: the reply streams from a remote engine and is stored like a
local chat (the fake engine for the faults, the real peer `slmdesk serve` for the round trip)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.cli import main
from slmdesk.server.runner import LocalServer
from slmdesk.startup import open_core
from slmdesk.store.chats import ChatRepository, Message
from slmdesk.store.engines import EngineRepository
from tests.remote.fake_engine import MODEL, FakeEngine
from tests.server.conftest import TOKEN, _served


def _chat(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["chat", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _stored_reply(conversation_id: str | None = None) -> Message:
    chats = ChatRepository(open_core().db)
    if conversation_id is None:
        [conversation] = chats.list_conversations()
        conversation_id = conversation.id
    path = chats.path(conversation_id)
    assert [m.role for m in path][-1] == "assistant"
    return path[-1]


def test_chat_through_an_engine_url_streams_what_is_stored(
        fake: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _chat(capsys, "--engine", fake.url, "Hi there")
    assert code == 0
    reply = _stored_reply()
    assert out == reply.content + "\n" and reply.content == "Hello there, friend."
    assert reply.finish_reason == "stop" and reply.model_id is None
    assert reply.metadata["model_name"] == MODEL
    assert reply.metadata["engine_url"] == fake.url
    assert (reply.prompt_tokens, reply.completion_tokens) == (5, 4)
    assert fake.requests[-1]["messages"][-1] == {"role": "user", "content": "Hi there"}


def test_chat_through_a_saved_engine_json_and_continue(
        fake: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
    repo = EngineRepository(open_core().db)
    repo.add("box", fake.url, "secret")
    repo.record_check("box", {"kind": "openai-compatible", "models": [MODEL], "model": MODEL,
                              "n_ctx": 2048, "features": {}, "reasons": {}})
    code, out, _err = _chat(capsys, "--engine", "box", "--json", "Hi")
    assert code == 0
    first: dict[str, Any] = json.loads(out)
    assert first["model"] == MODEL and first["finish_reason"] == "stop"
    assert len(fake.requests) == 1  # the saved check is used: no probe before the chat
    reply = _stored_reply(first["conversation_id"])
    assert reply.content == first["text"] and reply.metadata["engine"] == "box"
    code, out, _err = _chat(capsys, "--engine", "box", "--json", "--continue",
                            first["conversation_id"], "And again?")
    assert code == 0
    # The engine saw the whole branch: the first turn, then the new message.
    roles = [m["role"] for m in fake.requests[-1]["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "user"]


def test_engine_killed_mid_stream_keeps_the_stored_reply_as_interrupted(
        fake: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
    fake.mode = "killed"
    code, out, err = _chat(capsys, "--engine", fake.url, "Hi")
    assert code == 0
    reply = _stored_reply()
    assert reply.finish_reason == "interrupted" and reply.content == "Hello there,"
    assert out == reply.content + "\n"
    assert "kept" in err and any("kept" in n for n in reply.metadata["notes"])


def test_engine_error_is_one_line_and_the_reply_is_marked_failed(
        fake: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
    fake.mode = "500"
    code, _out, err = _chat(capsys, "--engine", fake.url, "Hi")
    assert code != 0 and "the GPU caught fire" in err and "Traceback" not in err
    assert _stored_reply().finish_reason == "error"


def test_a_model_the_engine_lacks_is_refused(
        fake: FakeEngine, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _chat(capsys, "--engine", fake.url, "-m", "gpt-9", "Hi")
    assert code != 0 and "has no model 'gpt-9'" in err
    assert ChatRepository(open_core().db).list_conversations() == []


# the real peer: slmdesk serve with the 135M model ----------------------------------------------
@pytest.fixture(scope="module")
def serve(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    yield from _served(tmp_path_factory.mktemp("serve-home"), with_model=True)


@pytest.mark.model
def test_chat_through_slmdesk_serve_round_trip(
        serve: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _chat(capsys, "--engine", serve.base_url, "--api-key", TOKEN,
                            "--max-tokens", "12", "--seed", "1", "Say hello.")
    assert code == 0
    reply = _stored_reply()
    assert reply.content and out == reply.content + "\n"
    assert reply.finish_reason in ("stop", "length")
    assert reply.completion_tokens and reply.prompt_tokens
    assert reply.metadata["engine_url"] == serve.base_url.removesuffix("/v1")
