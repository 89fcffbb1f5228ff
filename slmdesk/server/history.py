"""API conversations kept in the chat history: each chat request and its reply, written as it grows.

Off unless ``ServerConfig.keep_chats``. A request becomes a conversation (title from its
first user message, prefixed ``API:``, every message marked ``source: api`` in its
metadata); a request whose messages extend an earlier stored conversation (the exact
messages, the reply included) is appended to it. Writes run in order on one thread that
owns its own connection, so the asyncio loop and the engine thread never wait for SQLite.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlite_utils

from slmdesk.engine.params import GenerationResult
from slmdesk.paths import Paths
from slmdesk.store.api_chats import SOURCE_API, SOURCE_KEY, THREAD_KEY, find_api_reply
from slmdesk.store.chats import FLUSH_INTERVAL_S, STATUS_STREAMING, ChatRepository, title_from
from slmdesk.store.db import open_database
from slmdesk.store.models import ModelRecord

log = logging.getLogger(__name__)
TITLE_PREFIX = "API: "
# How long a stopping server waits for running replies to end before it finishes them as
# interrupted itself (the window's engine ends a cancelled reply at its next token).
CLOSE_TIMEOUT_S = 10.0
Messages = list[dict[str, str]]


def thread_key(messages: Messages) -> str:
    """A digest of a conversation's messages (roles and texts, in order)."""
    pairs = [[m["role"], m["content"]] for m in messages]
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()


def finish_reason_of(future: concurrent.futures.Future[Any]) -> tuple[str, GenerationResult | None]:
    """How a reply ended, as the store says it: a stop by the client or the server is
    ``interrupted``."""
    if future.cancelled():
        return "interrupted", None
    error = future.exception()
    if error is not None:
        return "error", None
    result: GenerationResult = future.result()
    if result.finish_reason == "cancelled":
        return "interrupted", result
    return result.finish_reason, result


