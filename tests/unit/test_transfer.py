"""JSON export and import of whole conversation trees, and the Markdown of the branch shown."""

from __future__ import annotations

import copy
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from slmdesk.chat import ChatService
from slmdesk.engine.params import SamplingParams
from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.store import ChatRepository, ModelRecord, ModelRepository, open_database
from slmdesk.transfer import export_json, export_markdown, import_json

UNICODE = "Ünïcödé ✓ — 日本語の文 — עברית — 🦙🧪 — e\u0301 — \u200b"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_database(tmp_path / "a.db")
    yield database
    database.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_database(tmp_path / "b.db")
    yield database
    database.close()


def _add_model(db: sqlite_utils.Database) -> ModelRecord:
    return ModelRepository(db).add(
        name="Tiny", path="/models/tiny.gguf", size_bytes=10, architecture="llama",
        quantization="Q4_1", parameter_count=100, context_length=2048, licence="MIT",
        source="import",
    )


@pytest.fixture
def model(db: sqlite_utils.Database) -> ModelRecord:
    return _add_model(db)


def _copy_model(source: sqlite_utils.Database, target: sqlite_utils.Database) -> None:
    for row in source["models"].rows:
        target["models"].insert(row)


@pytest.fixture
def rich(db: sqlite_utils.Database, model: ModelRecord) -> str:
    """A conversation with branches, metrics, metadata, unicode and an interrupted reply."""
    service = ChatService(db)
    chats = service.chats
    conv = service.new_conversation(
        model=model, system_prompt=f"Be kind. {UNICODE}",
        sampling=SamplingParams(temperature=0.25, seed=7, stop=("###", "\n\n")),
    )
    t1 = service.start_turn(conv, f"Hello {UNICODE}", model=model)
    a1 = chats.finish_message(
        t1.reply.id, content=f"Hi! {UNICODE}", finish_reason="stop", prompt_tokens=31,
        completion_tokens=9, ttft_s=0.123456789, tokens_per_s=48.25, duration_s=0.31,
        metadata={"model_name": "Tiny", "prompt_tokens_evaluated": 31,
                  "notes": ["dropped 0"], "nested": {"a": [1, 2.5, None, True]}},
    )
    t2 = service.start_turn(conv, "Tell me a story.", model=model)
    chats.finish_message(t2.reply.id, content="Once upon", finish_reason="length",
                         completion_tokens=2, metadata={"error": None})
    regen = service.regenerate(conv, t2.reply.id, model=model)
    chats.update_streaming_text(regen.reply.id, "There was a llama 🦙 who")
    # The process writing that reply died: the next start marks it interrupted.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    db.execute("UPDATE messages SET writer_pid = ? WHERE id = ?",
               [int(dead.stdout), regen.reply.id])
    db.conn.commit()
    assert chats.mark_interrupted() == 1
    edit = service.edit_and_resend(conv, t1.user_message.id, "Bonjour !", model=model)
    chats.finish_message(edit.reply.id, content="Salut !", finish_reason="cancelled")
    chats.switch_branch(a1.id)  # show the first branch, which is not the newest
    chats.update_conversation(conv.id, pinned=True)
    return conv.id


def _counts(db: sqlite_utils.Database) -> tuple[int, int, int]:
    return (
        db["conversations"].count,
        db["messages"].count,
        db.execute("SELECT count(*) FROM messages_fts").fetchone()[0],
    )


def _through_a_file(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data, ensure_ascii=False))


# -- round trips --------------------------------------------------------------------------


def test_export_has_every_branch_and_field(db: sqlite_utils.Database, rich: str) -> None:
    data = export_json(db, rich)
    chats = ChatRepository(db)
    conv = chats.get_conversation(rich)
    assert data["format"] == "slmdesk.conversation"
    assert data["version"] == 1
    assert {k: data[k] for k in ("id", "title", "model_id", "system_prompt", "params",
                                 "pinned", "created_at", "updated_at", "leaf_id")} == {
        k: v for k, v in conv.to_json().items() if k != "deleted_at"
    }
    assert data["leaf_id"] == chats.path(rich)[-1].id
    assert data["messages"] == [m.to_json() for m in chats.messages(rich)]
    assert len(data["messages"]) == 7
    assert len(data["messages"]) > len(chats.path(rich))
    assert {m["finish_reason"] for m in data["messages"]} == {
        None, "stop", "length", "interrupted", "cancelled"
    }


