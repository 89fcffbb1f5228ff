"""Conversation branches (regenerate, edit and resend, switching), search and the bin."""

from __future__ import annotations

import time

import pytest
import sqlite_utils

from slmdesk.chat import ChatService, Turn, engine_history
from slmdesk.engine.params import SamplingParams
from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.ids import new_id, utc_now
from slmdesk.store import (
    ChatRepository,
    Message,
    ModelRecord,
    ModelRepository,
)

SYSTEM = "You are a helpful assistant."




@pytest.fixture
def service(db: sqlite_utils.Database) -> ChatService:
    return ChatService(db)


@pytest.fixture
def model(db: sqlite_utils.Database) -> ModelRecord:
    return ModelRepository(db).add(
        name="Tiny", path="/models/tiny.gguf", size_bytes=10, architecture="llama",
        quantization="Q4_1", parameter_count=100, context_length=2048, licence="MIT",
        source="import",
    )


def answer(service: ChatService, turn: Turn, text: str) -> Message:
    """What the engine would have done: finish the streaming reply with ``text``."""
    return service.chats.finish_message(turn.reply.id, content=text, finish_reason="stop")


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


def texts(messages: list[Message]) -> list[str]:
    return [m.content for m in messages]


@pytest.fixture
def two_turns(service: ChatService, model: ModelRecord) -> tuple[str, list[Message]]:
    """A conversation: capital of France? Paris. And Germany? Berlin."""
    conv = service.new_conversation(model=model, system_prompt=SYSTEM)
    t1 = service.start_turn(conv, "Capital of France?", model=model)
    a1 = answer(service, t1, "Paris.")
    t2 = service.start_turn(conv, "And Germany?", model=model)
    a2 = answer(service, t2, "Berlin.")
    return conv.id, [t1.user_message, a1, t2.user_message, a2]


# -- regenerate ---------------------------------------------------------------------------


def test_regenerating_twice_keeps_three_sibling_replies(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    cid, (u1, a1, u2, a2) = two_turns
    conv = service.chats.get_conversation(cid)

    r2 = service.regenerate(conv, a2.id, model=model)
    assert r2.user_message.id == u2.id
    assert r2.reply.parent_id == u2.id
    assert r2.reply.status == "streaming"
    # The engine sees the branch up to the question, not the old answer.
    assert r2.history == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Germany?"},
    ]
    b = answer(service, r2, "Berlin, of course.")
    r3 = service.regenerate(r2.conversation, b.id, model=model)
    c = answer(service, r3, "It is Berlin.")

    assert ids(service.chats.siblings(a2.id)) == [a2.id, b.id, c.id]
    assert ids(service.chats.siblings(c.id)) == [a2.id, b.id, c.id]
    assert ids(service.chats.path(cid)) == [u1.id, a1.id, u2.id, c.id]
    assert service.chats.get_conversation(cid).leaf_id == c.id
    assert len(service.chats.messages(cid)) == 6  # every branch is kept

    # Switching among the three replies changes only the last step of the path.
    for reply in (a2, b, c, a2):
        path = service.chats.switch_branch(reply.id)
        assert ids(path) == [u1.id, a1.id, u2.id, reply.id]
        assert ids(service.chats.path(cid)) == ids(path)
        assert engine_history(conv, path)[-1]["content"] == reply.content

    # A new message continues the branch on screen (a2 now), not the newest message.
    t3 = service.start_turn(conv, "And Italy?", model=model)
    assert t3.user_message.parent_id == a2.id
    assert [h["content"] for h in t3.history][-2:] == ["Berlin.", "And Italy?"]


