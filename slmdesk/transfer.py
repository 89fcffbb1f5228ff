"""Conversations in and out of slmdesk: JSON (every branch, exact) and Markdown (what is shown).

``export_json`` writes everything the database keeps about a conversation, including the
branches that are not on screen; ``import_json`` reads such a file back in one transaction,
after checking its shape, so a bad file changes nothing. Plain Python, no Qt.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import sqlite_utils

from slmdesk.errors import InvalidInputError
from slmdesk.ids import new_id, utc_now
from slmdesk.store.chats import (
    FINISH_REASONS,
    STATUS_COMPLETE,
    STATUS_STREAMING,
    ChatRepository,
    Conversation,
    Message,
)

FORMAT = "slmdesk.conversation"
# The reply's metadata key for the system prompt it was written under (chat.py writes it;
# the services are independent layers, so each names it).
SYSTEM_PROMPT_KEY = "system_prompt"
VERSION = 1

_MAX_ID = 100
_ID = f"an id (1 to {_MAX_ID} printable characters)"
_OPT_ID = _ID + " or null"

# Conversation fields in the file, in the order they are written.
_CONVERSATION_KEYS = (
    "id", "title", "model_id", "system_prompt", "params", "pinned", "created_at",
    "updated_at", "leaf_id",
)


# -- export ------------------------------------------------------------------------------


def export_json(db: sqlite_utils.Database, conversation_id: str) -> dict[str, Any]:
    """The conversation with every message of every branch, as a JSON-ready dict."""
    chats = ChatRepository(db)
    conv = chats.get_conversation(conversation_id)
    data = conv.to_json()
    out: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    out.update({key: data[key] for key in _CONVERSATION_KEYS})
    out["messages"] = [m.to_json() for m in chats.messages(conv.id)]
    return out


def _system_prompt_of(message: Message) -> str | None:
    """The system prompt a reply was written under (None: not recorded, an older reply)."""
    prompt = message.metadata.get(SYSTEM_PROMPT_KEY)
    return prompt if isinstance(prompt, str) else None


def export_markdown(db: sqlite_utils.Database, conversation_id: str) -> str:
    """The branch on screen as Markdown, system prompt first.

    Each reply records the system prompt it was written under; where that changed within
    the chat, the new one is shown before the reply that first used it.
    """
    chats = ChatRepository(db)
    conv = chats.get_conversation(conversation_id)
    path = chats.path(conv.id)
    recorded = [p for p in map(_system_prompt_of, path) if p is not None]
    shown = recorded[0] if recorded else (conv.system_prompt or "")
    lines = [f"# {conv.title}", "", f"*Conversation {conv.id}, started {conv.created_at}*", ""]
    if shown:
        lines += ["**System:**", "", shown, ""]
    for m in path:
        who = {"user": "You", "assistant": "Assistant", "system": "System"}.get(m.role, m.role)
        prompt = _system_prompt_of(m) if m.role == "assistant" else None
        if prompt is not None and prompt != shown:
            lines += ["**System prompt changed to:**", "", prompt or "*(none)*", ""]
            shown = prompt
        lines += [f"## {who}", "", m.content, ""]
        if m.role == "assistant" and m.finish_reason and m.finish_reason != "stop":
            lines += [f"*({m.finish_reason})*", ""]
    return "\n".join(lines)


# -- shape checks -------------------------------------------------------------------------


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_id(v: Any) -> bool:
    # Ids end up in one-line error messages and in the window: no control characters.
    return isinstance(v, str) and 0 < len(v) <= _MAX_ID and v.isprintable()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        # The value itself, shortened: it says more than "text" would.
        return json.dumps(v[:40] + ("…" if len(v) > 40 else ""), ensure_ascii=False)
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN or infinity"
    return {bool: "true/false", int: "a number", float: "a number",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _field(
    obj: dict[str, Any],
    key: str,
    check: Callable[[Any], bool],
    wanted: str,
    where: str,
    default: Any = ...,
) -> Any:
    """``obj[key]`` after a type check; ``default`` when the key is absent (if allowed)."""
    if key not in obj:
        if default is ...:
            raise InvalidInputError(f"{where} has no \"{key}\".")
        return default
    value = obj[key]
    if not check(value):
        raise InvalidInputError(
            f"{where}: \"{key}\" must be {wanted}, not {_kind(value)}."
        )
    return value


_SAMPLING_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "temperature": (_is_number, "a number"),
    "top_p": (_is_number, "a number"),
    "top_k": (_is_int, "a whole number"),
    "min_p": (_is_number, "a number"),
    "repeat_penalty": (_is_number, "a number"),
    "max_tokens": (_is_int, "a whole number"),
    "seed": (_is_int, "a whole number"),
    "stop": (lambda v: isinstance(v, list) and all(_is_str(s) for s in v), "a list of text"),
}


def _check_params(params: dict[str, Any]) -> None:
    # The engine trusts these types; a file must not smuggle in a string temperature.
    for key, (check, wanted) in _SAMPLING_CHECKS.items():
        value = params.get(key)
        if value is not None and not check(value):
            raise InvalidInputError(
                f"The conversation's \"params\": \"{key}\" must be {wanted}, not {_kind(value)}."
            )


def _read_message(
    raw: Any, index: int, conversation_id: str, previous_id: str | None
) -> dict[str, Any]:
    """One message of the file as a database row (ids not yet remapped)."""
    where = f"Message {index + 1}"
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where} must be an object, not {_kind(raw)}.")
    text = "text"
    opt_text = "text or null"
    mid = _field(raw, "id", _is_id, _ID, where)
    where = f"Message {index + 1} ({mid})"
    owner = _field(raw, "conversation_id", _is_id, _ID, where, conversation_id)
    if owner != conversation_id:
        raise InvalidInputError(
            f"{where} belongs to conversation {owner}, not to {conversation_id}."
        )
    role = _field(raw, "role", lambda v: _is_str(v) and v != "", "non-empty text", where)
    status = _field(
        raw, "status", lambda v: v in (STATUS_COMPLETE, STATUS_STREAMING),
        f"\"{STATUS_COMPLETE}\" or \"{STATUS_STREAMING}\"", where, STATUS_COMPLETE,
    )
    finish_reason = _field(
        raw, "finish_reason", lambda v: v is None or v in FINISH_REASONS,
        "null or one of " + ", ".join(f'"{r}"' for r in FINISH_REASONS), where, None,
    )
    if status == STATUS_STREAMING:
        # No process is writing this reply any more: it is what a killed slmdesk left.
        status, finish_reason = STATUS_COMPLETE, "interrupted"
    now = utc_now()
    return {
        "id": mid,
        "conversation_id": conversation_id,
        # Absent: the message follows the one before it in the file; null: a root.
        "parent_id": _field(raw, "parent_id", _optional(_is_id), _OPT_ID, where, previous_id),
        "role": role,
        "content": _field(raw, "content", _is_str, text, where),
        "status": status,
        "finish_reason": finish_reason,
        "model_id": _field(raw, "model_id", _optional(_is_str), opt_text, where, None),
        "prompt_tokens": _field(
            raw, "prompt_tokens", _optional(_is_int), "a whole number or null", where, None
        ),
        "completion_tokens": _field(
            raw, "completion_tokens", _optional(_is_int), "a whole number or null", where, None
        ),
        "ttft_s": _field(raw, "ttft_s", _optional(_is_number), "a number or null", where, None),
        "tokens_per_s": _field(
            raw, "tokens_per_s", _optional(_is_number), "a number or null", where, None
        ),
        "duration_s": _field(
            raw, "duration_s", _optional(_is_number), "a number or null", where, None
        ),
        "metadata_json": json.dumps(
            _field(raw, "metadata", lambda v: isinstance(v, dict), "an object", where, {}),
            sort_keys=True,
        ),
        "writer_pid": None,
        "created_at": _field(raw, "created_at", _is_str, text, where, now),
        "updated_at": _field(raw, "updated_at", _is_str, text, where, now),
    }


def _insert_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parents before children (foreign keys are checked at once); refuses cycles."""
    by_id = {r["id"]: r for r in rows}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for index, r in enumerate(rows):
        if r["parent_id"] is not None and r["parent_id"] not in by_id:
            raise InvalidInputError(
                f"Message {index + 1} ({r['id']}) answers message {r['parent_id']}, "
                "which is not in the file."
            )
        children.setdefault(r["parent_id"], []).append(r)
    ordered: list[dict[str, Any]] = []
    todo = list(children.get(None, []))
    while todo:
        r = todo.pop()
        ordered.append(r)
        todo.extend(children.get(r["id"], []))
    if len(ordered) != len(rows):
        reached = {r["id"] for r in ordered}
        stuck = sorted(i for i in by_id if i not in reached)
        raise InvalidInputError(
            f"Messages {', '.join(stuck[:3])}{'…' if len(stuck) > 3 else ''} answer each "
            "other in a circle; the file is damaged."
        )
    return ordered


