"""Parallel sequences on the real 135M model: several replies decoded together, each with
its own sampling, stop strings, limits and cancel, and the single path's cache intact after."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from slmdesk.engine.llama_engine import LlamaEngine, SequenceRequest
from slmdesk.engine.params import GenerationResult, LoadParams, SamplingParams
from slmdesk.engine.structured import OutputOptions, TokenLogprob

pytestmark = pytest.mark.model

SUBJECTS = ("a lighthouse keeper", "a clockmaker", "a lost kite", "a river otter")


def _story(subject: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a short story about {subject}."}]


@pytest.fixture(scope="module")
def parallel_engine(model_path: Path) -> Iterator[LlamaEngine]:
    eng = LlamaEngine()
    eng.load(model_path, LoadParams(max_context=2048, n_threads=1, parallel_sequences=4))
    yield eng
    eng.unload()


class Collected:
    """One request's streamed pieces, tokens and end."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.tokens: list[TokenLogprob] = []
        self.results: list[GenerationResult] = []
        self.errors: list[BaseException] = []

    def fields(self) -> dict[str, Any]:
        return {"on_done": self.results.append, "on_error": self.errors.append,
                "on_text": self.pieces.append}


def _run_all(engine: LlamaEngine, requests: Sequence[SequenceRequest],
             later: Sequence[SequenceRequest] = ()) -> None:
    """Hand ``requests`` over at once and ``later`` one step after."""
    handed = [list(requests), list(later)]

    def admit(free: int) -> list[SequenceRequest]:
        if not handed:
            return []
        batch = handed.pop(0)
        assert len(batch) <= free
        return batch

    engine.generate_together(admit)


def test_four_replies_together_stream_what_they_return(parallel_engine: LlamaEngine) -> None:
    assert parallel_engine.parallel_sequences == 4
    collected = [Collected() for _ in SUBJECTS]
    sampling = [SamplingParams(temperature=0, max_tokens=n, repeat_penalty=1.0)
                for n in (8, 16, 24, 32)]
    requests = [parallel_engine.chat_sequence(_story(s), p, **c.fields())
                for s, p, c in zip(SUBJECTS, sampling, collected, strict=True)]
    _run_all(parallel_engine, requests)
    for c, p in zip(collected, sampling, strict=True):
        assert not c.errors and len(c.results) == 1
        result = c.results[0]
        assert result.error is None and result.text.strip()
        assert "".join(c.pieces) == result.text
        assert result.finish_reason in ("stop", "length")
        assert 0 < result.completion_tokens <= p.max_tokens
        if result.finish_reason == "length":
            assert result.completion_tokens == p.max_tokens
        assert result.ttft_s is not None and result.prompt_tokens_evaluated > 0


def test_each_reply_keeps_its_own_stop_logprobs_and_grammar(
        parallel_engine: LlamaEngine) -> None:
    from slmdesk.engine.structured import json_grammar

    stopped, logged, shaped = Collected(), Collected(), Collected()
    greedy = SamplingParams(temperature=0, max_tokens=40)
    requests = [
        parallel_engine.chat_sequence(_story(SUBJECTS[0]), greedy.merged(stop=["."]),
                                      **stopped.fields()),
        parallel_engine.chat_sequence(
            _story(SUBJECTS[1]), greedy,
            output=OutputOptions(on_token=logged.tokens.append, top_logprobs=2),
            **logged.fields()),
        parallel_engine.tokens_sequence(
            parallel_engine.tokenize_prompt("A JSON object describing a cat:"),
            greedy.merged(max_tokens=60), output=OutputOptions(grammar=json_grammar()),
            **shaped.fields()),
    ]
    _run_all(parallel_engine, requests)
    stop_result = stopped.results[0]
    assert "." not in stop_result.text
    if stop_result.completion_tokens < 40:
        assert stop_result.finish_reason == "stop"
    log_result = logged.results[0]
    assert len(logged.tokens) == log_result.completion_tokens
    joined = b"".join(t.piece for t in logged.tokens).decode("utf-8", errors="replace")
    assert joined.startswith(log_result.text)
    assert all(t.logprob <= 0 and len(t.top) == 2 for t in logged.tokens)
    assert shaped.results[0].text.lstrip().startswith("{")


def test_a_cancelled_reply_ends_alone_and_one_joins_later(parallel_engine: LlamaEngine
                                                          ) -> None:
    cancel = threading.Event()
    cancelled, steady, joined = Collected(), Collected(), Collected()

    def stop_after_three(piece: str) -> None:
        cancelled.pieces.append(piece)
        if len(cancelled.pieces) >= 3:
            cancel.set()

    long = SamplingParams(temperature=0, max_tokens=30, repeat_penalty=1.0)
    first = [
        parallel_engine.chat_sequence(_story(SUBJECTS[0]), long, cancel=cancel,
                                      on_done=cancelled.results.append,
                                      on_error=cancelled.errors.append,
                                      on_text=stop_after_three),
        parallel_engine.chat_sequence(_story(SUBJECTS[1]), long, **steady.fields()),
    ]
    late = [parallel_engine.chat_sequence(_story(SUBJECTS[2]), long, **joined.fields())]
    _run_all(parallel_engine, first, late)
    assert cancelled.results[0].finish_reason == "cancelled"
    assert cancelled.results[0].completion_tokens < 30
    for c in (steady, joined):
        assert c.results[0].finish_reason in ("stop", "length")
        assert "".join(c.pieces) == c.results[0].text


def test_a_refused_grammar_fails_its_request_only(parallel_engine: LlamaEngine) -> None:
    good, bad = Collected(), Collected()
    greedy = SamplingParams(temperature=0, max_tokens=6)
    requests = [
        parallel_engine.chat_sequence(_story(SUBJECTS[0]), greedy,
                                      output=OutputOptions(grammar="root ::= ("),
                                      **bad.fields()),
        parallel_engine.chat_sequence(_story(SUBJECTS[1]), greedy, **good.fields()),
    ]
    _run_all(parallel_engine, requests)
    assert len(bad.errors) == 1 and not bad.results
    assert good.results[0].finish_reason in ("stop", "length")


def test_the_single_path_reuses_what_sequence_0_left_cached(parallel_engine: LlamaEngine
                                                            ) -> None:
    greedy = SamplingParams(temperature=0, max_tokens=12)
    first, other = Collected(), Collected()
    requests = [parallel_engine.chat_sequence(_story(SUBJECTS[3]), greedy, **first.fields()),
                parallel_engine.chat_sequence(_story(SUBJECTS[0]), greedy, **other.fields())]
    _run_all(parallel_engine, requests)
    # The first request had sequence 0: the single path finds its prompt cached.
    again = parallel_engine.stream_chat(_story(SUBJECTS[3]), greedy)
    assert again.prompt_tokens_evaluated == 1
    assert again.finish_reason in ("stop", "length") and again.text.strip()
    fresh = parallel_engine.stream_chat(_story("a paper boat"), greedy)
    assert fresh.error is None and fresh.text.strip()
