"""Label scoring through a remote engine: the classifier's engine surface, over HTTP.

``RemoteScorer`` offers what ``Classifier`` uses of the local engine (tokenize, render,
score_continuations, stream_tokens), so a remote classification builds the very same
prompt tokens as a local one and only the log-probabilities come from elsewhere:

* ``prompt-logprobs`` — the prompt's own token log-probabilities, from ``/v1/completions``
  with ``echo`` and ``logprobs`` (vLLM): exact, one batched request per text;
* ``top-n`` — llama-server has no prompt log-probabilities, but its native ``/completion``
  returns the top ``n_probs`` probabilities of the next token (before sampling), so each label
  token is looked up position by position (prompt + the label's earlier tokens). A label
  token outside the returned top N gets an upper bound (the smallest returned probability,
  or the mass left over, whichever is less) and a note saying so.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slmdesk.engine.llama_engine import Cancelled, ChatMessage
from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.engine.remote.capabilities import (
    CHAT_TEMPLATE,
    PROMPT_LOGPROBS,
    TOKENIZE,
    TOP_N_PROBS,
)
from slmdesk.engine.remote.client import RemoteEngine, RemoteModelInfo
from slmdesk.errors import RemoteEngineError, UnsupportedFeatureError

PROMPT_LOGPROBS_METHOD = "prompt-logprobs"
TOP_N_METHOD = "top-n"
METHODS = (PROMPT_LOGPROBS_METHOD, TOP_N_METHOD)
DEFAULT_TOP_N = 50


class ScoreList(list[float]):
    """Scores, one per continuation, with notes on how they were obtained."""

    notes: list[str]


class RemoteScorer:
    """The local engine's scoring surface for a model on a remote engine."""

    def __init__(self, engine: RemoteEngine, *, method: str | None = None,
                 top_n: int = DEFAULT_TOP_N, concurrency: int = 4) -> None:
        caps = engine.capabilities
        caps.require(TOKENIZE, engine.base_url, "classification (the label tokens)")
        if method is None:
            method = PROMPT_LOGPROBS_METHOD if caps.has(PROMPT_LOGPROBS) else TOP_N_METHOD
        if method == PROMPT_LOGPROBS_METHOD:
            caps.require(PROMPT_LOGPROBS, engine.base_url, "prompt-logprobs scoring")
        elif method == TOP_N_METHOD:
            caps.require(TOP_N_PROBS, engine.base_url, "top-n scoring")
        else:
            raise UnsupportedFeatureError(
                f"Unknown scoring method '{method}' (use {', '.join(METHODS)}).")
        if concurrency < 1:
            raise UnsupportedFeatureError("The concurrency must be at least 1.")
        self.engine = engine
        self.method = method
        self.top_n = top_n
        self.concurrency = concurrency

    @property
    def info(self) -> RemoteModelInfo:
        return self.engine.info

    @property
    def http(self) -> Any:
        return self.engine.http

    # prompt pieces ---------------------------------------------------------------------------
    def has_chat_template(self) -> bool:
        return self.engine.capabilities.has(CHAT_TEMPLATE)

    def render(self, messages: Sequence[ChatMessage]) -> str:
        data = self.http.post_json("/apply-template", {"messages": [dict(m) for m in messages]})
        return str(data["prompt"])

    def _tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        if not text:
            return []
        # llama-server reads content/add_special/parse_special, vLLM prompt/add_special_tokens.
        data = self.http.post_json("/tokenize", {
            "model": self.engine.model, "content": text, "prompt": text,
            "add_special": add_special, "add_special_tokens": add_special,
            "parse_special": parse_special})
        tokens = data.get("tokens")
        if not isinstance(tokens, list):
            raise RemoteEngineError(f"The engine at {self.engine.base_url} did not tokenize.")
        return [int(t["id"]) if isinstance(t, dict) else int(t) for t in tokens]

    def tokenize_prompt(self, text: str) -> list[int]:
        return self._tokenize(text, add_special=True, parse_special=True)

    def tokenize_piece(self, text: str, *, special: bool = False) -> list[int]:
        return self._tokenize(text, add_special=False, parse_special=special)

    def token_piece(self, token: int) -> bytes:
        data = self.http.post_json("/detokenize", {"model": self.engine.model,
                                                   "tokens": [token]})
        return str(data.get("content", data.get("prompt", ""))).encode("utf-8")

    # scoring ------------------------------------------------------------------------------
    def score_continuations(
        self,
        prefix: Sequence[int],
        continuations: Sequence[tuple[Sequence[int], Sequence[int]]],
        *,
        cancel: threading.Event | None = None,
    ) -> ScoreList:
        """Sum of log P(target token | prompt so far) per (context, target), in nats."""
        cancel = cancel or threading.Event()
        if cancel.is_set():
            raise Cancelled
        conts = [(list(prefix) + list(c), list(t)) for c, t in continuations]
        if self.method == PROMPT_LOGPROBS_METHOD:
            scores = ScoreList(self._echo_scores(conts))
            scores.notes = []
        else:
            scores = self._top_n_scores(conts, cancel)
        if cancel.is_set():
            raise Cancelled
        return scores

    def _echo_scores(self, conts: list[tuple[list[int], list[int]]]) -> list[float]:
        data = self.http.post_json("/v1/completions", {
            "model": self.engine.model, "prompt": [c + t for c, t in conts], "max_tokens": 1,
            "temperature": 0, "echo": True, "logprobs": 0})
        choices = sorted(data.get("choices") or [], key=lambda ch: int(ch.get("index", 0)))
        if len(choices) != len(conts):
            raise RemoteEngineError(
                f"The engine at {self.engine.base_url} answered {len(choices)} of "
                f"{len(conts)} prompts.")
        return [echo_score(ch, len(c), len(t)) for ch, (c, t) in zip(choices, conts, strict=True)]

    def _top_n_scores(self, conts: list[tuple[list[int], list[int]]],
                      cancel: threading.Event) -> ScoreList:
        # One request per distinct prompt: labels share their first positions' prompts.
        prompts = {tuple(c + t[:k]) for c, t in conts for k in range(len(t))}
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            found = dict(zip(prompts, pool.map(lambda p: self._next_token_logprobs(p, cancel),
                                               prompts), strict=True))
        scores = ScoreList()
        scores.notes = []
        for c, t in conts:
            total = 0.0
            for k, token in enumerate(t):
                top = found[tuple(c + t[:k])]
                if token in top:
                    total += top[token]
                    continue
                bound = top_n_bound(list(top.values()))
                total += bound
                scores.notes.append(
                    f"A label token (position {k + 1}) was not among the engine's top "
                    f"{self.top_n}; its probability was bounded by {math.exp(bound):.2g}.")
            scores.append(total)
        return scores

    def _next_token_logprobs(self, prompt: tuple[int, ...], cancel: threading.Event
                             ) -> dict[int, float]:
        if cancel.is_set():
            return {}
        data = self.http.post_json("/completion", {
            "prompt": list(prompt), "n_predict": 1, "n_probs": self.top_n, "temperature": 0,
            "cache_prompt": True, "post_sampling_probs": False})
        probs = data.get("completion_probabilities") or []
        if not probs:
            raise RemoteEngineError(
                f"The engine at {self.engine.base_url} returned no token probabilities.")
        return {int(item["id"]): float(item["logprob"])
                for item in probs[0].get("top_logprobs") or []}

    # explanations -------------------------------------------------------------------------
    def stream_tokens(self, tokens: Sequence[int], sampling: SamplingParams | None = None, *,
                      cancel: threading.Event | None = None, **_: Any) -> GenerationResult:
        """A short completion after ``tokens`` (the classifier's explanation)."""
        sampling = sampling or SamplingParams()
        data = self.http.post_json("/v1/completions", {
            "model": self.engine.model, "prompt": list(tokens),
            "max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
            "stop": list(sampling.stop) or None})
        choice = (data.get("choices") or [{}])[0]
        return GenerationResult(text=str(choice.get("text", "")),
                                finish_reason=str(choice.get("finish_reason") or "stop"))


def echo_score(choice: dict[str, Any], n_context: int, n_target: int) -> float:
    """Sum of the echoed prompt log-probabilities of the last ``n_target`` prompt tokens."""
    values = (choice.get("logprobs") or {}).get("token_logprobs") or []
    if len(values) < n_context + n_target:
        raise RemoteEngineError(
            "The engine echoed fewer prompt tokens than it was sent; its prompt "
            "log-probabilities cannot be matched to the labels.")
    target = values[n_context:n_context + n_target]
    if any(not isinstance(v, (int, float)) for v in target):
        raise RemoteEngineError("The engine echoed a label token without its log-probability.")
    return float(sum(target))


def top_n_bound(logprobs: list[float]) -> float:
    """An upper bound for a token's log-probability when it is outside the top N returned."""
    if not logprobs:
        return -math.inf
    rest = 1.0 - sum(math.exp(v) for v in logprobs)
    smallest = min(logprobs)
    return min(smallest, math.log(rest)) if rest > 0 else smallest
