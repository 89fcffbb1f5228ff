"""Repositories over the slmdesk database; each returns plain dataclasses."""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

import sqlite_utils

from slmdesk.engine.params import SamplingParams
from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.ids import new_id, utc_now

# Persisted enum values: lowercase, never reused.
STATUS_STREAMING = "streaming"
STATUS_COMPLETE = "complete"
FINISH_REASONS = ("stop", "length", "cancelled", "error", "interrupted")


class _Leaf(enum.Enum):
    LEAF = "leaf"


# ``append_message``'s default parent: the last message of the conversation's current branch.
LEAF = _Leaf.LEAF


@dataclass(frozen=True)
class ModelRecord:
    id: str
    name: str
    path: str
    size_bytes: int
    architecture: str | None
    quantization: str | None
    parameter_count: int | None
    context_length: int | None
    licence: str | None
    source: str
    added_at: str
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    repo_id: str | None = None
    revision: str | None = None
    hub_filename: str | None = None
    estimated_memory_bytes: int | None = None
    measured_memory_bytes: int | None = None
    measured_context: int | None = None
    last_loaded_at: str | None = None

    @property
    def owns_file(self) -> bool:
        """slmdesk downloaded the file, so deleting the model may delete it."""
        return self.source == "download"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "architecture": self.architecture,
            "quantization": self.quantization,
            "parameter_count": self.parameter_count,
            "context_length": self.context_length,
            "licence": self.licence,
            "source": self.source,
            "sha256": self.sha256,
            "added_at": self.added_at,
            "exists": os.path.isfile(self.path),
            "repo_id": self.repo_id,
            "revision": self.revision,
            "hub_filename": self.hub_filename,
            "estimated_memory_bytes": self.estimated_memory_bytes,
            "measured_memory_bytes": self.measured_memory_bytes,
            "measured_context": self.measured_context,
            "last_loaded_at": self.last_loaded_at,
        }


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    model_id: str | None
    system_prompt: str | None
    params: dict[str, Any]
    pinned: bool
    created_at: str
    updated_at: str
    leaf_id: str | None = None  # last message of the branch on screen
    deleted_at: str | None = None  # set while the conversation is in the bin

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    parent_id: str | None
    role: str
    content: str
    status: str
    finish_reason: str | None
    model_id: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_s: float | None
    tokens_per_s: float | None
    duration_s: float | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _model_from_row(row: dict[str, Any]) -> ModelRecord:
    return ModelRecord(
        id=row["id"],
        name=row["name"],
        path=row["path"],
        size_bytes=row["size_bytes"],
        architecture=row["architecture"],
        quantization=row["quantization"],
        parameter_count=row["parameter_count"],
        context_length=row["context_length"],
        licence=row["licence"],
        source=row["source"],
        added_at=row["added_at"],
        sha256=row["sha256"],
        metadata=json.loads(row["metadata_json"] or "{}"),
        repo_id=row.get("repo_id"),
        revision=row.get("revision"),
        hub_filename=row.get("hub_filename"),
        estimated_memory_bytes=row.get("estimated_memory_bytes"),
        measured_memory_bytes=row.get("measured_memory_bytes"),
        measured_context=row.get("measured_context"),
        last_loaded_at=row.get("last_loaded_at"),
    )


