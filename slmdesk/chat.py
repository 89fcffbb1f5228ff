"""One chat turn, the same for the GUI and the CLI: store the message, save the reply as it grows.

The caller owns the transport of text (the CLI calls the engine directly, the GUI receives
chunks from the engine thread); both go through ``ChatService`` (``start_turn``,
``regenerate``, ``edit_and_resend``) and a ``ReplyWriter`` so the database sees the same
writes either way. The engine only ever sees the current branch of a conversation.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.errors import (
    DiskFullError,
    InvalidInputError,
    NotFoundError,
    UnsupportedFeatureError,
)
from slmdesk.settings import model_defaults
from slmdesk.store.chats import (
    FLUSH_INTERVAL_S,
    STATUS_STREAMING,
    ChatRepository,
    Conversation,
    Message,
    title_from,
)
from slmdesk.store.db import disk_full_is_user_facing
from slmdesk.store.engines import RemoteModel
from slmdesk.store.models import ModelRecord

# The model a turn is written by: a registered file, or a model on a remote engine (which
# has no ``models`` row: its conversation and messages keep no model_id, the reply's
# metadata names it and its engine).
ChatModel = ModelRecord | RemoteModel

# A reply records the system prompt it was written under (the Markdown export shows where
# it changed within a chat; transfer.py reads the same key).
SYSTEM_PROMPT_KEY = "system_prompt"
CONTINUABLE = frozenset({"cancelled", "length", "interrupted"})  # replies Continue goes on


@dataclass
class Turn:
    """A user message, committed, and the assistant reply that is about to stream."""

    conversation: Conversation
    user_message: Message
    reply: Message
    history: list[dict[str, str]]  # what the engine sees, system prompt first
    sampling: SamplingParams
    continued: str = ""  # Continue: the reply's text so far, which the engine goes on from
    continued_tokens: int = 0  # and its tokens, added to the new ones when it finishes


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET  # "leave as it is", where None is a value


def engine_history(
    conversation: Conversation, path_messages: list[Message]
) -> list[dict[str, str]]:
    """One branch as the engine's message list, system prompt first.

    ``path_messages`` is a path from the root (``ChatRepository.path`` or ``path_to``),
    never all of the conversation's messages: other branches are not part of the story.
    """
    out: list[dict[str, str]] = []
    if conversation.system_prompt:
        out.append({"role": "system", "content": conversation.system_prompt})
    for m in path_messages:
        if m.status == STATUS_STREAMING or m.role not in ("user", "assistant", "system"):
            continue
        if m.role == "assistant" and not m.content:
            continue  # a reply that failed before any text adds nothing
        out.append({"role": m.role, "content": m.content})
    return out


class ReplyWriter:
    """Saves a streaming reply as it grows and finishes it with its metrics."""

    def __init__(
        self,
        chats: ChatRepository,
        message_id: str,
        *,
        interval_s: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        continued: str = "",
        continued_tokens: int = 0,
    ) -> None:
        self.chats = chats
        self.message_id = message_id
        self.interval_s = interval_s
        self.clock = clock
        # A continued reply keeps what it had; the new text is appended to it.
        self.parts: list[str] = [continued] if continued else []
        self.continued_tokens = continued_tokens
        self._flushed_len = len(continued)
        self._appended = False
        self._last_flush = clock()
        self.finished: Message | None = None
        # Why the text on disk lags behind (the disk is full); the text stays in memory.
        self.save_error: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def append(self, text: str) -> None:
        if not text:
            return
        first = not self._appended
        self._appended = True
        self.parts.append(text)
        # Flush the first piece at once (the person sees the reply start), then on a timer.
        if first or self.clock() - self._last_flush >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        text = self.text
        if len(text) != self._flushed_len:
            try:
                with disk_full_is_user_facing("the reply"):
                    self.chats.update_streaming_text(self.message_id, text)
            except DiskFullError as exc:
                # The reply goes on streaming into memory; the next flush tries again and
                # finish() says so if the disk is still full then.
                self.save_error = exc.message
            else:
                self._flushed_len = len(text)
                self.save_error = None
        self._last_flush = self.clock()

    def finish(self, result: GenerationResult, *, model: ChatModel | None = None) -> Message:
        meta: dict[str, Any] = result.metadata()
        if model is not None:
            meta["model_name"] = model.name
        if isinstance(model, RemoteModel):
            meta.update(model.reply_metadata())
        try:
            with disk_full_is_user_facing("the reply"):
                self.finished = self.chats.finish_message(
                    self.message_id,
                    content=self.text,
                    finish_reason=result.finish_reason,
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens + self.continued_tokens,
                    ttft_s=result.ttft_s,
                    tokens_per_s=result.tokens_per_s,
                    duration_s=result.duration_s,
                    metadata=meta,
                )
        except DiskFullError as exc:
            saved = self._flushed_len
            self.save_error = exc.message
            raise DiskFullError(
                f"The disk is full: the reply could not be saved ({saved} of its "
                f"{len(self.text)} characters are on disk; the rest is only on screen). Free "
                "some disk space; the next start keeps the saved part, marked interrupted."
            ) from exc
        return self.finished

    def fail(self, error: str) -> Message:
        result = GenerationResult(finish_reason="error", error=error)
        return self.finish(result)


class ChatService:
    """Starts turns in conversations; shared by the GUI and the CLI."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.chats = ChatRepository(db)

    def new_conversation(
        self,
        *,
        model: ChatModel | None,
        system_prompt: str | None = None,
        sampling: SamplingParams | None = None,
        title: str = "New chat",
    ) -> Conversation:
        """A conversation with ``model``; what is not given comes from the model's defaults
        (``model_defaults``: its own where saved, else the app's settings)."""
        defaults = model_defaults(self.db, model.id if model else None)
        with disk_full_is_user_facing("the new conversation"):
            return self.chats.create_conversation(
                title=title,
                model_id=model.id if model else None,
                system_prompt=defaults.system_prompt if system_prompt is None else system_prompt,
                params=(sampling or defaults.sampling).to_json(),
            )

    def _message_of(self, conversation: Conversation, message_id: str) -> Message:
        message = self.chats.get_message(message_id)
        if message.conversation_id != conversation.id:
            raise NotFoundError(
                f"No message with id {message_id} in conversation {conversation.id}."
            )
        return message

    def _reply_to_redo(self, conversation: Conversation, message_id: str, *,
                       allowed: Callable[[Message], bool], refused: str,
                       answers_nothing: str) -> tuple[Conversation, Message, str]:
        """The conversation as stored, its assistant reply ``message_id`` and the id of the
        message it answers, for regenerating or continuing it: ``InvalidInputError(refused)``
        when it is not a reply or ``allowed`` says no, ``(answers_nothing)`` when it has no
        parent."""
        conversation = self.chats.get_conversation(conversation.id)
        reply = self._message_of(conversation, message_id)
        if reply.role != "assistant" or not allowed(reply):
            raise InvalidInputError(refused)
        if reply.parent_id is None:
            raise InvalidInputError(answers_nothing)
        return conversation, reply, reply.parent_id

    def _use_model(self, conversation: Conversation, model: ChatModel) -> Conversation:
        # A remote model has no row to point at: the conversation keeps its local model.
        if model.id is not None and conversation.model_id != model.id:
            return self.chats.update_conversation(conversation.id, model_id=model.id)
        return conversation

    def _reply_under(
        self,
        conversation: Conversation,
        parent: Message,
        *,
        model: ChatModel,
        sampling: SamplingParams | None,
    ) -> Turn:
        """Commit a streaming reply placeholder under ``parent``, the branch's new leaf."""
        history = engine_history(conversation, self.chats.path_to(parent.id))
        reply = self.chats.append_message(
            conversation.id,
            "assistant",
            "",
            parent_id=parent.id,
            status=STATUS_STREAMING,
            model_id=model.id,
            metadata={SYSTEM_PROMPT_KEY: conversation.system_prompt or ""},
        )
        params = sampling or SamplingParams.from_json(conversation.params)
        conversation = self.chats.get_conversation(conversation.id)
        return Turn(conversation, parent, reply, history, params)

    def start_turn(
        self,
        conversation: Conversation,
        text: str,
        *,
        model: ChatModel,
        sampling: SamplingParams | None = None,
    ) -> Turn:
        """Commit the user's message and a reply placeholder at the end of the branch shown.

        Returns what to generate: the history is the current branch, ending with ``text``.
        """
        if not text.strip():
            raise InvalidInputError("The message is empty.")
        conversation = self.chats.get_conversation(conversation.id)
        with disk_full_is_user_facing("your message"):
            if conversation.title == "New chat":
                conversation = self.chats.update_conversation(
                    conversation.id, title=title_from(text))
            conversation = self._use_model(conversation, model)
            with self.db.atomic():
                user = self.chats.append_message(conversation.id, "user", text)
                return self._reply_under(conversation, user, model=model, sampling=sampling)

    def regenerate(self, conversation: Conversation, assistant_message_id: str, *,
                   model: ChatModel, sampling: SamplingParams | None = None) -> Turn:
        """Answer the same message again: a new reply beside the old one, which is kept.

        The history runs up to the replied-to message; ``Turn.user_message`` is that message.
        """
        conversation, _old, parent_id = self._reply_to_redo(
            conversation, assistant_message_id, allowed=lambda _reply: True,
            refused="Only a reply of the assistant can be regenerated.",
            answers_nothing="This reply answers no message, so it cannot be regenerated.")
        parent = self.chats.get_message(parent_id)
        with disk_full_is_user_facing("the new reply"):
            conversation = self._use_model(conversation, model)
            with self.db.atomic():
                return self._reply_under(conversation, parent, model=model, sampling=sampling)

    def edit_and_resend(
        self,
        conversation: Conversation,
        user_message_id: str,
        new_text: str,
        *,
        model: ChatModel,
        sampling: SamplingParams | None = None,
    ) -> Turn:
        """Send an edited message in place of an earlier one, as a new branch from there.

        The edited message becomes a sibling of the original (a new root when the first
        message is edited); the original and everything after it are kept.
        """
        if not new_text.strip():
            raise InvalidInputError("The message is empty.")
        conversation = self.chats.get_conversation(conversation.id)
        old = self._message_of(conversation, user_message_id)
        if old.role != "user":
            raise InvalidInputError("Only a message you wrote can be edited and sent again.")
        with disk_full_is_user_facing("your message"):
            conversation = self._use_model(conversation, model)
            with self.db.atomic():
                user = self.chats.append_message(
                    conversation.id, "user", new_text, parent_id=old.parent_id
                )
                return self._reply_under(conversation, user, model=model, sampling=sampling)

    def continue_reply(self, conversation: Conversation, assistant_message_id: str, *,
                       model: ChatModel, sampling: SamplingParams | None = None) -> Turn:
        """Go on writing a reply that was stopped or cut at the token limit, in place.

        The reply is marked streaming again (a crash meanwhile marks it interrupted, its
        text kept); the engine continues from its saved text (``Turn.continued``).
        """
        if isinstance(model, RemoteModel):
            # Refused before the reply is touched: it keeps its text and finish reason.
            raise UnsupportedFeatureError(
                f"{model.name} on the remote engine {model.engine_name} cannot continue a "
                "reply (OpenAI's chat API has no way to go on from a reply's text); "
                "regenerate it instead.")
        conversation, old, parent_id = self._reply_to_redo(
            conversation, assistant_message_id,
            allowed=lambda reply: reply.finish_reason in CONTINUABLE,
            refused="Only a stopped or cut-off reply can be continued.",
            answers_nothing="This reply answers no message, so it cannot go on.")
        history = engine_history(conversation, self.chats.path_to(parent_id))
        with disk_full_is_user_facing("the reply"):
            conversation = self._use_model(conversation, model)
            with self.db.atomic():
                self.db.execute(
                    "UPDATE messages SET status = ?, writer_pid = ? WHERE id = ?",
                    [STATUS_STREAMING, os.getpid(), old.id],
                )
                self.chats.set_leaf(conversation.id, old.id)
        params = sampling or SamplingParams.from_json(conversation.params)
        return Turn(self.chats.get_conversation(conversation.id),
                    self.chats.get_message(parent_id), self.chats.get_message(old.id),
                    history, params, continued=old.content,
                    continued_tokens=old.completion_tokens or 0)

    def delete_message(self, conversation: Conversation, message_id: str) -> int:
        """Delete a message and everything below it on its branch; returns how many.

        Other branches stay. The chat then shows the branch through the deleted message's
        parent (or another first message); an emptied chat stays, empty.
        """
        conversation = self.chats.get_conversation(conversation.id)
        message = self._message_of(conversation, message_id)
        if message.status == STATUS_STREAMING:
            raise InvalidInputError("Stop the reply before deleting it.")
        with disk_full_is_user_facing("the deletion"), self.db.atomic():
            cursor = self.db.execute(
                """
                WITH RECURSIVE below(id, depth) AS (
                    SELECT :start, 0
                    UNION ALL
                    SELECT m.id, below.depth + 1 FROM messages m JOIN below
                    ON m.parent_id = below.id AND m.conversation_id = :cid
                    WHERE below.depth < (SELECT count(*) FROM messages
                                         WHERE conversation_id = :cid)
                )
                DELETE FROM messages WHERE id IN (SELECT id FROM below)
                """,
                {"start": message.id, "cid": conversation.id},
            )
            removed = int(cursor.rowcount)
            if message.parent_id is not None:
                self.chats.switch_branch(message.parent_id)
            else:
                roots = [m for m in self.chats.messages(conversation.id) if m.parent_id is None]
                if roots:
                    self.chats.switch_branch(roots[-1].id)
        return removed

    def update_settings(
        self,
        conversation: Conversation,
        *,
        system_prompt: str | _Unset | None = UNSET,
        sampling: SamplingParams | None = None,
    ) -> Conversation:
        """Store the conversation's system prompt and/or sampling parameters.

        ``system_prompt=None`` removes the system prompt; leaving an argument out keeps
        what is stored.
        """
        fields: dict[str, Any] = {}
        if not isinstance(system_prompt, _Unset):
            fields["system_prompt"] = system_prompt
        if sampling is not None:
            fields["params"] = sampling.to_json()
        if not fields:
            return self.chats.get_conversation(conversation.id)
        return self.chats.update_conversation(conversation.id, **fields)