def test_round_trip_into_a_fresh_database_is_exact(
    db: sqlite_utils.Database, fresh: sqlite_utils.Database, rich: str
) -> None:
    _copy_model(db, fresh)
    original = export_json(db, rich)
    conv = import_json(fresh, _through_a_file(original))
    assert conv.id == rich  # ids are kept when they are free
    assert export_json(fresh, conv.id) == original
    again = ChatRepository(fresh)
    assert [m.id for m in again.path(conv.id)] == [m.id for m in ChatRepository(db).path(rich)]
    assert {h.message.id for h in again.search("llama")} == {
        h.message.id for h in ChatRepository(db).search("llama")
    }
    assert export_markdown(fresh, conv.id) == export_markdown(db, rich)


def test_model_ids_are_kept_only_for_registered_models(
    db: sqlite_utils.Database, fresh: sqlite_utils.Database, rich: str
) -> None:
    original = export_json(db, rich)
    assert original["model_id"] is not None
    conv = import_json(fresh, _through_a_file(original))
    assert conv.model_id is None
    exported = export_json(fresh, conv.id)
    assert all(m["model_id"] is None for m in exported["messages"])
    # Everything else is unchanged.
    strip = lambda d: {**d, "model_id": None, "messages": [  # noqa: E731
        {**m, "model_id": None} for m in d["messages"]
    ]}
    assert exported == strip(original)


def test_importing_twice_gives_new_ids_consistently(
    db: sqlite_utils.Database, rich: str
) -> None:
    original = export_json(db, rich)
    before = _counts(db)
    copy_conv = import_json(db, _through_a_file(original))
    assert copy_conv.id != rich
    assert _counts(db)[1] == before[1] + len(original["messages"])
    assert export_json(db, rich) == original  # the original is untouched

    dup = export_json(db, copy_conv.id)
    old_ids = [m["id"] for m in original["messages"]]
    new_ids = [m["id"] for m in dup["messages"]]
    assert not set(old_ids) & set(new_ids)
    # New ids are handed out in the old order, so "newest" still means the same message.
    remap = dict(zip(old_ids, new_ids, strict=True))
    assert new_ids == sorted(new_ids)
    assert dup["leaf_id"] == remap[original["leaf_id"]]
    for old, new in zip(original["messages"], dup["messages"], strict=True):
        assert new["conversation_id"] == copy_conv.id
        assert new["parent_id"] == (None if old["parent_id"] is None else remap[old["parent_id"]])
        same = {k: v for k, v in old.items() if k not in ("id", "conversation_id", "parent_id")}
        assert {k: new[k] for k in same} == same
    chats = ChatRepository(db)
    assert [m.content for m in chats.path(copy_conv.id)] == [m.content for m in chats.path(rich)]
    assert [m.content for m in chats.switch_branch(remap[old_ids[0]])] == [
        m.content for m in chats.switch_branch(old_ids[0])
    ]


def test_a_taken_message_id_alone_also_remaps(
    db: sqlite_utils.Database, fresh: sqlite_utils.Database, rich: str
) -> None:
    data = _through_a_file(export_json(db, rich))
    data["id"] = "SOME-NEW-CONVERSATION-ID"
    for m in data["messages"]:
        m["conversation_id"] = data["id"]
    conv = import_json(db, data)
    assert conv.id not in (rich, "SOME-NEW-CONVERSATION-ID")
    assert len(ChatRepository(db).messages(conv.id)) == len(data["messages"])
    # Into a database where nothing is taken, the file's ids are used.
    assert import_json(fresh, data).id == "SOME-NEW-CONVERSATION-ID"


def test_a_hand_written_file_with_few_fields(db: sqlite_utils.Database) -> None:
    conv = import_json(db, {
        "format": "slmdesk.conversation", "version": 1,
        "messages": [
            {"id": "m1", "role": "user", "content": "Hi"},
            {"id": "m2", "role": "assistant", "content": "Hello", "status": "streaming"},
            {"id": "m3", "role": "user", "content": "Another start", "parent_id": None},
        ],
    })
    chats = ChatRepository(db)
    assert conv.title == "Imported chat"
    assert conv.leaf_id is None
    assert conv.pinned is False
    msgs = {m.id: m for m in chats.messages(conv.id)}
    assert msgs["m2"].parent_id == "m1"  # no parent_id: follows the message before it
    assert msgs["m3"].parent_id is None
    # A reply still streaming when exported has no writer any more.
    assert (msgs["m2"].status, msgs["m2"].finish_reason) == ("complete", "interrupted")
    assert [m.id for m in chats.path(conv.id)] == ["m3"]  # no leaf: the newest message
    assert [m.id for m in chats.switch_branch("m1")] == ["m1", "m2"]