def _conversation_from_row(row: dict[str, Any]) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        model_id=row["model_id"],
        system_prompt=row["system_prompt"],
        params=json.loads(row["params_json"] or "{}"),
        pinned=bool(row["pinned"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        leaf_id=row["leaf_id"],
        deleted_at=row["deleted_at"],
    )


_MESSAGE_COLUMNS = tuple(f.name for f in fields(Message) if f.name != "metadata")


def _message_from_row(row: dict[str, Any]) -> Message:
    return Message(
        **{name: row[name] for name in _MESSAGE_COLUMNS},
        metadata=json.loads(row["metadata_json"] or "{}"),
    )


class ModelRepository:
    """Registered model files."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def add(
        self,
        *,
        name: str,
        path: str,
        size_bytes: int,
        architecture: str | None,
        quantization: str | None,
        parameter_count: int | None,
        context_length: int | None,
        licence: str | None,
        source: str,
        sha256: str | None = None,
        metadata: dict[str, Any] | None = None,
        hub: tuple[str, str, str] | None = None,
    ) -> ModelRecord:
        """Register a model, or refresh the record when the path is already known.

        ``hub`` is (repo_id, revision, filename) for a file that came from the hub.
        """
        existing = self.get_by_path(path)
        row: dict[str, Any] = {
            "name": name,
            "path": path,
            "size_bytes": size_bytes,
            "architecture": architecture,
            "quantization": quantization,
            "parameter_count": parameter_count,
            "context_length": context_length,
            "licence": licence,
            "sha256": sha256,
            "metadata_json": json.dumps(metadata or {}, sort_keys=True),
        }
        if hub is not None:
            row["repo_id"], row["revision"], row["hub_filename"] = hub
        if sha256 is None and existing is not None:
            row.pop("sha256")  # a refresh without hashing keeps a verified hash
        with self.db.atomic():
            if existing is not None:
                self.db.table("models").update(existing.id, row)
                model_id = existing.id
            else:
                model_id = new_id()
                self.db.table("models").insert(
                    {"id": model_id, "source": source, "added_at": utc_now(), **row}
                )
        return self.get(model_id)

    def get(self, model_id: str) -> ModelRecord:
        rows = list(self.db.table("models").rows_where("id = ?", [model_id]))
        if not rows:
            raise NotFoundError(f"No model with id {model_id}.")
        return _model_from_row(rows[0])

    def get_by_path(self, path: str) -> ModelRecord | None:
        rows = list(self.db.table("models").rows_where("path = ?", [path]))
        return _model_from_row(rows[0]) if rows else None

    def list(self) -> list[ModelRecord]:
        return [
            _model_from_row(r)
            for r in self.db.table("models").rows_where(order_by="added_at, id")
        ]

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM models").fetchone()[0])

    def find(self, ref: str) -> ModelRecord:
        """Find a model by id, id prefix, exact name, or file name (case-insensitive)."""
        models = self.list()
        for m in models:
            if m.id == ref:
                return m
        needle = ref.casefold()
        predicates: list[Callable[[ModelRecord], bool]] = [
            lambda m: m.name.casefold() == needle,
            lambda m: os.path.basename(m.path).casefold() == needle,
            lambda m: m.id.casefold().startswith(needle) and len(needle) >= 4,
            lambda m: needle in m.name.casefold(),
        ]
        for pred in predicates:
            hits = [m for m in models if pred(m)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                names = ", ".join(h.name for h in hits)
                raise NotFoundError(f"'{ref}' matches several models: {names}.")
        raise NotFoundError(
            f"No model matches '{ref}'. See `slmdesk models list`."
        )

    def remove(self, model_id: str) -> None:
        with self.db.atomic():
            self.db.table("models").delete(model_id)

    def record_memory(
        self, model_id: str, *, estimated: int | None, measured: int | None, context: int
    ) -> None:
        """Keep the fit estimate and the measured memory of a load at ``context`` tokens.

        ``measured`` None (or 0, never a real figure) is stored as "not measured"."""
        with self.db.atomic():
            self.db.table("models").update(model_id, {
                "estimated_memory_bytes": estimated,
                "measured_memory_bytes": measured or None,
                "measured_context": context,
                "last_loaded_at": utc_now(),
            })


class SettingsRepository:
    """Key/value settings stored as JSON."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute(
            "SELECT value_json FROM settings WHERE key = ?", [key]
        ).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        with self.db.atomic():
            self.db.table("settings").upsert(
                {"key": key, "value_json": json.dumps(value)}, pk="key"
            )

    def all(self) -> dict[str, Any]:
        return {
            r["key"]: json.loads(r["value_json"]) for r in self.db.table("settings").rows
        }


def _writer_alive(pid: int | None, created_at: str | None) -> bool:
    """Whether the process that began a reply still runs.

    A pid can be reused (after a reboot, or a long time later): a process with that pid
    that started after the reply was created cannot be the one writing it.
    """
    if not _pid_alive(pid):
        return False
    assert pid is not None
    try:
        import psutil

        started = psutil.Process(pid).create_time()
        created = datetime.fromisoformat(created_at).timestamp() if created_at else None
    except (ImportError, ValueError, psutil.Error):
        return True  # cannot tell: leave the reply to the process that may own it
    # Two seconds of slack: create_time() is derived from clock ticks since boot.
    return created is None or started <= created + 2.0


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