# -- import -------------------------------------------------------------------------------


def import_json(db: sqlite_utils.Database, data: Any) -> Conversation:
    """Add a conversation from ``export_json``'s format; all of it or, on any error, none.

    Ids are kept unless the conversation or one of its messages is already in the
    database; then the conversation and all its messages get new ids (in the same order,
    so newer stays newer). A model id is kept only when that model is registered here.
    A reply that was still streaming when exported arrives as interrupted.
    """
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"This is not an slmdesk conversation: expected a JSON object, not {_kind(data)}."
        )
    if data.get("format") != FORMAT:
        raise InvalidInputError(
            f"This is not an slmdesk conversation: \"format\" must be \"{FORMAT}\"."
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInputError("The file has no valid \"version\" (a whole number).")
    if version > VERSION:
        raise InvalidInputError(
            f"The file was written by a newer slmdesk (format version {version}); "
            "update slmdesk to import it."
        )
    where = "The conversation"
    now = utc_now()
    cid = _field(data, "id", _is_id, _ID, where, None)
    cid = cid or new_id()
    conv = {
        "id": cid,
        "title": _field(data, "title", _is_str, "text", where, "Imported chat"),
        "model_id": _field(data, "model_id", _optional(_is_str), "text or null", where, None),
        "system_prompt": _field(
            data, "system_prompt", _optional(_is_str), "text or null", where, None
        ),
        "params": _field(data, "params", lambda v: isinstance(v, dict), "an object", where, {}),
        "pinned": _field(data, "pinned", lambda v: isinstance(v, bool), "true or false",
                         where, False),
        "created_at": _field(data, "created_at", _is_str, "text", where, now),
        "updated_at": _field(data, "updated_at", _is_str, "text", where, now),
        "leaf_id": _field(data, "leaf_id", _optional(_is_id), _OPT_ID, where, None),
    }
    _check_params(conv["params"])
    raw_messages = _field(data, "messages", lambda v: isinstance(v, list), "a list", where)
    rows: list[dict[str, Any]] = []
    previous: str | None = None
    for index, raw in enumerate(raw_messages):
        row = _read_message(raw, index, cid, previous)
        rows.append(row)
        previous = row["id"]
    ids = [r["id"] for r in rows]
    seen: set[str] = set()
    for index, mid in enumerate(ids):
        if mid in seen:
            raise InvalidInputError(
                f"Message {index + 1} ({mid}): the id appears more than once."
            )
        seen.add(mid)
    if conv["leaf_id"] is not None and conv["leaf_id"] not in seen:
        raise InvalidInputError(
            f"The conversation's \"leaf_id\" {conv['leaf_id']} is not one of its messages."
        )
    rows = _insert_order(rows)
    return ChatRepository(db).insert_conversation(conv, rows)
