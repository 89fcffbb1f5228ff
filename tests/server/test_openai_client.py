"""The official `openai` client against `slmdesk serve` with the real 135M model."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from slmdesk.server.runner import LocalServer
from slmdesk.server.worker import EngineJob

pytestmark = pytest.mark.model

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]


def _model_name(client: Any) -> str:
    return str(client.models.list().data[0].id)


def test_models_list_names_the_registered_model(client: Any, served: LocalServer) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [served.model.name]  # as `slmdesk models list`
    assert models[0].owned_by == "slmdesk"


def test_streaming_chat_chunks_in_order_with_usage_last(client: Any) -> None:
    stream = client.chat.completions.create(
        model=_model_name(client), messages=HELLO, stream=True, max_tokens=12,
        temperature=0, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    finishing = [c for c in chunks[:-1] if c.choices[0].finish_reason is not None]
    assert len(finishing) == 1 and finishing[0] is chunks[-2]
    assert finishing[0].choices[0].finish_reason in ("stop", "length")
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    usage = chunks[-1].usage
    assert text and 0 < usage.completion_tokens <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_non_streaming_chat_has_usage_and_respects_max_tokens(client: Any) -> None:
    reply = client.chat.completions.create(
        model=_model_name(client), messages=HELLO, max_tokens=5, temperature=0.7, seed=3)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert reply.usage.completion_tokens <= 5
    assert choice.finish_reason in ("stop", "length")


def test_logprob_tokens_join_to_the_content(client: Any) -> None:
    reply = client.chat.completions.create(
        model=_model_name(client), messages=HELLO, max_tokens=16, temperature=0,
        logprobs=True, top_logprobs=3)
    choice = reply.choices[0]
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    for t in tokens:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        assert t.top_logprobs[0].logprob >= t.logprob - 1e-9  # the best is first
    assert 0 < len(tokens) <= reply.usage.completion_tokens


def test_streamed_logprobs_join_to_the_streamed_text(client: Any) -> None:
    stream = client.chat.completions.create(
        model=_model_name(client), messages=HELLO, max_tokens=12, temperature=0,
        logprobs=True, stream=True, stop=["."])
    text, tokens = "", ""
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.choices and chunk.choices[0].logprobs is not None:
            tokens += "".join(t.token for t in chunk.choices[0].logprobs.content)
    assert tokens == text


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "likes_tea": {"type": "boolean"},
    },
    "required": ["name", "age", "likes_tea"],
    "additionalProperties": False,
}


def _valid(data: Any) -> bool:
    return (isinstance(data, dict) and set(data) == {"name", "age", "likes_tea"}
            and isinstance(data["name"], str) and len(data["name"]) <= 12
            and isinstance(data["age"], int) and not isinstance(data["age"], bool)
            and 0 <= data["age"] <= 120 and isinstance(data["likes_tea"], bool))


def test_json_schema_replies_parse_and_validate_20_of_20(client: Any) -> None:
    model = _model_name(client)
    for seed in range(20):
        reply = client.chat.completions.create(
            model=model, max_tokens=48, temperature=0.9, seed=seed,
            messages=[{"role": "user", "content": "Describe a person as JSON."}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "person", "schema": SCHEMA}})
        content = reply.choices[0].message.content
        assert reply.choices[0].finish_reason == "stop", content
        assert _valid(json.loads(content)), content


def test_json_object_reply_parses(client: Any) -> None:
    reply = client.chat.completions.create(
        model=_model_name(client), max_tokens=64, temperature=0, seed=1,
        messages=[{"role": "user", "content": "A JSON object with your name."}],
        response_format={"type": "json_object"})
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content), dict)
    else:  # cut by max_tokens: still the start of an object
        assert reply.choices[0].message.content.lstrip().startswith("{")


def test_text_completion_streams_and_reports_logprobs(client: Any) -> None:
    reply = client.completions.create(model=_model_name(client), prompt="The sky is",
                                      max_tokens=6, temperature=0, logprobs=2)
    choice = reply.choices[0]
    assert "".join(choice.logprobs.tokens) == choice.text
    assert all(len(top) == 2 for top in choice.logprobs.top_logprobs)
    pieces = list(client.completions.create(model=_model_name(client), prompt="The sky is",
                                            max_tokens=6, temperature=0, stream=True))
    assert len({p.id for p in pieces}) == 1
    assert pieces[-1].choices[0].finish_reason in ("stop", "length")


def test_embeddings_shape(client: Any) -> None:
    result = client.embeddings.create(model=_model_name(client),
                                      input=["a small cat", "the stock market"])
    assert [d.index for d in result.data] == [0, 1]
    dims = {len(d.embedding) for d in result.data}
    assert len(dims) == 1 and dims.pop() > 100
    norm = sum(x * x for x in result.data[0].embedding)
    assert norm == pytest.approx(1.0, abs=1e-3)
    assert result.usage.prompt_tokens > 0
    floats = client.embeddings.create(model=_model_name(client), input="a small cat",
                                      encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-5)


def test_classify_gives_calibrated_probabilities_per_text(client: Any) -> None:
    texts = ["I loved this film, wonderful!", "Terrible, a waste of time."]
    response = client.post("/classify", cast_to=object, body={
        "model": _model_name(client), "labels": ["positive", "negative"], "texts": texts})
    data = response["data"]
    assert [d["text"] for d in data] == texts
    for d in data:
        assert set(d["scores"]) == {"positive", "negative"}
        assert sum(d["scores"].values()) == pytest.approx(1.0, abs=1e-6)
        assert d["label"] in ("positive", "negative") and d["calibration"] != ""


def test_wrong_key_gets_401(served: LocalServer) -> None:
    import openai

    wrong = openai.OpenAI(base_url=served.base_url, api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.models.list()
    assert info.value.status_code == 401
    assert info.value.body["type"] == "authentication_error"


def test_unknown_field_gets_400_naming_it(client: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=_model_name(client), messages=HELLO,
                                       max_tokens=4, extra_body={"mirostat": 2})
    assert info.value.body["param"] == "mirostat"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=_model_name(client), messages=HELLO,
                                       max_tokens=4, presence_penalty=0.5)
    assert info.value.body["param"] == "presence_penalty"


def test_wrong_model_gets_404_model_not_found(client: Any) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=HELLO, max_tokens=4)
    assert info.value.body["code"] == "model_not_found"


def test_beyond_the_queue_gets_429_with_retry_after(client: Any, served: LocalServer) -> None:
    import openai

    worker = served.worker
    gate = threading.Event()
    busy = worker.submit(EngineJob(lambda _e: gate.wait(30), None))
    queued: dict[str, Any] = {}
    old_size, worker.queue_size = worker.queue_size, 1
    try:
        while not worker.busy:
            time.sleep(0.01)

        def waiting_request() -> None:
            queued["reply"] = client.chat.completions.create(
                model=_model_name(client), messages=HELLO, max_tokens=3)

        thread = threading.Thread(target=waiting_request)
        thread.start()
        deadline = time.monotonic() + 10
        while worker.waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.waiting == 1
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=_model_name(client), messages=HELLO,
                                           max_tokens=3)
        assert int(info.value.response.headers["retry-after"]) >= 1
    finally:
        worker.queue_size = old_size
        gate.set()
    thread.join(30)
    busy.future.result(5)
    assert queued["reply"].choices[0].message.content is not None


def test_closing_a_stream_cancels_the_generation(client: Any, served: LocalServer) -> None:
    stream = client.chat.completions.create(
        model=_model_name(client), stream=True, max_tokens=2000, temperature=1.0, seed=1,
        messages=[{"role": "user", "content": "Write a very long story."}])
    for i, _chunk in enumerate(stream):
        if i >= 3:
            break
    stream.close()
    deadline = time.monotonic() + 5
    while served.worker.busy and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not served.worker.busy  # 2000 tokens would take far longer than 5 s here
