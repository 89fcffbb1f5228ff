"""Remote chat against a misbehaving engine: killed mid-stream, stalled, malformed, 500, wrong
model, a feature it lacks."""

from __future__ import annotations

import pytest

from slmdesk.engine.params import SamplingParams
from slmdesk.engine.remote.capabilities import LOGPROBS, Capabilities
from slmdesk.engine.remote.client import RemoteEngine
from slmdesk.engine.structured import OutputOptions
from slmdesk.errors import RemoteEngineError, UnsupportedFeatureError
from tests.remote.fake_engine import MODEL, FakeEngine

HI = [{"role": "user", "content": "Hi"}]


def _engine(fake: FakeEngine, **kw: object) -> RemoteEngine:
    caps = Capabilities(kind="openai-compatible", models=[MODEL], model=MODEL, n_ctx=2048,
                        features={LOGPROBS: False})
    return RemoteEngine(fake.url, capabilities=caps, **kw)  # type: ignore[arg-type]


def test_a_whole_stream_is_the_reply(fake: FakeEngine) -> None:
    pieces: list[str] = []
    result = _engine(fake).stream_chat(HI, SamplingParams(max_tokens=8), on_text=pieces.append)
    assert result.finish_reason == "stop"
    assert result.text == "".join(pieces) == "Hello there, friend."
    assert (result.prompt_tokens, result.completion_tokens) == (5, 4)
    assert fake.requests[0]["model"] == MODEL and fake.requests[0]["stream"] is True


def test_engine_killed_mid_stream_keeps_the_reply_as_interrupted(fake: FakeEngine) -> None:
    fake.mode = "killed"
    result = _engine(fake).stream_chat(HI)
    assert result.finish_reason == "interrupted"
    assert result.text == "Hello there,"
    assert any("kept" in note for note in result.notes)


def test_stalled_engine_times_out_with_a_message(fake: FakeEngine) -> None:
    fake.mode = "stalled"
    result = _engine(fake, read_timeout_s=1.0).stream_chat(HI)
    assert result.finish_reason == "interrupted"
    assert result.text == "Hello there,"
    assert any("sent nothing for 1 s" in note for note in result.notes)


def test_malformed_event_is_a_clear_error(fake: FakeEngine) -> None:
    fake.mode = "malformed"
    with pytest.raises(RemoteEngineError, match="malformed stream event"):
        _engine(fake).stream_chat(HI)


def test_server_error_names_status_and_message(fake: FakeEngine) -> None:
    fake.mode = "500"
    with pytest.raises(RemoteEngineError, match=r"answered 500.*the GPU caught fire"):
        _engine(fake).stream_chat(HI)


def test_wrong_model_name_lists_the_served_ones(fake: FakeEngine) -> None:
    with pytest.raises(RemoteEngineError, match="has no model 'gpt-9'; it serves: fake-model"):
        RemoteEngine(fake.url, model="gpt-9").stream_chat(HI)


def test_a_missing_feature_is_refused_not_dropped(fake: FakeEngine) -> None:
    output = OutputOptions(on_token=lambda _t: None, top_logprobs=2)
    with pytest.raises(UnsupportedFeatureError, match="log-probabilities"):
        _engine(fake).stream_chat(HI, output=output)
    assert fake.requests == []


def test_probe_marks_what_the_engine_lacks(fake: FakeEngine) -> None:
    caps = RemoteEngine(fake.url).capabilities
    assert caps.models == [MODEL] and caps.kind == "openai-compatible"
    assert not any(caps.features.values())
    assert "404" in caps.reasons["embeddings"]


def test_unreachable_engine_says_so() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteEngineError, match="Cannot reach the engine"):
        RemoteEngine(f"http://127.0.0.1:{port}/v1").capabilities  # noqa: B018