_FTS_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: every word as a quoted prefix term."""
    words = _FTS_TOKEN.findall(text)
    return " ".join('"' + w.replace('"', "") + '"*' for w in words)


@dataclass(frozen=True)
class SearchHit:
    message: Message
    conversation_title: str
    snippet: str

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.message.conversation_id,
            "conversation_title": self.conversation_title,
            "message_id": self.message.id,
            "role": self.message.role,
            "snippet": self.snippet,
            "created_at": self.message.created_at,
        }


class ChatRepository:
    """Conversations and their messages, including replies that are still streaming.

    Messages form a tree through ``parent_id``: regenerating a reply or editing a message
    adds a sibling, and the old text stays as another branch. A conversation shows one
    path, from a root to its ``leaf_id``.
    """

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def _query(
        self, sql: str, params: list[Any] | dict[str, Any]
    ) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        cols = [c[0] for c in cursor.description]
        return [dict(zip(cols, r, strict=True)) for r in cursor.fetchall()]

    # conversations -----------------------------------------------------------------
    def create_conversation(
        self,
        *,
        title: str = "New chat",
        model_id: str | None = None,
        system_prompt: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Conversation:
        now = utc_now()
        cid = new_id()
        with self.db.atomic():
            self.db.table("conversations").insert(
                {
                    "id": cid,
                    "title": title,
                    "model_id": model_id,
                    "system_prompt": system_prompt,
                    "params_json": json.dumps(params or {}, sort_keys=True),
                    "pinned": 0,
                    "created_at": now,
                    "updated_at": now,
                    "leaf_id": None,
                    "deleted_at": None,
                }
            )
        return self.get_conversation(cid)

    def get_conversation(
        self, conversation_id: str, *, include_deleted: bool = False
    ) -> Conversation:
        rows = list(self.db.table("conversations").rows_where("id = ?", [conversation_id]))
        if not rows or (rows[0]["deleted_at"] is not None and not include_deleted):
            raise NotFoundError(f"No conversation with id {conversation_id}.")
        return _conversation_from_row(rows[0])

    def find_conversation(self, ref: str) -> Conversation:
        """Find a conversation by id or by a unique id prefix (at least 4 characters)."""
        table = self.db.table("conversations")
        rows = list(table.rows_where("id = ? AND deleted_at IS NULL", [ref]))
        if not rows and len(ref) >= 4:
            # A plain prefix comparison: LIKE would treat _ and % in the input as wildcards.
            rows = list(
                table.rows_where(
                    "substr(id, 1, ?) = ? AND deleted_at IS NULL", [len(ref), ref.upper()]
                )
            )
        if len(rows) != 1:
            raise NotFoundError(
                f"No conversation with id {ref}. See `slmdesk chats list`."
                if not rows
                else f"'{ref}' matches several conversations; give more of the id."
            )
        return _conversation_from_row(rows[0])

    def list_conversations(
        self, *, limit: int | None = None, offset: int = 0
    ) -> list[Conversation]:
        """Conversations not in the bin: pinned first, then the most recently updated."""
        sql = (
            "SELECT * FROM conversations WHERE deleted_at IS NULL "
            "ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT ? OFFSET ?"
        )
        rows = self._query(sql, [-1 if limit is None else limit, offset])
        return [_conversation_from_row(r) for r in rows]

    def count_conversations(self) -> int:
        """How many conversations are not in the bin."""
        row = self.db.execute(
            "SELECT count(*) FROM conversations WHERE deleted_at IS NULL"
        ).fetchone()
        return int(row[0])

    def update_conversation(self, conversation_id: str, **fields: Any) -> Conversation:
        allowed = {"title", "model_id", "system_prompt", "params", "pinned"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        row: dict[str, Any] = {k: v for k, v in fields.items() if k != "params"}
        if "params" in fields:
            row["params_json"] = json.dumps(fields["params"], sort_keys=True)
        if "pinned" in row:
            row["pinned"] = int(bool(row["pinned"]))
        row["updated_at"] = utc_now()
        self.get_conversation(conversation_id)
        with self.db.atomic():
            self.db.table("conversations").update(conversation_id, row)
        return self.get_conversation(conversation_id)

    def delete_conversation(self, conversation_id: str) -> None:
        """Move a conversation to the bin; ``restore_conversation`` undoes it until a purge."""
        self.get_conversation(conversation_id)
        with self.db.atomic():
            self.db.execute(
                "UPDATE conversations SET deleted_at = ? WHERE id = ?",
                [utc_now(), conversation_id],
            )

    def restore_conversation(self, conversation_id: str) -> Conversation:
        """Take a conversation out of the bin (nothing happens when it is not there)."""
        self.get_conversation(conversation_id, include_deleted=True)
        with self.db.atomic():
            self.db.execute(
                "UPDATE conversations SET deleted_at = NULL WHERE id = ?", [conversation_id]
            )
        return self.get_conversation(conversation_id)

    def purge_deleted(
        self, older_than: str | None = None, *, conversation_id: str | None = None
    ) -> int:
        """Delete conversations in the bin for good, with their messages.

        ``older_than`` (a UTC ISO timestamp) keeps those deleted at or after it;
        ``conversation_id`` purges only that one (if it is in the bin). Returns how many
        conversations were removed.
        """
        sql = "DELETE FROM conversations WHERE deleted_at IS NOT NULL"
        params: list[Any] = []
        if older_than is not None:
            sql += " AND deleted_at < ?"
            params.append(older_than)
        if conversation_id is not None:
            sql += " AND id = ?"
            params.append(conversation_id)
        with self.db.atomic():
            cursor = self.db.execute(sql, params)
        return int(cursor.rowcount)

    # messages ----------------------------------------------------------------------
    def _leaf_id(self, conversation_id: str) -> str | None:
        """The current leaf; the newest message when none is stored (or it is gone)."""
        row = self.db.execute(
            """
            SELECT coalesce(
                (SELECT m.id FROM messages m
                 WHERE m.id = c.leaf_id AND m.conversation_id = c.id),
                (SELECT max(m.id) FROM messages m WHERE m.conversation_id = c.id))
            FROM conversations c WHERE c.id = ?
            """,
            [conversation_id],
        ).fetchone()
        if row is None:
            raise NotFoundError(f"No conversation with id {conversation_id}.")
        return None if row[0] is None else str(row[0])

    def append_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        parent_id: str | _Leaf | None = LEAF,
        status: str = STATUS_COMPLETE,
        model_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Add a message and make it the conversation's leaf; committed on return.

        By default it follows the current leaf; ``parent_id`` puts it under another
        message of the conversation (a new branch), and ``None`` makes it a new root.
        """
        now = utc_now()
        mid = new_id()
        with self.db.atomic():
            if parent_id is LEAF:
                parent = self._leaf_id(conversation_id)
            else:
                parent = parent_id
                if parent is not None:
                    self._message_in(conversation_id, parent)
                elif not self.db.execute(
                    "SELECT 1 FROM conversations WHERE id = ?", [conversation_id]
                ).fetchone():
                    raise NotFoundError(f"No conversation with id {conversation_id}.")
            self.db.table("messages").insert(
                {
                    "id": mid,
                    "conversation_id": conversation_id,
                    "parent_id": parent,
                    "role": role,
                    "content": content,
                    "status": status,
                    "finish_reason": None,
                    "model_id": model_id,
                    "metadata_json": json.dumps(metadata or {}, sort_keys=True),
                    "writer_pid": os.getpid() if status == STATUS_STREAMING else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self.db.execute(
                "UPDATE conversations SET leaf_id = ?, updated_at = ? WHERE id = ?",
                [mid, now, conversation_id],
            )
        return self.get_message(mid)

    def get_message(self, message_id: str) -> Message:
        rows = list(self.db.table("messages").rows_where("id = ?", [message_id]))
        if not rows:
            raise NotFoundError(f"No message with id {message_id}.")
        return _message_from_row(rows[0])

    def _message_in(self, conversation_id: str, message_id: str) -> Message:
        message = self.get_message(message_id)
        if message.conversation_id != conversation_id:
            raise NotFoundError(
                f"No message with id {message_id} in conversation {conversation_id}."
            )
        return message

    def messages(self, conversation_id: str) -> list[Message]:
        """Every message of every branch, oldest first."""
        return [
            _message_from_row(r)
            for r in self.db.table("messages").rows_where(
                "conversation_id = ?", [conversation_id], order_by="id"
            )
        ]

    def count_messages(self, conversation_id: str) -> int:
        """How many messages the conversation has, on every branch."""
        row = self.db.execute(
            "SELECT count(*) FROM messages WHERE conversation_id = ?", [conversation_id]
        ).fetchone()
        return int(row[0])

    def path(self, conversation_id: str) -> list[Message]:
        """The current branch, root first: what the conversation shows and the engine sees."""
        leaf = self._leaf_id(conversation_id)
        return [] if leaf is None else self.path_to(leaf)

    def path_to(self, message_id: str) -> list[Message]:
        """The messages from the root down to ``message_id`` (included), root first."""
        message = self.get_message(message_id)
        # One query however long the chain is. The depth bound stops a damaged tree with a
        # cycle in it from looping forever.
        rows = self._query(
            """
            WITH RECURSIVE chain(id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM messages WHERE id = :leaf
                UNION ALL
                SELECT m.id, m.parent_id, chain.depth + 1
                FROM messages m JOIN chain ON m.id = chain.parent_id
                WHERE m.conversation_id = :cid
                  AND chain.depth < (SELECT count(*) FROM messages WHERE conversation_id = :cid)
            )
            SELECT m.* FROM chain JOIN messages m ON m.id = chain.id ORDER BY chain.depth DESC
            """,
            {"leaf": message_id, "cid": message.conversation_id},
        )
        return [_message_from_row(r) for r in rows]

    def siblings(self, message_id: str) -> list[Message]:
        """The message and the alternatives beside it (same parent), oldest first."""
        message = self.get_message(message_id)
        if message.parent_id is None:
            where, params = "conversation_id = ? AND parent_id IS NULL", [message.conversation_id]
        else:
            where = "conversation_id = ? AND parent_id = ?"
            params = [message.conversation_id, message.parent_id]
        return [
            _message_from_row(r)
            for r in self.db.table("messages").rows_where(where, params, order_by="id")
        ]

    def children(self, message_id: str) -> list[Message]:
        """The messages directly under ``message_id``, oldest first."""
        message = self.get_message(message_id)
        return [
            _message_from_row(r)
            for r in self.db.table("messages").rows_where(
                "conversation_id = ? AND parent_id = ?",
                [message.conversation_id, message_id],
                order_by="id",
            )
        ]

    def set_leaf(self, conversation_id: str, message_id: str) -> None:
        """Show the branch that ends at ``message_id``."""
        self._message_in(conversation_id, message_id)
        with self.db.atomic():
            self.db.execute(
                "UPDATE conversations SET leaf_id = ? WHERE id = ?", [message_id, conversation_id]
            )

    def switch_branch(self, message_id: str) -> list[Message]:
        """Show the branch through ``message_id``, down its newest replies; return its path."""
        message = self.get_message(message_id)
        row = self.db.execute(
            """
            WITH RECURSIVE down(id, depth) AS (
                SELECT :start, 0
                UNION ALL
                SELECT (SELECT max(c.id) FROM messages c
                        WHERE c.parent_id = down.id AND c.conversation_id = :cid),
                       down.depth + 1
                FROM down
                WHERE down.id IS NOT NULL
                  AND down.depth < (SELECT count(*) FROM messages WHERE conversation_id = :cid)
            )
            SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1
            """,
            {"start": message_id, "cid": message.conversation_id},
        ).fetchone()
        self.set_leaf(message.conversation_id, str(row[0]))
        return self.path(message.conversation_id)

    def update_streaming_text(self, message_id: str, content: str) -> None:
        """Save the text of a reply that is still growing (one small transaction)."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE messages SET content = ?, updated_at = ? WHERE id = ?",
                [content, utc_now(), message_id],
            )

    def set_rating(self, message_id: str, rating: int | None) -> Message:
        """Thumbs up (1), down (-1) or none (None) on a reply, kept in its metadata."""
        if rating not in (None, -1, 1):
            raise ValueError(f"rating must be -1, 1 or None, not {rating!r}")
        old = self.get_message(message_id)
        meta = dict(old.metadata)
        if rating is None:
            meta.pop("rating", None)
        else:
            meta["rating"] = rating
        with self.db.atomic():
            self.db.execute(
                "UPDATE messages SET metadata_json = ? WHERE id = ?",
                [json.dumps(meta, sort_keys=True), message_id],
            )
        return self.get_message(message_id)

    def finish_message(
        self,
        message_id: str,
        *,
        content: str,
        finish_reason: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        ttft_s: float | None = None,
        tokens_per_s: float | None = None,
        duration_s: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        if finish_reason not in FINISH_REASONS:
            raise ValueError(f"unknown finish reason {finish_reason!r}")
        old = self.get_message(message_id)
        merged = {**old.metadata, **(metadata or {})}
        with self.db.atomic():
            self.db.table("messages").update(
                message_id,
                {
                    "content": content,
                    "status": STATUS_COMPLETE,
                    "finish_reason": finish_reason,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "ttft_s": ttft_s,
                    "tokens_per_s": tokens_per_s,
                    "duration_s": duration_s,
                    "metadata_json": json.dumps(merged, sort_keys=True),
                    "writer_pid": None,
                    "updated_at": utc_now(),
                },
            )
        return self.get_message(message_id)

    def mark_interrupted(self) -> int:
        """Finish replies left streaming by a process that died; keep their text.

        Replies whose writer process is still alive (another slmdesk running now) are
        left alone. Returns how many replies were marked.
        """
        rows = self.db.execute(
            "SELECT id, writer_pid, created_at FROM messages WHERE status = ?",
            [STATUS_STREAMING],
        ).fetchall()
        dead = [mid for mid, pid, created in rows
                if pid == os.getpid() or not _writer_alive(pid, created)]
        if dead:
            with self.db.atomic():
                for mid in dead:
                    self.db.execute(
                        "UPDATE messages SET status = ?, finish_reason = 'interrupted', "
                        "writer_pid = NULL, updated_at = ? WHERE id = ?",
                        [STATUS_COMPLETE, utc_now(), mid],
                    )
        return len(dead)

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        """Full-text search over the text of every branch, best matches first.

        Conversations in the bin are left out. A hit may lie on a branch that is not
        shown; ``switch_branch(hit.message.id)`` brings it on screen.
        """
        q = fts_query(query)
        if not q:
            return []
        rows = self._query(
            """
            SELECT m.*, c.title AS conversation_title,
                   snippet(messages_fts, 0, '[', ']', '…', 12) AS snip
            FROM messages_fts
            JOIN messages m ON m.rowid = messages_fts.rowid
            JOIN conversations c ON c.id = m.conversation_id
            WHERE messages_fts MATCH ? AND c.deleted_at IS NULL
            ORDER BY rank
            LIMIT ?
            """,
            [q, limit],
        )
        return [
            SearchHit(
                message=_message_from_row(row),
                conversation_title=row["conversation_title"],
                snippet=row["snip"],
            )
            for row in rows
        ]


@dataclass(frozen=True)
class Preset:
    """A named set of sampling parameters, optionally with a system prompt."""

    id: str
    name: str
    sampling: SamplingParams
    system_prompt: str | None
    builtin: bool
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "sampling": self.sampling.to_json(),
            "system_prompt": self.system_prompt,
            "builtin": self.builtin,
            "created_at": self.created_at,
        }


def _preset_from_row(row: dict[str, Any]) -> Preset:
    return Preset(
        id=row["id"],
        name=row["name"],
        sampling=SamplingParams.from_json(json.loads(row["params_json"] or "{}")),
        system_prompt=row["system_prompt"],
        builtin=bool(row["builtin"]),
        created_at=row["created_at"],
    )


class PresetRepository:
    """Sampling presets: three built-in ones (Precise, Balanced, Creative) and the user's."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def list(self) -> list[Preset]:
        """Built-in presets first, then by name."""
        return [
            _preset_from_row(r)
            for r in self.db.table("presets").rows_where(order_by="builtin DESC, name, id")
        ]

    def _find(self, name: str) -> Preset | None:
        rows = list(self.db.table("presets").rows_where("name = ?", [name]))
        return _preset_from_row(rows[0]) if rows else None

    def get(self, name: str) -> Preset:
        preset = self._find(name)
        if preset is None:
            raise NotFoundError(f"No preset named '{name}'.")
        return preset

    def save(
        self, name: str, sampling: SamplingParams, system_prompt: str | None = None
    ) -> Preset:
        """Create the preset, or replace the parameters of the user's preset of that name."""
        name = name.strip()
        if not name:
            raise InvalidInputError("A preset needs a name.")
        row = {
            "params_json": json.dumps(sampling.to_json(), sort_keys=True),
            "system_prompt": system_prompt,
        }
        with self.db.atomic():
            existing = self._find(name)
            if existing is not None and existing.builtin:
                raise InvalidInputError(
                    f"'{name}' is a built-in preset and cannot be changed; "
                    "save under another name."
                )
            if existing is None:
                self.db.table("presets").insert(
                    {"id": new_id(), "name": name, "builtin": 0, "created_at": utc_now(), **row}
                )
            else:
                self.db.table("presets").update(existing.id, row)
        return self.get(name)

    def delete(self, name: str) -> None:
        preset = self.get(name)
        if preset.builtin:
            raise InvalidInputError(f"'{name}' is a built-in preset and cannot be deleted.")
        with self.db.atomic():
            self.db.table("presets").delete(preset.id)
