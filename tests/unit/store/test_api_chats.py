"""store/api_chats.py: the stored API reply a follow-up request goes on from."""

from __future__ import annotations

from pathlib import Path

from slmdesk.store.api_chats import SOURCE_API, SOURCE_KEY, THREAD_KEY, find_api_reply
from slmdesk.store.chats import ChatRepository
from slmdesk.store.db import open_database


def test_finds_the_newest_api_reply_with_the_key_outside_the_bin(tmp_path: Path) -> None:
    db = open_database(tmp_path / "slmdesk.db")
    chats = ChatRepository(db)
    marked = {SOURCE_KEY: SOURCE_API, THREAD_KEY: "k1"}
    older = chats.create_conversation(title="API: one")
    chats.append_message(older.id, "user", "Hi", metadata={SOURCE_KEY: SOURCE_API})
    first = chats.append_message(older.id, "assistant", "Hello", metadata=marked)
    assert find_api_reply(db, "k1") == first.id
    assert find_api_reply(db, "other") is None
    newer = chats.create_conversation(title="API: two")
    second = chats.append_message(newer.id, "assistant", "Hello", metadata=marked)
    chats.append_message(newer.id, "user", "same key, not a reply", metadata=marked)
    assert find_api_reply(db, "k1") == second.id
    chats.delete_conversation(newer.id)
    assert find_api_reply(db, "k1") == first.id
    db.close()
