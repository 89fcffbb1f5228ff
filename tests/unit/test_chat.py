"""The chat service over the store: one turn from user message to finished reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmdesk.chat import ChatService, engine_history, title_from
from slmdesk.errors import InvalidInputError
from slmdesk.settings import DEFAULT_SYSTEM_PROMPT
from slmdesk.store import ModelRecord, ModelRepository
from slmdesk.store.db import open_database


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = open_database(tmp_path / "t.db")
    yield database
    database.close()


def _model(db) -> ModelRecord:  # type: ignore[no-untyped-def]
    return ModelRepository(db).add(
        name="Tiny", path="/models/tiny.gguf", size_bytes=10, architecture="llama",
        quantization="Q4_1", parameter_count=100, context_length=2048, licence="MIT",
        source="import",
    )


def test_chat_service_turn(db) -> None:  # type: ignore[no-untyped-def]
    service = ChatService(db)
    model = _model(db)
    conv = service.new_conversation(model=model)
    assert conv.system_prompt == DEFAULT_SYSTEM_PROMPT
    with pytest.raises(InvalidInputError):
        service.start_turn(conv, "   ", model=model)
    turn = service.start_turn(conv, "What is the capital of France?", model=model)
    assert turn.conversation.title == "What is the capital of France?"
    assert turn.history == [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert turn.reply.status == "streaming"
    assert turn.reply.parent_id == turn.user_message.id
    assert turn.conversation.leaf_id == turn.reply.id
    assert engine_history(turn.conversation, service.chats.path(conv.id)) == turn.history
    assert title_from("x" * 200).endswith("…")
