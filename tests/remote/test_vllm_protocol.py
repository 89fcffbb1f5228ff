"""Scoring with vLLM's prompt log-probabilities (echo), against recorded responses."""

from __future__ import annotations

import math
from typing import Any

import pytest

from slmdesk.engine.remote.capabilities import (
    PROMPT_LOGPROBS,
    TOKENIZE,
    TOP_N_PROBS,
    Capabilities,
    list_models,
)
from slmdesk.engine.remote.client import RemoteEngine
from slmdesk.engine.remote.scoring import (
    PROMPT_LOGPROBS_METHOD,
    RemoteScorer,
    echo_score,
    top_n_bound,
)
from slmdesk.errors import RemoteEngineError, UnsupportedFeatureError
from tests.remote import vllm_responses as recorded

MODEL = recorded.MODELS["data"][0]["id"]


class RecordedHttp:
    """Answers like vLLM, from the recorded responses; remembers the bodies sent."""

    base_url = "http://gpu-box:8000"
    sent: list[dict[str, Any]]

    def __init__(self) -> None:
        self.sent = []

    def get_json(self, path: str) -> Any:
        return {"/v1/models": recorded.MODELS, "/version": recorded.VERSION}[path]

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        self.sent.append({"path": path, **body})
        if path == "/v1/completions":
            return recorded.echo_completion(body["prompt"])
        if path == "/tokenize":
            return recorded.TOKENIZE
        raise RemoteEngineError(f"404 {path}")


def _vllm(features: dict[str, bool]) -> RemoteEngine:
    caps = Capabilities(kind="vllm", models=[MODEL], model=MODEL, n_ctx=32768,
                        features=features)
    engine = RemoteEngine("http://gpu-box:8000/v1", capabilities=caps)
    object.__setattr__(engine, "http", RecordedHttp())
    return engine


def test_models_list_gives_vllm_context() -> None:
    listed = list_models(RecordedHttp())  # type: ignore[arg-type]
    assert listed.ids == [MODEL] and listed.n_ctx == 32768 and listed.owned_by == "vllm"


def test_echo_scores_sum_the_label_tokens_only() -> None:
    engine = _vllm({PROMPT_LOGPROBS: True, TOKENIZE: True})
    scorer = RemoteScorer(engine)
    assert scorer.method == PROMPT_LOGPROBS_METHOD
    prefix = [1, 2, 3]
    scores = scorer.score_continuations(prefix, [([9], [10]), ([9], [11, 12])])
    # prompt positions 0..4: label tokens at 4 (first) and 4, 5 (second)
    assert scores == pytest.approx([-2.0, -2.0 - 2.5])
    sent = engine.http.sent[-1]  # type: ignore[attr-defined]
    assert sent["echo"] is True and sent["logprobs"] == 0 and sent["max_tokens"] == 1
    assert sent["prompt"] == [[1, 2, 3, 9, 10], [1, 2, 3, 9, 11, 12]]  # one batched request


def test_echo_with_too_few_tokens_is_refused() -> None:
    choice = {"logprobs": {"token_logprobs": [None, -1.0]}}
    with pytest.raises(RemoteEngineError, match="fewer prompt tokens"):
        echo_score(choice, 2, 2)


def test_scoring_without_any_probabilities_is_refused() -> None:
    engine = _vllm({TOKENIZE: True, PROMPT_LOGPROBS: False, TOP_N_PROBS: False})
    with pytest.raises(UnsupportedFeatureError, match="top-N token probabilities"):
        RemoteScorer(engine)


def test_top_n_bound_is_the_smaller_of_last_and_rest() -> None:
    assert top_n_bound([math.log(0.5), math.log(0.3)]) == pytest.approx(math.log(0.2))
    assert top_n_bound([math.log(0.5), math.log(0.05)]) == pytest.approx(math.log(0.05))
