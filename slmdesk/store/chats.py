"""Conversations and their message trees, streaming replies included, and full-text search."""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from slmdesk.errors import NotFoundError
from slmdesk.ids import new_id, utc_now
from slmdesk.json_data import JsonFields
from slmdesk.store.models import ModelRepository
from slmdesk.store.rows import from_row, fts_query, id_slices, one_row, placeholders

# Persisted enum values: lowercase, never reused.
STATUS_STREAMING = "streaming"
STATUS_COMPLETE = "complete"
FINISH_REASONS = ("stop", "length", "cancelled", "error", "interrupted")
# A growing reply reaches the disk at least this often (the window's, the CLI's, the API's).
FLUSH_INTERVAL_S = 0.5
TITLE_CHARS = 60


def title_from(text: str) -> str:
    """A conversation's title from its first message: one line, at most ``TITLE_CHARS``."""
    line = " ".join(text.split())
    return (line[: TITLE_CHARS - 1] + "…") if len(line) > TITLE_CHARS else (line or "New chat")


class _Leaf(enum.Enum):
    LEAF = "leaf"


# ``append_message``'s default parent: the last message of the conversation's current branch.
LEAF = _Leaf.LEAF


@dataclass(frozen=True)
class Conversation(JsonFields):
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


@dataclass(frozen=True)
class Message(JsonFields):
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


def _conversation(row: dict[str, Any]) -> Conversation:
    return from_row(
        Conversation, row, params=json.loads(row["params_json"] or "{}"), pinned=bool(row["pinned"])
    )


def _message(row: dict[str, Any]) -> Message:
    return from_row(Message, row, metadata=json.loads(row["metadata_json"] or "{}"))


def _renumber(conv: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Give the conversation and its messages new ids, the messages in their old order."""
    remap = {old: new_id() for old in sorted(r["id"] for r in rows)}
    conv["id"] = new_id()
    for r in rows:
        r["id"] = remap[r["id"]]
        r["conversation_id"] = conv["id"]
        if r["parent_id"] is not None:
            r["parent_id"] = remap[r["parent_id"]]
    if conv["leaf_id"] is not None:
        conv["leaf_id"] = remap[conv["leaf_id"]]


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

    def _rows(self, sql: str, params: list[Any] | dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

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
        missing = f"No conversation with id {conversation_id}."
        row = one_row(self.db, "conversations", "id = ?", [conversation_id], missing)
        if row["deleted_at"] is not None and not include_deleted:
            raise NotFoundError(missing)
        return _conversation(row)

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
        return _conversation(rows[0])

    def list_conversations(
        self, *, limit: int | None = None, offset: int = 0
    ) -> list[Conversation]:
        """Conversations not in the bin: pinned first, then the most recently updated."""
        sql = (
            "SELECT * FROM conversations WHERE deleted_at IS NULL "
            "ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT ? OFFSET ?"
        )
        rows = self._rows(sql, [-1 if limit is None else limit, offset])
        return [_conversation(r) for r in rows]

    def count_conversations(self) -> int:
        """How many conversations are not in the bin."""
        row = self.db.execute(
            "SELECT count(*) FROM conversations WHERE deleted_at IS NULL"
        ).fetchone()
        return int(row[0])

    def row_counts(self) -> dict[str, int]:
        """How many conversations (the bin's included) and messages the database holds."""
        return {
            "conversations": self.db.table("conversations").count,
            "messages": self.db.table("messages").count,
        }

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

    def insert_conversation(
        self, conversation: dict[str, Any], messages: list[dict[str, Any]]
    ) -> Conversation:
        """Add a whole conversation (an import) in one transaction, and return it.

        ``conversation`` has the columns of the table with ``params`` (a dict), ``pinned``
        (a bool) and ``leaf_id``; ``messages`` are rows of the messages table, parents
        before their children. When the conversation's id or any message id is taken
        already, all of them get new ids (handed out in the old ids' order, so "newest"
        keeps its meaning). Model ids that are not registered become empty.
        """
        conv = dict(conversation)
        rows = [dict(r) for r in messages]
        with self.db.atomic():
            if self._ids_taken(conv["id"], [r["id"] for r in rows]):
                _renumber(conv, rows)
            models = ModelRepository(self.db).ids()
            leaf = conv.pop("leaf_id")
            conv["params_json"] = json.dumps(conv.pop("params"), sort_keys=True)
            conv["pinned"] = int(conv["pinned"])
            if conv["model_id"] not in models:
                conv["model_id"] = None
            # The leaf is set after the messages exist; deleted_at stays NULL: an import
            # is live.
            self.db.table("conversations").insert({**conv, "leaf_id": None, "deleted_at": None})
            for r in rows:
                if r["model_id"] not in models:
                    r["model_id"] = None
            self.db.table("messages").insert_all(rows, batch_size=200)
            self.db.execute(
                "UPDATE conversations SET leaf_id = ? WHERE id = ?", [leaf, conv["id"]]
            )
        return self.get_conversation(conv["id"])

    def _ids_taken(self, conversation_id: str, message_ids: list[str]) -> bool:
        if self.db.execute(
            "SELECT 1 FROM conversations WHERE id = ?", [conversation_id]
        ).fetchone():
            return True
        for part in id_slices(message_ids):
            if self.db.execute(
                f"SELECT 1 FROM messages WHERE id IN ({placeholders(part)}) LIMIT 1", list(part)
            ).fetchone():
                return True
        return False

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
        return _message(
            one_row(self.db, "messages", "id = ?", [message_id],
                    f"No message with id {message_id}.")
        )

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
            _message(r)
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
        rows = self._rows(
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
        return [_message(r) for r in rows]

    def siblings(self, message_id: str) -> list[Message]:
        """The message and the alternatives beside it (same parent), oldest first."""
        message = self.get_message(message_id)
        if message.parent_id is None:
            where, params = "conversation_id = ? AND parent_id IS NULL", [message.conversation_id]
        else:
            where = "conversation_id = ? AND parent_id = ?"
            params = [message.conversation_id, message.parent_id]
        return [
            _message(r)
            for r in self.db.table("messages").rows_where(where, params, order_by="id")
        ]

    def children(self, message_id: str) -> list[Message]:
        """The messages directly under ``message_id``, oldest first."""
        message = self.get_message(message_id)
        return [
            _message(r)
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
        rows = self._rows(
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
                message=_message(row),
                conversation_title=row["conversation_title"],
                snippet=row["snip"],
            )
            for row in rows
        ]