def test_regenerating_the_first_reply_branches_the_whole_rest(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    cid, (u1, a1, u2, a2) = two_turns
    conv = service.chats.get_conversation(cid)
    turn = service.regenerate(conv, a1.id, model=model)
    assert [h["content"] for h in turn.history] == [SYSTEM, "Capital of France?"]
    new = answer(service, turn, "Paris, on the Seine.")
    assert ids(service.chats.path(cid)) == [u1.id, new.id]
    # Back to the old reply: the branch continues down to its newest leaf.
    assert ids(service.chats.switch_branch(a1.id)) == [u1.id, a1.id, u2.id, a2.id]


def test_regenerate_uses_the_given_sampling_and_the_conversation_model(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    cid, (_, _, _, a2) = two_turns
    other = ModelRepository(service.db).add(
        name="Other", path="/models/other.gguf", size_bytes=10, architecture="llama",
        quantization="Q8_0", parameter_count=100, context_length=2048, licence="MIT",
        source="import",
    )
    conv = service.chats.get_conversation(cid)
    hot = SamplingParams(temperature=1.5)
    turn = service.regenerate(conv, a2.id, model=other, sampling=hot)
    assert turn.sampling == hot
    assert turn.reply.model_id == other.id
    assert turn.conversation.model_id == other.id
    default = service.regenerate(turn.conversation, a2.id, model=other)
    assert default.sampling == SamplingParams.from_json(conv.params)


def test_regenerate_and_edit_refuse_the_wrong_messages(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    cid, (u1, a1, _, _) = two_turns
    conv = service.chats.get_conversation(cid)
    with pytest.raises(InvalidInputError, match="regenerated"):
        service.regenerate(conv, u1.id, model=model)
    with pytest.raises(InvalidInputError, match="edited"):
        service.edit_and_resend(conv, a1.id, "Hi", model=model)
    with pytest.raises(InvalidInputError, match="empty"):
        service.edit_and_resend(conv, u1.id, "  \n", model=model)
    with pytest.raises(NotFoundError):
        service.regenerate(conv, "NO-SUCH-MESSAGE", model=model)

    other = service.new_conversation(model=model)
    elsewhere = service.start_turn(other, "Elsewhere", model=model)
    with pytest.raises(NotFoundError, match="in conversation"):
        service.regenerate(conv, elsewhere.reply.id, model=model)
    with pytest.raises(NotFoundError, match="in conversation"):
        service.edit_and_resend(conv, elsewhere.user_message.id, "x", model=model)
    with pytest.raises(NotFoundError, match="in conversation"):
        service.chats.set_leaf(conv.id, elsewhere.reply.id)
    with pytest.raises(NotFoundError, match="in conversation"):
        service.chats.append_message(conv.id, "user", "x", parent_id=elsewhere.reply.id)
    # Nothing of that reached the conversation.
    assert len(service.chats.messages(cid)) == 4

    orphan = service.chats.append_message(cid, "assistant", "Hello!", parent_id=None)
    with pytest.raises(InvalidInputError, match="answers no message"):
        service.regenerate(conv, orphan.id, model=model)


# -- edit and resend ----------------------------------------------------------------------


def test_editing_the_first_message_starts_a_new_root(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    cid, (u1, a1, u2, a2) = two_turns
    conv = service.chats.get_conversation(cid)
    turn = service.edit_and_resend(conv, u1.id, "Capital of Spain?", model=model)
    assert turn.user_message.parent_id is None
    assert turn.user_message.content == "Capital of Spain?"
    assert turn.reply.parent_id == turn.user_message.id
    assert turn.history == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Capital of Spain?"},
    ]
    madrid = answer(service, turn, "Madrid.")
    assert ids(service.chats.path(cid)) == [turn.user_message.id, madrid.id]
    assert ids(service.chats.siblings(u1.id)) == [u1.id, turn.user_message.id]
    # The original conversation is one switch away, whole.
    assert ids(service.chats.switch_branch(u1.id)) == [u1.id, a1.id, u2.id, a2.id]
    assert ids(service.chats.switch_branch(turn.user_message.id)) == [
        turn.user_message.id, madrid.id
    ]


def test_editing_a_middle_message_branches_from_its_parent(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    cid, (u1, a1, u2, a2) = two_turns
    conv = service.chats.get_conversation(cid)
    turn = service.edit_and_resend(conv, u2.id, "And Austria?", model=model)
    assert turn.user_message.parent_id == a1.id
    assert [h["content"] for h in turn.history] == [
        SYSTEM, "Capital of France?", "Paris.", "And Austria?"
    ]
    vienna = answer(service, turn, "Vienna.")
    assert texts(service.chats.path(cid)) == [
        "Capital of France?", "Paris.", "And Austria?", "Vienna."
    ]
    assert ids(service.chats.siblings(u2.id)) == [u2.id, turn.user_message.id]
    assert ids(service.chats.switch_branch(u2.id)) == [u1.id, a1.id, u2.id, a2.id]
    # A follow-up on the old branch stays on it.
    t = service.start_turn(conv, "And Poland?", model=model)
    assert t.user_message.parent_id == a2.id
    assert vienna.id not in ids(service.chats.path(cid))


def test_switch_branch_follows_the_newest_child(
    db: sqlite_utils.Database,
) -> None:
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    q = chats.append_message(conv.id, "user", "q")
    old = chats.append_message(conv.id, "assistant", "old")
    old_q = chats.append_message(conv.id, "user", "old follow-up")
    new = chats.append_message(conv.id, "assistant", "new", parent_id=q.id)
    older_leaf = chats.append_message(conv.id, "assistant", "a1", parent_id=old_q.id)
    newer_leaf = chats.append_message(conv.id, "assistant", "a2", parent_id=old_q.id)
    assert chats.get_conversation(conv.id).leaf_id == newer_leaf.id
    chats.set_leaf(conv.id, new.id)
    assert ids(chats.path(conv.id)) == [q.id, new.id]
    # From q the newest child is `new`; from `old` the newest grandchild is a2.
    assert ids(chats.switch_branch(q.id)) == [q.id, new.id]
    assert ids(chats.switch_branch(old.id)) == [q.id, old.id, old_q.id, newer_leaf.id]
    assert ids(chats.switch_branch(older_leaf.id)) == [q.id, old.id, old_q.id, older_leaf.id]
    assert ids(chats.children(old_q.id)) == [older_leaf.id, newer_leaf.id]
    assert ids(chats.children(newer_leaf.id)) == []
    # messages() still lists every branch, oldest first.
    assert ids(chats.messages(conv.id)) == [q.id, old.id, old_q.id, new.id, older_leaf.id,
                                            newer_leaf.id]


def test_path_without_a_stored_leaf_is_the_newest_message(db: sqlite_utils.Database) -> None:
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    assert chats.path(conv.id) == []
    a = chats.append_message(conv.id, "user", "a")
    b = chats.append_message(conv.id, "assistant", "b")
    db.execute("UPDATE conversations SET leaf_id = NULL WHERE id = ?", [conv.id])
    assert ids(chats.path(conv.id)) == [a.id, b.id]
    db.execute("UPDATE conversations SET leaf_id = 'GONE' WHERE id = ?", [conv.id])
    assert ids(chats.path(conv.id)) == [a.id, b.id]
    with pytest.raises(NotFoundError):
        chats.path("NO-SUCH-CONVERSATION")


def test_engine_history_sees_only_the_branch(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    cid, (_, a1, u2, _) = two_turns
    conv = service.chats.get_conversation(cid)
    service.edit_and_resend(conv, u2.id, "And Austria?", model=model)  # reply still streaming
    history = engine_history(conv, service.chats.path(cid))
    assert [h["content"] for h in history] == [
        SYSTEM, "Capital of France?", "Paris.", "And Austria?"
    ]
    failed = service.regenerate(conv, a1.id, model=model)
    service.chats.finish_message(failed.reply.id, content="", finish_reason="error")
    assert [h["content"] for h in engine_history(conv, service.chats.path(cid))] == [
        SYSTEM, "Capital of France?"
    ]


def test_long_conversation_path_is_one_fast_query(db: sqlite_utils.Database) -> None:
    chats = ChatRepository(db)
    conv = chats.create_conversation()
    now = utc_now()
    rows = []
    parent = None
    for i in range(10_000):
        mid = new_id()
        rows.append({
            "id": mid, "conversation_id": conv.id, "parent_id": parent,
            "role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}",
            "status": "complete", "metadata_json": "{}", "created_at": now, "updated_at": now,
        })
        parent = mid
    with db.atomic():
        db["messages"].insert_all(rows, batch_size=500)
    chats.set_leaf(conv.id, rows[-1]["id"])
    start = time.perf_counter()
    path = chats.path(conv.id)
    path_s = time.perf_counter() - start
    assert [m.id for m in path] == [r["id"] for r in rows]
    start = time.perf_counter()
    assert chats.switch_branch(rows[0]["id"])[-1].id == rows[-1]["id"]
    switch_s = time.perf_counter() - start
    # Generous bounds: a row-by-row walk in Python takes seconds on a slow machine.
    assert path_s < 2.0
    assert switch_s < 4.0


# -- search and the bin -------------------------------------------------------------------


def test_search_finds_text_on_branches_not_shown(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    cid, (u1, a1, u2, a2) = two_turns
    conv = service.chats.get_conversation(cid)
    turn = service.regenerate(conv, a2.id, model=model)
    answer(service, turn, "Munich is not the capital.")
    assert a2.id not in ids(service.chats.path(cid))
    [hit] = service.chats.search("berlin")
    assert hit.message.id == a2.id
    # The UI brings the hit on screen by switching to its branch.
    assert ids(service.chats.switch_branch(hit.message.id)) == [u1.id, a1.id, u2.id, a2.id]
    assert {h.message.id for h in service.chats.search("munich")} == {turn.reply.id}


def test_delete_moves_to_the_bin_and_restore_brings_it_back(
    service: ChatService, model: ModelRecord, two_turns: tuple[str, list[Message]]
) -> None:
    chats = service.chats
    cid, messages = two_turns
    keep = chats.create_conversation(title="Keep me")
    assert chats.count_conversations() == 2

    chats.delete_conversation(cid)
    assert chats.count_conversations() == 1
    assert [c.id for c in chats.list_conversations()] == [keep.id]
    assert chats.search("paris") == []
    with pytest.raises(NotFoundError):
        chats.get_conversation(cid)
    with pytest.raises(NotFoundError):
        chats.find_conversation(cid)
    with pytest.raises(NotFoundError):
        chats.find_conversation(cid[:10])
    with pytest.raises(NotFoundError):
        chats.delete_conversation(cid)  # already in the bin
    binned = chats.get_conversation(cid, include_deleted=True)
    assert binned.deleted_at is not None
    # The doctor's totals count the bin too.
    assert chats.row_counts() == {"conversations": 2, "messages": len(messages)}
    assert ids(chats.messages(cid)) == ids(messages)  # nothing is lost yet

    restored = chats.restore_conversation(cid)
    assert restored.deleted_at is None
    assert chats.count_conversations() == 2
    assert {h.message.conversation_id for h in chats.search("paris")} == {cid}
    assert ids(chats.path(cid)) == ids(messages)
    with pytest.raises(NotFoundError):
        chats.restore_conversation("NO-SUCH-CONVERSATION")


def test_purge_deletes_only_what_is_in_the_bin(
    db: sqlite_utils.Database,
) -> None:
    chats = ChatRepository(db)
    live = chats.create_conversation(title="live")
    chats.append_message(live.id, "user", "still here")
    convs = []
    for title in ("old", "recent", "other"):
        c = chats.create_conversation(title=title)
        chats.append_message(c.id, "user", f"text of {title}")
        chats.delete_conversation(c.id)
        convs.append(c)
    old, recent, other = convs
    db.execute("UPDATE conversations SET deleted_at = '2020-01-01T00:00:00+00:00' WHERE id = ?",
               [old.id])

    assert chats.purge_deleted(older_than="2021-01-01T00:00:00+00:00") == 1
    with pytest.raises(NotFoundError):
        chats.get_conversation(old.id, include_deleted=True)
    assert chats.purge_deleted(conversation_id=live.id) == 0  # not in the bin
    assert chats.purge_deleted(conversation_id=other.id) == 1
    chats.get_conversation(recent.id, include_deleted=True)
    assert chats.purge_deleted() == 1
    assert chats.purge_deleted() == 0
    assert [c.id for c in chats.list_conversations()] == [live.id]
    assert db["messages"].count == 1
    assert db.execute("SELECT count(*) FROM messages_fts").fetchone()[0] == 1


def test_list_conversations_pages(db: sqlite_utils.Database) -> None:
    chats = ChatRepository(db)
    made = [chats.create_conversation(title=f"c{i}") for i in range(5)]
    newest_first = [c.id for c in reversed(made)]
    assert [c.id for c in chats.list_conversations()] == newest_first
    assert [c.id for c in chats.list_conversations(limit=2)] == newest_first[:2]
    assert [c.id for c in chats.list_conversations(limit=2, offset=2)] == newest_first[2:4]
    assert [c.id for c in chats.list_conversations(offset=3)] == newest_first[3:]
    assert chats.count_conversations() == 5


def test_update_settings_stores_prompt_and_sampling(
    service: ChatService, model: ModelRecord
) -> None:
    conv = service.new_conversation(model=model, system_prompt=SYSTEM)
    precise = SamplingParams(temperature=0.2, stop=("###",))
    conv = service.update_settings(conv, sampling=precise)
    assert SamplingParams.from_json(conv.params) == precise
    assert conv.system_prompt == SYSTEM
    conv = service.update_settings(conv, system_prompt="Answer in French.")
    assert conv.system_prompt == "Answer in French."
    assert SamplingParams.from_json(conv.params) == precise
    turn = service.start_turn(conv, "Bonjour", model=model)
    assert turn.sampling == precise
    assert turn.history[0] == {"role": "system", "content": "Answer in French."}
    conv = service.update_settings(conv, system_prompt=None)
    assert conv.system_prompt is None
    assert service.update_settings(conv) == service.chats.get_conversation(conv.id)