def test_export_markdown_is_the_branch_on_screen(db: sqlite_utils.Database) -> None:
    chats = ChatRepository(db)
    conv = chats.create_conversation(title="Cats", system_prompt="Be brief.")
    q = chats.append_message(conv.id, "user", "Why do cats purr?")
    first = chats.append_message(conv.id, "assistant", "")
    chats.finish_message(first.id, content="Contentment.", finish_reason="length")
    other = chats.append_message(conv.id, "assistant", "", parent_id=q.id)
    chats.finish_message(other.id, content="Nobody knows.", finish_reason="stop")
    assert export_markdown(db, conv.id) == "\n".join([
        "# Cats", "", f"*Conversation {conv.id}, started {conv.created_at}*", "",
        "**System:**", "", "Be brief.", "",
        "## You", "", "Why do cats purr?", "",
        "## Assistant", "", "Nobody knows.", "",
    ])
    chats.switch_branch(first.id)
    md = export_markdown(db, conv.id)
    assert "Contentment." in md
    assert "*(length)*" in md
    assert "Nobody knows." not in md


def test_a_conversation_in_the_bin_is_not_exported(db: sqlite_utils.Database, rich: str) -> None:
    ChatRepository(db).delete_conversation(rich)
    with pytest.raises(NotFoundError):
        export_json(db, rich)
    with pytest.raises(NotFoundError):
        export_markdown(db, rich)


# -- bad files ----------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def _set(key: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> Any:
        d[key] = value
        return d
    return mutate


