"""Conversations and messages in the store: lifecycle, cascades, FTS, streaming replies."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from slmdesk.chat import ReplyWriter
from slmdesk.engine.params import GenerationResult
from slmdesk.errors import NotFoundError
from slmdesk.store import ChatRepository, ModelRepository
from tests.unit.models import tiny_model


def test_conversation_lifecycle_and_cascade(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    model = tiny_model(db)
    conv = chats.create_conversation(title="Hello", model_id=model.id, system_prompt="Be brief.")
    a = chats.append_message(conv.id, "user", "hi")
    b = chats.append_message(conv.id, "assistant", "hello")
    assert b.parent_id == a.id
    assert [m.id for m in chats.messages(conv.id)] == [a.id, b.id]
    assert chats.find_conversation(conv.id[:8].lower()).id == conv.id
    chats.update_conversation(conv.id, title="Renamed", pinned=True)
    assert chats.list_conversations()[0].title == "Renamed"
    chats.delete_conversation(conv.id)
    assert db["messages"].count == 2  # in the bin until purged
    assert chats.purge_deleted() == 1
    assert db["messages"].count == 0
    assert chats.search("hello") == []
    with pytest.raises(NotFoundError):
        chats.get_conversation(conv.id)


def test_deleting_a_model_keeps_conversations(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    model = tiny_model(db)
    conv = chats.create_conversation(model_id=model.id)
    chats.append_message(conv.id, "assistant", "x", model_id=model.id)
    ModelRepository(db).remove(model.id)
    assert chats.get_conversation(conv.id).model_id is None
    assert chats.messages(conv.id)[0].content == "x"


def test_full_text_search_finds_words_and_prefixes(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    c1 = chats.create_conversation(title="Geography")
    chats.append_message(c1.id, "user", "What is the capital of France?")
    chats.append_message(c1.id, "assistant", "The capital of France is Paris.")
    c2 = chats.create_conversation(title="Cooking")
    chats.append_message(c2.id, "user", "How do I bake bread?")
    hits = chats.search("paris")
    assert [h.message.conversation_id for h in hits] == [c1.id]
    assert "[Paris]" in hits[0].snippet
    assert {h.message.conversation_id for h in chats.search("bak")} == {c2.id}
    assert chats.search('"unbalanced AND (') == []  # hostile query syntax is neutralised
    assert chats.search("   ") == []
    # Updates of a streaming reply keep the index in step.
    reply = chats.append_message(c2.id, "assistant", "", status="streaming")
    chats.update_streaming_text(reply.id, "Knead the dough")
    assert {h.message.id for h in chats.search("dough")} == {reply.id}


def test_streaming_reply_is_saved_as_it_grows_and_finished(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    reply = chats.append_message(conv.id, "assistant", "", status="streaming")
    now = [0.0]
    writer = ReplyWriter(chats, reply.id, interval_s=1.0, clock=lambda: now[0])
    writer.append("Hel")  # the first piece is written at once
    assert chats.get_message(reply.id).content == "Hel"
    writer.append("lo")  # within the interval: held in memory
    assert chats.get_message(reply.id).content == "Hel"
    now[0] = 1.5
    writer.append(" world")
    assert chats.get_message(reply.id).content == "Hello world"
    assert chats.get_message(reply.id).status == "streaming"
    msg = writer.finish(GenerationResult(finish_reason="length", prompt_tokens=12,
                                         completion_tokens=3, ttft_s=0.1, tokens_per_s=30.0))
    assert (msg.status, msg.finish_reason, msg.content) == ("complete", "length", "Hello world")
    assert (msg.prompt_tokens, msg.completion_tokens, msg.tokens_per_s) == (12, 3, 30.0)


def test_replies_left_streaming_by_a_dead_process_are_marked_interrupted(db) -> None:  # type: ignore[no-untyped-def]
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    reply = chats.append_message(conv.id, "assistant", "", status="streaming")
    chats.update_streaming_text(reply.id, "partial text")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    db.execute("UPDATE messages SET writer_pid = ? WHERE id = ?", [int(dead.stdout), reply.id])
    alive = chats.append_message(conv.id, "assistant", "", status="streaming")
    db.execute("UPDATE messages SET writer_pid = ? WHERE id = ?", [os.getppid(), alive.id])
    db.conn.commit()
    assert chats.mark_interrupted() == 1
    msg = chats.get_message(reply.id)
    assert (msg.status, msg.finish_reason, msg.content) == ("complete", "interrupted",
                                                           "partial text")
    assert chats.get_message(alive.id).status == "streaming"  # its writer still runs


def test_a_reused_writer_pid_does_not_keep_a_reply_streaming(db) -> None:  # type: ignore[no-untyped-def]
    # After a reboot the dead writer's pid may belong to an unrelated, newer process.
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    old = chats.append_message(conv.id, "assistant", "", status="streaming")
    chats.update_streaming_text(old.id, "kept")
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        db.execute("UPDATE messages SET writer_pid = ?, created_at = ? WHERE id = ?",
                    [newer.pid, "2020-01-01T00:00:00+00:00", old.id])
        db.conn.commit()
        assert chats.mark_interrupted() == 1
        msg = chats.get_message(old.id)
        assert (msg.status, msg.finish_reason, msg.content) == ("complete", "interrupted",
                                                               "kept")
    finally:
        newer.kill()
        newer.wait()
