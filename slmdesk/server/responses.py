"""OpenAI's response shapes: completions, stream chunks, log-probabilities, usage, models."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from slmdesk.engine.params import GenerationResult
from slmdesk.server.generation import TokenEntry
from slmdesk.store.models import ModelRecord

OWNER = "slmdesk"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def sse(data: Any) -> str:
    """One server-sent event carrying ``data`` as JSON (or the literal ``[DONE]``)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n"


def usage(result: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def finish_reason(result: GenerationResult) -> str:
    return "length" if result.finish_reason == "length" else "stop"


def _piece_text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")


def chat_logprobs(entries: Sequence[TokenEntry]) -> dict[str, Any]:
    """``choices[].logprobs`` of a chat completion for these tokens."""
    return {
        "content": [
            {
                "token": e.text,
                "logprob": e.info.logprob,
                "bytes": list(e.info.piece),
                "top_logprobs": [
                    {"token": _piece_text(p), "logprob": lp, "bytes": list(p)}
                    for p, lp in e.info.top
                ],
            }
            for e in entries
        ],
        "refusal": None,
    }


def completion_logprobs(entries: Sequence[TokenEntry], offset: int = 0) -> dict[str, Any]:
    """``choices[].logprobs`` of a (legacy) text completion for these tokens."""
    return {
        "tokens": [e.text for e in entries],
        "token_logprobs": [e.info.logprob for e in entries],
        "top_logprobs": [{_piece_text(p): lp for p, lp in e.info.top} for e in entries],
        "text_offset": [offset + e.start for e in entries],
    }


class ChatShapes:
    """The bodies of one chat completion: every chunk of a stream shares its id."""

    object_name = "chat.completion"

    def __init__(self, model: str) -> None:
        self.id = new_id("chatcmpl")
        self.created = int(time.time())
        self.model = model

    def _base(self, suffix: str = "") -> dict[str, Any]:
        return {"id": self.id, "object": self.object_name + suffix, "created": self.created,
                "model": self.model, "system_fingerprint": OWNER}

    def whole(self, result: GenerationResult, entries: Sequence[TokenEntry] | None
              ) -> dict[str, Any]:
        return {**self._base(), "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": result.text, "refusal": None},
            "logprobs": chat_logprobs(entries) if entries is not None else None,
            "finish_reason": finish_reason(result),
        }], "usage": usage(result)}

    def chunk(self, delta: dict[str, Any], *, logprobs: dict[str, Any] | None = None,
              finish: str | None = None, with_usage: bool = False) -> dict[str, Any]:
        body = {**self._base(".chunk"), "choices": [
            {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}
        if with_usage:
            body["usage"] = None
        return body

    def piece(self, text: str, entries: Sequence[TokenEntry] | None, with_usage: bool
              ) -> dict[str, Any]:
        return self.chunk({"content": text},
                          logprobs=chat_logprobs(entries) if entries is not None else None,
                          with_usage=with_usage)

    def usage_chunk(self, result: GenerationResult) -> dict[str, Any]:
        return {**self._base(".chunk"), "choices": [], "usage": usage(result)}


class CompletionShapes(ChatShapes):
    """The bodies of one text completion (``/v1/completions``)."""

    object_name = "text_completion"

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.id = new_id("cmpl")

    def whole(self, result: GenerationResult, entries: Sequence[TokenEntry] | None
              ) -> dict[str, Any]:
        return {**self._base(), "choices": [{
            "index": 0, "text": result.text,
            "logprobs": completion_logprobs(entries) if entries is not None else None,
            "finish_reason": finish_reason(result),
        }], "usage": usage(result)}

    def chunk(self, delta: dict[str, Any], *, logprobs: dict[str, Any] | None = None,
              finish: str | None = None, with_usage: bool = False) -> dict[str, Any]:
        # A text completion's chunks have the same object name as the whole (OpenAI's API).
        body = {**self._base(), "choices": [
            {"index": 0, "text": delta.get("content", ""), "logprobs": logprobs,
             "finish_reason": finish}]}
        if with_usage:
            body["usage"] = None
        return body

    def piece(self, text: str, entries: Sequence[TokenEntry] | None, with_usage: bool
              ) -> dict[str, Any]:
        logprobs = None
        if entries is not None:
            logprobs = completion_logprobs(entries)
        return self.chunk({"content": text}, logprobs=logprobs, with_usage=with_usage)

    def usage_chunk(self, result: GenerationResult) -> dict[str, Any]:
        return {**self._base(), "choices": [], "usage": usage(result)}


def model_object(model: ModelRecord, loaded: bool) -> dict[str, Any]:
    """A model as ``/v1/models`` lists it: its id is its name in `slmdesk models list`."""
    created = 0
    try:
        from datetime import datetime

        created = int(datetime.fromisoformat(model.added_at).timestamp())
    except ValueError:
        pass
    return {
        "id": model.name, "object": "model", "created": created, "owned_by": OWNER,
        "slmdesk": {"id": model.id, "architecture": model.architecture,
                    "quantization": model.quantization, "context_length": model.context_length,
                    "loaded": loaded},
    }
