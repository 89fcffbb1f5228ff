"""The chat service over the store: one turn from user message to finished reply."""

from __future__ import annotations

import pytest

from slmdesk.chat import ChatService, engine_history, title_from
from slmdesk.errors import InvalidInputError
from slmdesk.settings import DEFAULT_SYSTEM_PROMPT
from tests.unit.models import tiny_model


def test_chat_service_turn(db) -> None:  # type: ignore[no-untyped-def]
    service = ChatService(db)
    model = tiny_model(db)
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


def test_a_new_conversation_starts_with_the_models_own_defaults(db) -> None:  # type: ignore[no-untyped-def]
    # Issue 16: per-model defaults; the GUI's new chat and the CLI's both come here.
    from slmdesk.engine.params import SamplingParams
    from slmdesk.settings import save_model_defaults

    service = ChatService(db)
    model = tiny_model(db)
    sampling = SamplingParams(temperature=0.2, max_tokens=64)
    save_model_defaults(db, model.id, system_prompt="Reply in French.", sampling=sampling,
                        max_context=1024)
    conv = service.new_conversation(model=model)
    assert conv.system_prompt == "Reply in French."
    assert SamplingParams.from_json(conv.params) == sampling
    # What the caller gives wins; a conversation without a model gets the app's defaults.
    given = service.new_conversation(model=model, system_prompt="", sampling=SamplingParams())
    assert given.system_prompt == "" and SamplingParams.from_json(given.params) == SamplingParams()
    assert service.new_conversation(model=None).system_prompt == DEFAULT_SYSTEM_PROMPT
