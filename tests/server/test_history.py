"""API conversations in the chat history (``keep_chats``), through the official `openai` client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.server.runner import LocalServer
from slmdesk.store.chats import STATUS_COMPLETE, ChatRepository, Conversation, Message
from slmdesk.store.db import open_database
from tests.server.conftest import TOKEN, _served

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def keeping(model_path: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[LocalServer]:
    """The server with the 135M model and ``keep_chats`` on."""
    yield from _served(tmp_path_factory.mktemp("keep-home"), with_model=True, keep_chats=True)


def _client(server: LocalServer) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=server.base_url, api_key=TOKEN, max_retries=0, timeout=60)


def _model(server: LocalServer) -> str:
    assert server.model is not None
    return server.model.name


def _unique_question() -> str:
    return f"Say hello to visitor {uuid.uuid4().hex[:8]} in one short sentence."


def _read(server: LocalServer, work: Callable[[ChatRepository], Any]) -> Any:
    db = open_database(server.library.paths.database)
    try:
        return work(ChatRepository(db))
    finally:
        db.close()


def _conversations_with(server: LocalServer, text: str) -> list[Conversation]:
    """The stored conversations one of whose messages is ``text``."""
    def find(chats: ChatRepository) -> list[Conversation]:
        return [c for c in chats.list_conversations()
                if any(m.content == text for m in chats.messages(c.id))]
    found: list[Conversation] = _read(server, find)
    return found


def _path(server: LocalServer, conversation: Conversation) -> list[Message]:
    path: list[Message] = _read(server, lambda chats: chats.path(conversation.id))
    return path


def test_off_by_default_nothing_is_stored(served: LocalServer) -> None:
    assert not served.config.keep_chats
    reply = _client(served).chat.completions.create(
        model=_model(served), messages=[{"role": "user", "content": _unique_question()}],
        max_tokens=4)
    assert reply.choices[0].message.content is not None
    assert _read(served, lambda chats: chats.count_conversations()) == 0


def test_a_reply_is_stored_with_its_request(keeping: LocalServer) -> None:
    question = _unique_question()
    messages = [{"role": "system", "content": "You are brief."},
                {"role": "user", "content": question}]
    reply = _client(keeping).chat.completions.create(
        model=_model(keeping), messages=messages, max_tokens=8, temperature=0)
    [conversation] = _conversations_with(keeping, question)
    assert conversation.title.startswith("API: ")
    assert conversation.system_prompt == "You are brief."
    assert conversation.model_id == keeping.model.id  # type: ignore[union-attr]
    user, answer = _path(keeping, conversation)
    assert (user.role, user.content) == ("user", question)
    assert answer.role == "assistant" and answer.status == STATUS_COMPLETE
    assert answer.content == reply.choices[0].message.content  # stored when answered
    assert answer.finish_reason == reply.choices[0].finish_reason
    assert answer.completion_tokens == reply.usage.completion_tokens
    assert user.metadata["source"] == answer.metadata["source"] == "api"


def test_a_streamed_reply_is_stored_as_streamed(keeping: LocalServer) -> None:
    question = _unique_question()
    stream = _client(keeping).chat.completions.create(
        model=_model(keeping), messages=[{"role": "user", "content": question}],
        max_tokens=16, temperature=0, stream=True)
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices
              and c.choices[0].finish_reason]
    [conversation] = _conversations_with(keeping, question)
    _user, answer = _path(keeping, conversation)
    assert streamed and answer.content == streamed  # in the history by [DONE]
    assert [answer.finish_reason] == finish


def test_a_follow_up_is_appended_to_its_conversation(keeping: LocalServer) -> None:
    client = _client(keeping)
    question = _unique_question()
    messages: list[dict[str, str]] = [{"role": "user", "content": question}]
    first = client.chat.completions.create(model=_model(keeping), messages=messages,
                                           max_tokens=8, temperature=0)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "And once more, please."}]
    second = client.chat.completions.create(model=_model(keeping), messages=messages,
                                            max_tokens=8, temperature=0)
    [conversation] = _conversations_with(keeping, question)
    path = _path(keeping, conversation)
    stored = [(m.role, m.content) for m in path]
    assert stored == [(m["role"], m["content"]) for m in messages] + [
        ("assistant", second.choices[0].message.content)]
    # A request that changes an earlier message starts a conversation of its own.
    changed = [{"role": "user", "content": question},
               {"role": "assistant", "content": "Something else entirely."},
               {"role": "user", "content": "And once more, please."}]
    client.chat.completions.create(model=_model(keeping), messages=changed, max_tokens=4)
    assert len(_conversations_with(keeping, question)) == 2


def test_a_client_that_leaves_leaves_an_interrupted_reply(keeping: LocalServer) -> None:
    question = "Write a very long story about visitor " + uuid.uuid4().hex[:8] + "."
    stream = _client(keeping).chat.completions.create(
        model=_model(keeping), messages=[{"role": "user", "content": question}],
        max_tokens=2000, temperature=1.0, seed=1, stream=True)
    received = ""
    for i, chunk in enumerate(stream):
        received += chunk.choices[0].delta.content or ""
        if i >= 4:
            break
    stream.close()
    deadline = time.monotonic() + 10
    answer = None
    while time.monotonic() < deadline:
        found = _conversations_with(keeping, question)
        if found:
            answer = _path(keeping, found[0])[-1]
            if answer.status == STATUS_COMPLETE:
                break
        time.sleep(0.05)
    assert answer is not None and answer.status == STATUS_COMPLETE
    assert answer.finish_reason == "interrupted"
    assert answer.content.startswith(received)  # what the client saw is kept, and more


def test_a_reply_running_when_the_server_stops_is_kept_as_interrupted(
        model_path: Path, tmp_path: Path) -> None:
    served = _served(tmp_path / "home", with_model=True, keep_chats=True)
    server = next(served)
    question = "Write a very long story about visitor " + uuid.uuid4().hex[:8] + "."
    stream = _client(server).chat.completions.create(
        model=_model(server), messages=[{"role": "user", "content": question}],
        max_tokens=2000, temperature=1.0, seed=1, stream=True)
    received = ""
    for i, chunk in enumerate(stream):
        received += chunk.choices[0].delta.content or ""
        if i >= 4:
            break
    next(served, None)  # stops the server while the reply still runs
    stream.close()
    [conversation] = _conversations_with(server, question)
    answer = _path(server, conversation)[-1]
    assert (answer.status, answer.finish_reason) == (STATUS_COMPLETE, "interrupted")
    assert answer.content.startswith(received)
