"""What a remote engine can do, found by asking it: each feature is tried, not assumed.

A server that accepts a field and ignores it (the most common complaint about local servers)
counts as lacking the feature: ``logprobs`` is only "yes" when log-probabilities come back,
``json_schema`` only when the reply parses and follows the schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slmdesk.engine.remote.http import RemoteHttp
from slmdesk.errors import RemoteEngineError, UnsupportedFeatureError
from slmdesk.json_data import JsonFields

# Feature keys, as stored and shown; persisted, never reused.
LOGPROBS = "logprobs"  # per-token log-probabilities of generated tokens (OpenAI logprobs)
PROMPT_LOGPROBS = "prompt_logprobs"  # of the prompt's own tokens (completions echo, vLLM)
TOP_N_PROBS = "top_n_probs"  # llama-server's native /completion n_probs
TOKENIZE = "tokenize"  # POST /tokenize (llama-server, vLLM)
CHAT_TEMPLATE = "chat_template"  # POST /apply-template renders the model's chat template
JSON_SCHEMA = "json_schema"  # response_format json_schema enforced (grammar)
EMBEDDINGS = "embeddings"  # POST /v1/embeddings
FEATURES = (LOGPROBS, PROMPT_LOGPROBS, TOP_N_PROBS, TOKENIZE, CHAT_TEMPLATE, JSON_SCHEMA,
            EMBEDDINGS)

FEATURE_NAMES = {
    LOGPROBS: "log-probabilities of generated tokens",
    PROMPT_LOGPROBS: "log-probabilities of prompt tokens (echo)",
    TOP_N_PROBS: "top-N token probabilities (/completion n_probs)",
    TOKENIZE: "tokenization (/tokenize)",
    CHAT_TEMPLATE: "chat template rendering (/apply-template)",
    JSON_SCHEMA: "JSON schema (grammar-constrained output)",
    EMBEDDINGS: "embeddings",
}

_SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
           "additionalProperties": False}


@dataclass
class Capabilities(JsonFields):
    """The probe's findings for one engine and model."""

    kind: str  # "llama-server" | "vllm" | "slmdesk" | "openai-compatible"
    models: list[str]
    model: str  # the model the probe used
    n_ctx: int | None
    features: dict[str, bool] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # why a feature is missing

    def has(self, feature: str) -> bool:
        return self.features.get(feature, False)

    def require(self, feature: str, base_url: str, purpose: str) -> None:
        """Raise ``UnsupportedFeatureError`` naming what is missing when it is."""
        if self.has(feature):
            return
        why = self.reasons.get(feature)
        raise UnsupportedFeatureError(
            f"The engine at {base_url} ({self.kind}) does not offer "
            f"{FEATURE_NAMES.get(feature, feature)}, which {purpose} needs"
            + (f" ({why})" if why else "") + ". Nothing was sent in its place."
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Capabilities:
        return cls(
            kind=str(data.get("kind", "openai-compatible")),
            models=[str(m) for m in data.get("models", [])],
            model=str(data.get("model", "")),
            n_ctx=int(data["n_ctx"]) if data.get("n_ctx") is not None else None,
            features={str(k): bool(v) for k, v in dict(data.get("features", {})).items()},
            reasons={str(k): str(v) for k, v in dict(data.get("reasons", {})).items()},
        )

    def summary(self) -> str:
        """One line per feature: yes/no and, for a no, why."""
        lines = []
        for key in FEATURES:
            mark = "yes" if self.has(key) else "no"
            why = f" ({self.reasons[key]})" if not self.has(key) and key in self.reasons else ""
            lines.append(f"  {FEATURE_NAMES[key]}: {mark}{why}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ModelList:
    """``GET /v1/models``: the ids, the first model's context (when said) and its owner."""

    ids: list[str]
    n_ctx: int | None
    owned_by: str


def list_models(http: RemoteHttp) -> ModelList:
    """The engine's model ids (``GET /v1/models``) and the first one's context, if said."""
    data = http.get_json("/v1/models")
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise RemoteEngineError(
            f"The engine at {http.base_url} answered /v1/models without a model list.")
    ids = [str(r["id"]) for r in rows if isinstance(r, dict) and "id" in r]
    if not ids:
        raise RemoteEngineError(f"The engine at {http.base_url} serves no model.")
    first = rows[0]
    n_ctx = first.get("max_model_len") or (first.get("meta") or {}).get("n_ctx_train")
    return ModelList(ids, int(n_ctx) if isinstance(n_ctx, int) else None,
                     str(first.get("owned_by", "")))


def pick_model(http: RemoteHttp, models: list[str], wanted: str | None) -> str:
    """``wanted`` when the engine serves it (else a clear error), or its only/first model."""
    if wanted is None:
        return models[0]
    if wanted in models:
        return wanted
    raise RemoteEngineError(
        f"The engine at {http.base_url} has no model '{wanted}'; it serves: "
        f"{', '.join(models)}."
    )


def probe(http: RemoteHttp, model: str | None = None) -> Capabilities:
    """Ask the engine what it serves and try each feature once (a few short requests)."""
    listed = list_models(http)
    chosen = pick_model(http, listed.ids, model)
    kind, props_ctx = _kind(http, listed.owned_by)
    caps = Capabilities(kind=kind, models=listed.ids, model=chosen,
                        n_ctx=props_ctx or listed.n_ctx)
    checks: dict[str, Callable[[RemoteHttp, str], bool]] = {
        LOGPROBS: _has_logprobs, PROMPT_LOGPROBS: _has_prompt_logprobs,
        TOP_N_PROBS: _has_top_n_probs, TOKENIZE: _has_tokenize,
        CHAT_TEMPLATE: _has_chat_template, JSON_SCHEMA: _has_json_schema,
        EMBEDDINGS: _has_embeddings,
    }
    for key, check in checks.items():
        try:
            caps.features[key] = check(http, chosen)
            if not caps.features[key]:
                caps.reasons[key] = "accepted but not returned"
        except RemoteEngineError as exc:
            caps.features[key] = False
            caps.reasons[key] = _short(exc.message)
    return caps


def _short(message: str) -> str:
    return message if len(message) <= 160 else message[:157] + "..."


def _kind(http: RemoteHttp, owned_by: str) -> tuple[str, int | None]:
    """Which server this is: llama-server answers /props, vLLM /version; slmdesk owns its
    models (``owned_by``)."""
    if owned_by == "slmdesk":
        return "slmdesk", None
    try:
        props = http.get_json("/props")
        if isinstance(props, dict) and "default_generation_settings" in props:
            settings = props["default_generation_settings"]
            n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            return "llama-server", int(n_ctx) if isinstance(n_ctx, int) else None
    except RemoteEngineError:
        pass
    try:
        version = http.get_json("/version")
        if isinstance(version, dict) and "version" in version:
            return "vllm", None
    except RemoteEngineError:
        pass
    return "openai-compatible", None


def _has_logprobs(http: RemoteHttp, model: str) -> bool:
    data = http.post_json("/v1/chat/completions", {
        "model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1,
        "temperature": 0, "logprobs": True, "top_logprobs": 2})
    logprobs = (data.get("choices") or [{}])[0].get("logprobs") or {}
    content = logprobs.get("content") or []
    return bool(content) and isinstance(content[0].get("logprob"), (int, float))


def _has_prompt_logprobs(http: RemoteHttp, model: str) -> bool:
    prompt = "The sky is blue"
    data = http.post_json("/v1/completions", {
        "model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True,
        "logprobs": 1})
    choice = (data.get("choices") or [{}])[0]
    logprobs = choice.get("logprobs") or {}
    values = logprobs.get("token_logprobs") or []
    offsets = logprobs.get("text_offset") or []
    # Echo means the prompt's tokens come back first, the first with no probability.
    return (str(choice.get("text", "")).startswith(prompt) and len(values) >= 3
            and len(offsets) == len(values)
            and all(isinstance(v, (int, float)) for v in values[1:]))


def _has_top_n_probs(http: RemoteHttp, model: str) -> bool:
    data = http.post_json("/completion", {"prompt": "The sky is", "n_predict": 1,
                                          "n_probs": 3, "temperature": 0})
    probs = data.get("completion_probabilities") or []
    return bool(probs) and bool(probs[0].get("top_logprobs"))


def _has_tokenize(http: RemoteHttp, model: str) -> bool:
    data = http.post_json("/tokenize", {"content": "a b", "add_special": False})
    tokens = data.get("tokens")
    return isinstance(tokens, list) and all(isinstance(t, int) for t in tokens)


def _has_chat_template(http: RemoteHttp, model: str) -> bool:
    data = http.post_json("/apply-template", {
        "messages": [{"role": "user", "content": "ping-slmdesk"}]})
    return "ping-slmdesk" in str(data.get("prompt", ""))


def _has_json_schema(http: RemoteHttp, model: str) -> bool:
    data = http.post_json("/v1/chat/completions", {
        "model": model, "max_tokens": 24, "temperature": 0,
        "messages": [{"role": "user", "content": "Give a number as JSON."}],
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "probe", "strict": True, "schema": _SCHEMA}}})
    text = ((data.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and set(value) == {"n"} and isinstance(value["n"], int)


def _has_embeddings(http: RemoteHttp, model: str) -> bool:
    data = http.post_json("/v1/embeddings", {"model": model, "input": "a"})
    rows = data.get("data") or []
    vector = rows[0].get("embedding") if rows else None
    return isinstance(vector, list) and bool(vector) and all(
        isinstance(x, (int, float)) and math.isfinite(x) for x in vector[:8])
