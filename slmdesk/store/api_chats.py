"""Where a conversation held through the server's API goes on: replies found by their thread key."""

from __future__ import annotations

import sqlite_utils

# Message metadata keys of conversations stored from the API (persisted; never reuse).
SOURCE_KEY = "source"
SOURCE_API = "api"
THREAD_KEY = "api_thread"


def find_api_reply(db: sqlite_utils.Database, thread_key: str) -> str | None:
    """The newest stored API reply whose conversation up to it has ``thread_key``, if any.

    Conversations in the bin are left out: a follow-up to one starts a new conversation.
    """
    row = db.execute(
        """
        SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.role = 'assistant' AND c.deleted_at IS NULL
          AND json_extract(m.metadata_json, '$.api_thread') = ?
        ORDER BY m.id DESC LIMIT 1
        """,
        [thread_key],
    ).fetchone()
    return None if row is None else str(row[0])
