"""API conversations in the chat history (server/history.py): through the official `openai`
client with the 135M model, and the history's own rules without a model."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.engine.params import GenerationResult
from slmdesk.server.history import ApiChatHistory
from slmdesk.server.runner import LocalServer
from slmdesk.store.chats import STATUS_COMPLETE, ChatRepository, Conversation, Message
from slmdesk.store.db import open_database
from slmdesk.store.models import ModelRecord
from tests.server.conftest import TOKEN, _served


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


def _in_database(database: Path, work: Callable[[ChatRepository], Any]) -> Any:
    db = open_database(database)
    try:
        return work(ChatRepository(db))
    finally:
        db.close()


def _read(server: LocalServer, work: Callable[[ChatRepository], Any]) -> Any:
    return _in_database(server.library.paths.database, work)


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


def _long_story_begun(server: LocalServer) -> tuple[str, Any, str]:
    """A long streamed reply, its first chunks read: (the question, the stream, its text)."""
    question = "Write a very long story about visitor " + uuid.uuid4().hex[:8] + "."
    stream = _client(server).chat.completions.create(
        model=_model(server), messages=[{"role": "user", "content": question}],
        max_tokens=2000, temperature=1.0, seed=1, stream=True)
    received = ""
    for i, chunk in enumerate(stream):
        received += chunk.choices[0].delta.content or ""
        if i >= 4:
            break
    return question, stream, received


@pytest.mark.model
def test_off_by_default_nothing_is_stored(served: LocalServer) -> None:
    assert not served.config.keep_chats
    reply = _client(served).chat.completions.create(
        model=_model(served), messages=[{"role": "user", "content": _unique_question()}],
        max_tokens=4)
    assert reply.choices[0].message.content is not None
    assert _read(served, lambda chats: chats.count_conversations()) == 0


@pytest.mark.model
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


@pytest.mark.model
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


@pytest.mark.model
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


@pytest.mark.model
def test_a_client_that_leaves_leaves_an_interrupted_reply(keeping: LocalServer) -> None:
    question, stream, received = _long_story_begun(keeping)
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


@pytest.mark.model
def test_a_reply_running_when_the_server_stops_is_kept_as_interrupted(
        model_path: Path, tmp_path: Path) -> None:
    served = _served(tmp_path / "home", with_model=True, keep_chats=True)
    server = next(served)
    question, stream, received = _long_story_begun(server)
    # Stop as the window's Server tab does: cancel the requests, then the server (a plain
    # stop lets a stream run on for uvicorn's graceful 5 s, in which a fast machine may
    # finish the story: then it is rightly kept as complete).
    server.worker.stop()
    next(served, None)
    stream.close()
    [conversation] = _conversations_with(server, question)
    answer = _path(server, conversation)[-1]
    assert (answer.status, answer.finish_reason) == (STATUS_COMPLETE, "interrupted")
    assert answer.content.startswith(received)


# Without the model: the history's own rules ------------------------------------------------
@pytest.fixture
def history(tmp_path: Path) -> Iterator[tuple[ApiChatHistory, ModelRecord]]:
    from slmdesk.paths import get_paths
    from tests.unit.models import tiny_model

    paths = get_paths(str(tmp_path / "home")).ensure()
    db = open_database(paths.database)
    model = tiny_model(db)
    db.close()
    saved: list[str] = []
    kept = ApiChatHistory(paths, saved.append)
    yield kept, model
    kept.close()


def _stored(kept: ApiChatHistory, work: Callable[[ChatRepository], Any]) -> Any:
    return _in_database(kept.paths.database, work)


def _answered(kept: ApiChatHistory, model: ModelRecord, messages: list[dict[str, str]],
              text: str) -> None:
    reply = kept.reply(messages, model)
    reply.begin()
    reply.grow(text)
    done: concurrent.futures.Future[GenerationResult] = concurrent.futures.Future()
    done.set_result(GenerationResult(text=text, finish_reason="stop"))
    reply.end(done)
    reply.done.result(5)


def test_a_follow_up_goes_on_under_the_reply_it_repeats_even_on_another_branch(
        history: tuple[ApiChatHistory, ModelRecord]) -> None:
    kept, model = history
    first = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    _answered(kept, model, first, "Hello!")
    # The window's person adds a turn of their own; the API client goes on from the reply.
    cid = _stored(kept, lambda chats: chats.list_conversations()[0].id)
    _stored(kept, lambda chats: chats.append_message(cid, "user", "From the window"))
    follow = [*first, {"role": "assistant", "content": "Hello!"},
              {"role": "user", "content": "Again"}]
    _answered(kept, model, follow, "Hello again!")
    conversations = _stored(kept, lambda chats: chats.list_conversations())
    assert [c.id for c in conversations] == [cid]
    path = _stored(kept, lambda chats: chats.path(cid))
    assert [(m.role, m.content) for m in path] == [
        ("user", "Hi"), ("assistant", "Hello!"), ("user", "Again"),
        ("assistant", "Hello again!")]
    assert conversations[0].system_prompt == "Be brief."
    # A conversation in the bin is not gone on with: the follow-up starts a new one.
    _stored(kept, lambda chats: chats.delete_conversation(cid))
    _answered(kept, model, follow, "Hello once more!")
    assert len(_stored(kept, lambda chats: chats.list_conversations())) == 1


def test_closing_finishes_a_reply_the_engine_never_ended_as_interrupted(
        history: tuple[ApiChatHistory, ModelRecord]) -> None:
    kept, model = history
    reply = kept.reply([{"role": "user", "content": "Tell a story"}], model)
    reply.begin()
    reply.grow("Once upon")
    kept.close(timeout=0.1)
    done: concurrent.futures.Future[GenerationResult] = concurrent.futures.Future()
    done.set_result(GenerationResult(text="Once upon a time", finish_reason="stop"))
    reply.end(done)  # too late: changes nothing
    [conversation] = _stored(kept, lambda chats: chats.list_conversations())
    answer = _stored(kept, lambda chats: chats.path(conversation.id))[-1]
    assert (answer.content, answer.status, answer.finish_reason) == (
        "Once upon", STATUS_COMPLETE, "interrupted")


def test_a_request_refused_before_its_reply_began_leaves_nothing(
        history: tuple[ApiChatHistory, ModelRecord]) -> None:
    kept, model = history
    reply = kept.reply([{"role": "user", "content": "Too long"}], model)
    refused: concurrent.futures.Future[GenerationResult] = concurrent.futures.Future()
    refused.set_exception(RuntimeError("context overflow"))
    reply.end(refused)
    reply.done.result(5)
    assert _stored(kept, lambda chats: chats.count_conversations()) == 0