class ApiChatHistory:
    """Stores API conversations in the app's database (the window's own chat history).

    ``on_saved`` is called with a conversation's id, on the history's thread, each time a
    request is added to it.
    """

    def __init__(self, paths: Paths, on_saved: Callable[[str], None] | None = None) -> None:
        self.paths = paths
        self.on_saved = on_saved
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="slmdesk-api-history")
        self._db: sqlite_utils.Database | None = None
        self._lock = threading.Lock()
        self._open: set[StoredReply] = set()  # begun, not ended yet

    def _chats(self) -> ChatRepository:
        if self._db is None:  # opened on the history's own thread, used only there
            self._db = open_database(self.paths.database)
        return ChatRepository(self._db)

    def submit(self, write: Callable[[ChatRepository], None]) -> bool:
        """Run ``write`` after the writes before it; a failure is logged, never raised.
        False when the history is closed already (nothing runs)."""

        def run() -> None:
            try:
                write(self._chats())
            except Exception:  # thread boundary: the reply goes on regardless
                log.exception("could not store an API conversation")

        try:
            self._executor.submit(run)
        except RuntimeError:  # shut down: the server has stopped
            log.warning("the API chat history is closed; a write was dropped")
            return False
        return True

    def reply(self, messages: Messages, model: ModelRecord) -> StoredReply:
        return StoredReply(self, messages, model)

    def remember(self, reply: StoredReply) -> None:
        """``reply`` began: ``close`` waits for its end."""
        with self._lock:
            self._open.add(reply)

    def forget(self, reply: StoredReply) -> None:
        with self._lock:
            self._open.discard(reply)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Wait (up to ``timeout``) for the replies that run to end, finish those that do not
        as interrupted, write what was asked for, then close the connection (once)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            running = list(self._open)
        for reply in running:
            try:
                reply.done.result(max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                reply.interrupt()
        try:
            self._executor.submit(self._close_db)
        except RuntimeError:  # closed already
            return
        self._executor.shutdown(wait=True)

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class StoredReply:
    """One request's messages and its reply in the history; methods are thread-safe."""

    def __init__(self, history: ApiChatHistory, messages: Messages, model: ModelRecord) -> None:
        self.history = history
        self.messages = messages
        self.model = model
        self._lock = threading.Lock()
        self._text = ""
        self._flushed_at = 0.0
        self._reply_id: str | None = None  # set on the history's thread
        self._begun = False
        self._ended = False
        self.done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def begin(self) -> None:
        """The reply starts: store the request's messages and an empty streaming reply."""
        with self._lock:
            self._begun = True
        self.history.remember(self)
        self.history.submit(self._write_request)

    def grow(self, piece: str) -> None:
        """More of the reply's text; reaches the disk at least every ``FLUSH_INTERVAL_S``."""
        with self._lock:
            self._text += piece
            now = time.monotonic()
            if now - self._flushed_at < FLUSH_INTERVAL_S:
                return
            self._flushed_at = now
            text = self._text
        self.history.submit(lambda chats: self._write_text(chats, text))

    def end(self, future: concurrent.futures.Future[Any]) -> None:
        """The engine is done with the request (``future`` is its job's): finish the reply."""
        self._finish(*finish_reason_of(future))

    def interrupt(self) -> None:
        """Finish the reply as interrupted with the text it has (the server stops and the
        engine has not ended it); a later ``end`` changes nothing."""
        self._finish("interrupted", None)

    def _finish(self, reason: str, result: GenerationResult | None) -> None:
        with self._lock:
            begun, ended, text = self._begun, self._ended, self._text
            self._ended = True
        if ended:
            return
        self.history.forget(self)
        if not begun:  # refused before the reply began: nothing was stored
            self.done.set_result(None)
            return
        content = result.text if result is not None and reason != "interrupted" else text

        def write(chats: ChatRepository) -> None:
            try:
                self._write_end(chats, content, reason, result)
            finally:
                self.done.set_result(None)

        if not self.history.submit(write):
            self.done.set_result(None)

    # on the history's thread -----------------------------------------------------------
    def _write_request(self, chats: ChatRepository) -> None:
        marked = {SOURCE_KEY: SOURCE_API}
        parent, new = self._continued(chats)
        if parent is None:
            system = new[0]["content"] if new and new[0]["role"] == "system" else None
            if system is not None:
                new = new[1:]
            first_user = next((m["content"] for m in new if m["role"] == "user"), "")
            conversation = chats.create_conversation(
                title=TITLE_PREFIX + title_from(first_user), model_id=self.model.id,
                system_prompt=system)
            cid = conversation.id
        else:
            cid = chats.get_message(parent).conversation_id
        for message in new:
            parent = chats.append_message(cid, message["role"], message["content"],
                                          parent_id=parent, metadata=marked).id
        self._reply_id = chats.append_message(
            cid, "assistant", "", parent_id=parent, status=STATUS_STREAMING,
            model_id=self.model.id, metadata=marked).id
        if self.history.on_saved is not None:
            self.history.on_saved(cid)

    def _continued(self, chats: ChatRepository) -> tuple[str | None, Messages]:
        """The stored reply these messages go on from (longest match) and the messages
        after it; (None, all of them) when they start a new conversation."""
        for end in range(len(self.messages) - 1, 0, -1):
            if self.messages[end - 1]["role"] != "assistant":
                continue
            reply = find_api_reply(chats.db, thread_key(self.messages[:end]))
            if reply is not None:
                return reply, self.messages[end:]
        return None, list(self.messages)

    def _write_text(self, chats: ChatRepository, text: str) -> None:
        if self._reply_id is not None:
            chats.update_streaming_text(self._reply_id, text)

    def _write_end(self, chats: ChatRepository, content: str, reason: str,
                   result: GenerationResult | None) -> None:
        if self._reply_id is None:
            return
        whole = [*self.messages, {"role": "assistant", "content": content}]
        metadata = {SOURCE_KEY: SOURCE_API, THREAD_KEY: thread_key(whole)}
        if result is None:
            chats.finish_message(self._reply_id, content=content, finish_reason=reason,
                                 metadata=metadata)
            return
        chats.finish_message(
            self._reply_id, content=content, finish_reason=reason,
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            ttft_s=result.ttft_s, tokens_per_s=result.tokens_per_s,
            duration_s=result.duration_s, metadata=metadata)