def _drop(key: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> Any:
        del d[key]
        return d
    return mutate


def _msg(index: int, key: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> Any:
        d["messages"][index][key] = value
        return d
    return mutate


def _msg_drop(index: int, key: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> Any:
        del d["messages"][index][key]
        return d
    return mutate


def _cycle(d: dict[str, Any]) -> Any:
    first, second = d["messages"][0], d["messages"][1]
    first["parent_id"] = second["id"]
    second["parent_id"] = first["id"]
    # Whatever hung below them is unreachable from a root too.
    return d


def _not_an_object(d: dict[str, Any]) -> Any:
    d["messages"].insert(2, "hello")
    return d


def _duplicate(d: dict[str, Any]) -> Any:
    d["messages"][2]["id"] = d["messages"][1]["id"]
    return d


BAD: dict[str, tuple[Mutation, str]] = {
    "not-an-object": (lambda d: [d], "expected a JSON object, not a list"),
    "wrong-format": (_set("format", "chatgpt"), '"format" must be "slmdesk.conversation"'),
    "no-format": (_drop("format"), '"format"'),
    "newer-version": (_set("version", 2), "newer slmdesk (format version 2)"),
    "no-version": (_drop("version"), '"version"'),
    "text-version": (_set("version", "1"), '"version"'),
    "no-messages": (_drop("messages"), 'has no "messages"'),
    "messages-not-a-list": (_set("messages", {}), '"messages" must be a list, not an object'),
    "title-number": (_set("title", 5), '"title" must be text, not a number'),
    "pinned-text": (_set("pinned", "yes"), '"pinned" must be true or false'),
    "params-list": (_set("params", []), '"params" must be an object'),
    "temperature-text": (_set("params", {"temperature": "hot"}), '"temperature" must be'),
    "stop-not-text": (_set("params", {"stop": [1]}), '"stop" must be a list of text'),
    "unknown-leaf": (_set("leaf_id", "NOPE"), '"leaf_id" NOPE is not one of its messages'),
    "message-not-object": (_not_an_object, 'Message 3 must be an object, not "hello"'),
    "content-number": (_msg(2, "content", 42), '"content" must be text, not a number'),
    "no-role": (_msg_drop(2, "role"), 'has no "role"'),
    "empty-id": (_msg(2, "id", ""), 'Message 3: "id" must be an id (1 to 100 printable '
                 'characters), not ""'),
    "id-with-newline": (_msg(2, "parent_id", "a\nb"), '"parent_id" must be an id'),
    "conversation-id-number": (_set("id", 7), '"id" must be an id'),
    "bad-status": (_msg(2, "status", "done"), '"status" must be "complete" or "streaming", '
                   'not "done"'),
    "bad-finish": (_msg(2, "finish_reason", "timeout"), '"finish_reason" must be'),
    "tokens-text": (_msg(2, "prompt_tokens", "12"), '"prompt_tokens" must be a whole number'),
    "tokens-bool": (_msg(2, "completion_tokens", True), "not true/false"),
    "ttft-nan": (_msg(2, "ttft_s", float("nan")), '"ttft_s" must be a number or null, not NaN'),
    "metadata-list": (_msg(2, "metadata", []), '"metadata" must be an object'),
    "other-conversation": (_msg(2, "conversation_id", "ELSEWHERE"),
                           "belongs to conversation ELSEWHERE"),
    "unknown-parent": (_msg(2, "parent_id", "GHOST"), "GHOST, which is not in the file"),
    "cycle": (_cycle, "in a circle"),
    "duplicate-id": (_duplicate, "the id appears more than once"),
}


NAMES_THE_MESSAGE = {
    "content-number", "no-role", "bad-status", "bad-finish", "tokens-text", "tokens-bool",
    "ttft-nan", "metadata-list", "other-conversation", "unknown-parent", "duplicate-id",
    "id-with-newline",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_is_refused_with_a_clear_message_and_changes_nothing(
    db: sqlite_utils.Database, rich: str, case: str
) -> None:
    mutate, expected = BAD[case]
    data = mutate(copy.deepcopy(export_json(db, rich)))
    ChatRepository(db).purge_deleted()
    before = _counts(db)
    with pytest.raises(InvalidInputError) as info:
        import_json(db, data)
    assert expected in info.value.message
    if case in NAMES_THE_MESSAGE:
        # A problem in one message names that message, by place and id.
        assert info.value.message.startswith("Message 3 (")
    assert "\n" not in info.value.message
    assert _counts(db) == before


def test_a_failure_half_way_through_the_inserts_leaves_nothing(
    db: sqlite_utils.Database, fresh: sqlite_utils.Database, rich: str
) -> None:
    data = _through_a_file(export_json(db, rich))
    middle = data["messages"][4]
    # A trigger stands in for a failure the checks cannot foresee (a full disk, say).
    fresh.execute(
        "CREATE TEMP TRIGGER fail_middle BEFORE INSERT ON messages "
        f"WHEN NEW.id = '{middle['id']}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    before = _counts(fresh)
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        import_json(fresh, data)
    assert _counts(fresh) == before
    assert ChatRepository(fresh).list_conversations() == []
    fresh.execute("DROP TRIGGER fail_middle")
    assert import_json(fresh, data).id == rich


def test_the_file_checks_cover_every_sampling_parameter() -> None:
    from dataclasses import fields

    from slmdesk.transfer import _SAMPLING_CHECKS

    assert set(_SAMPLING_CHECKS) == {f.name for f in fields(SamplingParams)}


def test_a_large_conversation_imports_in_one_go(
    db: sqlite_utils.Database, fresh: sqlite_utils.Database
) -> None:
    messages = [
        {"id": f"M{i:05d}", "role": "user" if i % 2 == 0 else "assistant",
         "content": f"message {i}"}
        for i in range(3000)
    ]
    data = {"format": "slmdesk.conversation", "version": 1, "id": "BIG", "title": "Big",
            "leaf_id": "M02999", "messages": messages}
    conv = import_json(fresh, data)
    assert len(ChatRepository(fresh).path(conv.id)) == 3000
    # The second time every id is taken: all of them are remapped.
    again = import_json(fresh, data)
    assert again.id != "BIG"
    assert [m.content for m in ChatRepository(fresh).path(again.id)][-1] == "message 2999"


def test_export_markdown_shows_each_replys_own_system_prompt(
    db: sqlite_utils.Database, model: ModelRecord
) -> None:
    # Issue 16, item 10: the export showed only the current system prompt, though earlier
    # replies were written under another.
    service = ChatService(db)
    chats = service.chats
    conv = service.new_conversation(model=model, system_prompt="Answer like a pirate.")
    for text, prompt in (("One?", None), ("Two?", "Be brief."), ("Three?", "Be brief.")):
        if prompt is not None:
            conv = service.update_settings(conv, system_prompt=prompt)
        turn = service.start_turn(conv, text, model=model)
        chats.finish_message(turn.reply.id, content=f"Reply to {text}", finish_reason="stop")
    md = export_markdown(db, conv.id)
    assert md.index("Answer like a pirate.") < md.index("## You\n\nOne?") < md.index(
        "Be brief.") < md.index("Reply to Two?")
    assert md.count("Be brief.") == 1  # shown where it changed, not before every reply
    service.update_settings(conv, system_prompt=None)  # later: no system prompt at all
    turn = service.start_turn(conv, "Four?", model=model)
    chats.finish_message(turn.reply.id, content="Reply to Four?", finish_reason="stop")
    md = export_markdown(db, conv.id)
    assert md.index("Reply to Three?") < md.index("*(none)*") < md.index("Reply to Four?")
