"""A remote OpenAI-compatible engine with the chat surface of ``LlamaEngine`` (stream_chat).

The chat service, the CLI and the classifier call it as they call the local engine: it
streams ``/v1/chat/completions`` and returns a ``GenerationResult``. How a stream ends is
kept honest: a cancelled reply is "cancelled", an engine that dies or goes quiet mid-reply
leaves the text received so far with finish reason "interrupted" and a note saying why, and
a feature the engine lacks (checked by the capability probe) is refused, never dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from slmdesk.engine.llama_engine import ChatMessage
from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.engine.remote.capabilities import LOGPROBS, Capabilities, probe
from slmdesk.engine.remote.http import (
    READ_TIMEOUT_S,
    RemoteHttp,
    StreamInterrupted,
    StreamStalled,
    normalise_base_url,
)
from slmdesk.engine.structured import OutputOptions, TokenLogprob
from slmdesk.errors import UnsupportedFeatureError

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RemoteModelInfo:
    """What the local engine's ``info`` says, for a model on a remote engine."""

    name: str
    n_ctx: int
    base_url: str
    kind: str

    @property
    def path(self) -> str:
        return f"{self.base_url}#{self.name}"


class RemoteEngine:
    """One model on one remote engine; probe once, then chat (thread-safe: no shared state)."""

    def __init__(self, base_url: str, api_key: str | None = None, *, model: str | None = None,
                 capabilities: Capabilities | None = None,
                 read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.http = RemoteHttp(normalise_base_url(base_url), api_key or None,
                               read_timeout_s=read_timeout_s)
        self._wanted = model
        self._caps = capabilities

    @property
    def base_url(self) -> str:
        return self.http.base_url

    @property
    def capabilities(self) -> Capabilities:
        """The probe's findings (probed on first use)."""
        if self._caps is None or (self._wanted and self._caps.model != self._wanted):
            self._caps = probe(self.http, self._wanted)
        return self._caps

    @property
    def known_capabilities(self) -> Capabilities | None:
        """The findings ``capabilities`` would give without probing now; None when reading
        them would probe the engine (over the network)."""
        if self._caps is None or (self._wanted and self._caps.model != self._wanted):
            return None
        return self._caps

    @property
    def model(self) -> str:
        return self.capabilities.model

    @property
    def info(self) -> RemoteModelInfo:
        caps = self.capabilities
        return RemoteModelInfo(caps.model, caps.n_ctx or 2048, self.base_url, caps.kind)

    def is_loaded(self) -> bool:
        return True

    def unload(self) -> None:
        """Nothing to free: the model lives on the engine."""

    # chat ----------------------------------------------------------------------------------
    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: Any = None,
        on_prompt_progress: Any = None,
        output: OutputOptions | None = None,
        continue_from: str = "",
    ) -> GenerationResult:
        """Stream the engine's reply to ``messages``, calling ``on_text`` with each piece.

        ``continue_from`` (going on from a reply's saved start, as the local engine does) is
        refused: OpenAI's chat API has no way to continue an assistant message.
        """
        if continue_from:
            raise UnsupportedFeatureError(
                f"The engine at {self.base_url} cannot continue a reply (OpenAI's chat API "
                "has no way to go on from a reply's text); regenerate it instead.")
        sampling = sampling or SamplingParams()
        cancel = cancel or threading.Event()
        body = self._chat_body(messages, sampling, output)
        result = GenerationResult()
        pieces: list[str] = []
        started = time.perf_counter()
        events = self.http.post_events("/v1/chat/completions", body)
        try:
            self._consume(events, result, pieces, cancel, on_text, output, started)
        except (StreamInterrupted, StreamStalled) as exc:
            if not pieces:
                raise
            result.finish_reason = INTERRUPTED
            result.notes.append(f"{exc.message} The reply so far is kept.")
        finally:
            events.close()  # closing the connection stops the engine's generation
        result.text = "".join(pieces)
        result.duration_s = time.perf_counter() - started
        if result.ttft_s is not None and result.completion_tokens > 1:
            gen_time = max(result.duration_s - result.ttft_s, 1e-9)
            result.tokens_per_s = (result.completion_tokens - 1) / gen_time
        return result

    def _chat_body(self, messages: Sequence[ChatMessage], sampling: SamplingParams,
                   output: OutputOptions | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model, "messages": [dict(m) for m in messages], "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if output is not None:
            if output.grammar is not None:
                raise UnsupportedFeatureError(
                    "A llama.cpp grammar cannot be sent to a remote engine; ask for "
                    "response_format json_schema instead.")
            if output.on_token is not None:
                self.capabilities.require(LOGPROBS, self.base_url, "per-token output")
                body["logprobs"] = True
                body["top_logprobs"] = output.top_logprobs
        return body

    def _consume(self, events: Iterator[dict[str, Any]], result: GenerationResult,
                 pieces: list[str], cancel: threading.Event, on_text: Any,
                 output: OutputOptions | None, started: float) -> None:
        finish: str | None = None
        for event in events:
            if cancel.is_set():
                result.finish_reason = "cancelled"
                return
            usage = event.get("usage")
            if isinstance(usage, dict):
                result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                result.prompt_tokens_evaluated = result.prompt_tokens
                result.completion_tokens = int(usage.get("completion_tokens") or 0)
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                if text:
                    if result.ttft_s is None:
                        result.ttft_s = time.perf_counter() - started
                    pieces.append(text)
                    if on_text is not None:
                        on_text(text)
                if output is not None and output.on_token is not None:
                    for item in (choice.get("logprobs") or {}).get("content") or []:
                        output.on_token(_token_logprob(item))
                finish = choice.get("finish_reason") or finish
        if cancel.is_set():
            result.finish_reason = "cancelled"
        elif finish is None:
            # [DONE] or the end of the body without a finish reason: the engine stopped
            # mid-reply (llama-server's slot was killed, a proxy cut the stream).
            raise StreamInterrupted(
                f"The engine at {self.base_url} ended the stream without finishing the reply.")
        else:
            result.finish_reason = "length" if finish == "length" else "stop"
        if not result.completion_tokens and pieces:
            result.completion_tokens = len(pieces)


def _token_logprob(item: dict[str, Any]) -> TokenLogprob:
    """OpenAI's ``logprobs.content`` item as the local engine reports a token."""
    piece = bytes(item["bytes"]) if item.get("bytes") else str(item.get("token", "")).encode()
    top = tuple(
        (bytes(t["bytes"]) if t.get("bytes") else str(t.get("token", "")).encode(),
         float(t.get("logprob", 0.0)))
        for t in item.get("top_logprobs") or [])
    return TokenLogprob(token=-1, piece=piece, logprob=float(item.get("logprob", 0.0)), top=top)


def check_engine(base_url: str, api_key: str | None = None,
                 model: str | None = None) -> Capabilities:
    """Probe the engine at ``base_url`` (raises ``RemoteEngineError`` when it cannot)."""
    return RemoteEngine(base_url, api_key, model=model).capabilities
