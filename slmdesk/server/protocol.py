"""Request bodies checked field by field: typed requests, or a 400 that names the field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slmdesk.engine.structured import json_grammar, json_schema_grammar
from slmdesk.errors import InvalidInputError
from slmdesk.server.errors import ApiError, bad_field, unsupported_field

Json = Mapping[str, Any]

MAX_STOPS = 4
MAX_TOP_LOGPROBS = 20
# Fields of OpenAI's API accepted only at the value that changes nothing: any other value
# would be a promise the server cannot keep.
NEUTRAL_VALUES: dict[str, object] = {
    "n": 1, "frequency_penalty": 0, "presence_penalty": 0, "echo": False, "best_of": 1,
}
_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "stop",
             "max_tokens")
_COMMON = ("model", "stream", "stream_options", "user", *_SAMPLING, *NEUTRAL_VALUES)
CHAT_FIELDS = frozenset((*_COMMON, "messages", "max_completion_tokens", "logprobs",
                         "top_logprobs", "response_format"))
COMPLETION_FIELDS = frozenset((*_COMMON, "prompt", "logprobs", "response_format"))
EMBEDDING_FIELDS = frozenset(("model", "input", "encoding_format", "user"))
CLASSIFY_FIELDS = frozenset(("model", "labels", "classifier", "texts", "instructions",
                             "calibration", "multi_label", "threshold"))
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def require_object(body: Any, where: str = "body") -> Json:
    if not isinstance(body, Mapping):
        raise bad_field(where, f"The {where} must be a JSON object.")
    return body


def check_fields(body: Json, allowed: frozenset[str], prefix: str = "") -> None:
    """Refuse any field the server does not act on, naming it."""
    for key in body:
        if key not in allowed:
            raise unsupported_field(prefix + str(key))
        if key in NEUTRAL_VALUES and body[key] is not None and body[key] != NEUTRAL_VALUES[key]:
            raise bad_field(prefix + key, f"'{key}' must be {NEUTRAL_VALUES[key]!r} here "
                            "(slmdesk's server does not support other values).")


def get_string(body: Json, key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise bad_field(key, f"'{key}' is required.")
        return None
    if not isinstance(value, str):
        raise bad_field(key, f"'{key}' must be a string.")
    return value


def get_bool(body: Json, key: str, default: bool = False) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_field(key, f"'{key}' must be true or false.")
    return value


def get_number(body: Json, key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not low <= value <= high:
        raise bad_field(key, f"'{key}' must be a number from {low} to {high}.")
    return float(value)


def get_int(body: Json, key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_field(key, f"'{key}' must be a whole number from {low} to {high}.")
    return value


def get_strings(body: Json, key: str, *, max_items: int, required: bool = True) -> list[str]:
    """A string or a list of strings (OpenAI accepts both for ``stop`` and ``input``)."""
    value = body.get(key)
    if value is None:
        if required:
            raise bad_field(key, f"'{key}' is required.")
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise bad_field(key, f"'{key}' must be a string or a list of strings.")
    if len(items) > max_items:
        raise bad_field(key, f"'{key}' holds {len(items)} items; at most {max_items}.")
    return list(items)


@dataclass
class GenerationRequest:
    """The fields shared by chat and text completions."""

    model: str
    stream: bool = False
    include_usage: bool = False
    sampling: dict[str, Any] = field(default_factory=dict)  # SamplingParams overrides
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: str | None = None


@dataclass
class ChatRequest(GenerationRequest):
    messages: list[dict[str, str]] = field(default_factory=list)


@dataclass
class CompletionRequest(GenerationRequest):
    prompt: str = ""


def _generation_fields(body: Json, max_tokens_limit: int, req: GenerationRequest) -> None:
    req.stream = get_bool(body, "stream")
    options = body.get("stream_options")
    if options is not None:
        if not req.stream:
            raise bad_field("stream_options", "'stream_options' needs 'stream': true.")
        options = require_object(options, "stream_options")
        check_fields(options, frozenset(("include_usage",)), "stream_options.")
        req.include_usage = get_bool(options, "include_usage")
    sampling: dict[str, Any] = {
        "temperature": get_number(body, "temperature", 0.0, 2.0),
        "top_p": get_number(body, "top_p", 0.0, 1.0),
        "top_k": get_int(body, "top_k", 0, 1000),
        "min_p": get_number(body, "min_p", 0.0, 1.0),
        "repeat_penalty": get_number(body, "repeat_penalty", 0.0, 10.0),
        "seed": get_int(body, "seed", -(2**63), 2**64 - 1),
    }
    limit_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    sampling["max_tokens"] = get_int(body, limit_key, 1, max_tokens_limit)
    stops = get_strings(body, "stop", max_items=MAX_STOPS, required=False)
    if any(not s for s in stops):
        raise bad_field("stop", "A stop string cannot be empty.")
    sampling["stop"] = tuple(stops) if stops else None
    req.sampling = {k: v for k, v in sampling.items() if v is not None}
    req.grammar = _grammar(body.get("response_format"))


def _grammar(response_format: Any) -> str | None:
    if response_format is None:
        return None
    fmt = require_object(response_format, "response_format")
    kind = fmt.get("type")
    if kind == "text":
        check_fields(fmt, frozenset(("type",)), "response_format.")
        return None
    if kind == "json_object":
        check_fields(fmt, frozenset(("type",)), "response_format.")
        return json_grammar()
    if kind == "json_schema":
        check_fields(fmt, frozenset(("type", "json_schema")), "response_format.")
        spec = require_object(fmt.get("json_schema"), "response_format.json_schema")
        check_fields(spec, frozenset(("name", "schema", "strict", "description")),
                     "response_format.json_schema.")
        schema = spec.get("schema", {})
        try:
            return json_schema_grammar(schema)
        except InvalidInputError as exc:
            raise bad_field("response_format.json_schema.schema", exc.message) from exc
    raise bad_field("response_format.type",
                    "'response_format.type' must be text, json_object or json_schema.")


def parse_chat(body: Any, max_tokens_limit: int) -> ChatRequest:
    body = require_object(body)
    check_fields(body, CHAT_FIELDS)
    req = ChatRequest(model=str(get_string(body, "model", required=True)))
    _generation_fields(body, max_tokens_limit, req)
    req.logprobs = get_bool(body, "logprobs")
    top = get_int(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    if top is not None and not req.logprobs:
        raise bad_field("top_logprobs", "'top_logprobs' needs 'logprobs': true.")
    req.top_logprobs = top or 0
    req.messages = _messages(body.get("messages"))
    return req


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise bad_field("messages", "'messages' must be a non-empty list.")
    out = []
    for i, raw in enumerate(value):
        where = f"messages[{i}]"
        msg = require_object(raw, where)
        check_fields(msg, frozenset(("role", "content", "name")), where + ".")
        role = msg.get("role")
        if role not in ROLES:
            raise bad_field(where + ".role", f"'{where}.role' must be one of "
                            f"{', '.join(ROLES)} (tools are not supported).")
        out.append({"role": ROLES[role], "content": _content(msg.get("content"), where)})
    return out


def _content(content: Any, where: str) -> str:
    """Message text: a string, or a list of text parts (other parts are refused)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_field(where + ".content", f"'{where}.content' must be text.")
    texts = []
    for j, part in enumerate(content):
        part = require_object(part, f"{where}.content[{j}]")
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise bad_field(f"{where}.content[{j}]",
                            "Only text parts are supported ({'type': 'text', 'text': ...}).")
        check_fields(part, frozenset(("type", "text")), f"{where}.content[{j}].")
        texts.append(part["text"])
    return "".join(texts)


def parse_completion(body: Any, max_tokens_limit: int) -> CompletionRequest:
    body = require_object(body)
    check_fields(body, COMPLETION_FIELDS)
    req = CompletionRequest(model=str(get_string(body, "model", required=True)))
    _generation_fields(body, max_tokens_limit, req)
    prompts = get_strings(body, "prompt", max_items=1)
    if not prompts or not prompts[0]:
        raise bad_field("prompt", "'prompt' must be one non-empty string.")
    req.prompt = prompts[0]
    top = get_int(body, "logprobs", 0, 5)
    req.logprobs = top is not None
    req.top_logprobs = top or 0
    return req


@dataclass
class EmbeddingRequest:
    model: str
    inputs: list[str]
    base64: bool


def parse_embeddings(body: Any, max_texts: int) -> EmbeddingRequest:
    body = require_object(body)
    check_fields(body, EMBEDDING_FIELDS)
    model = str(get_string(body, "model", required=True))
    inputs = get_strings(body, "input", max_items=max_texts)
    if not inputs or any(not t for t in inputs):
        raise bad_field("input", "'input' needs at least one non-empty text "
                        "(token arrays are not supported).")
    fmt = get_string(body, "encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise bad_field("encoding_format", "'encoding_format' must be float or base64.")
    return EmbeddingRequest(model=model, inputs=inputs, base64=fmt == "base64")


@dataclass
class ClassifyRequest:
    model: str | None
    classifier: str | None
    labels: list[tuple[str, str]]  # (name, description)
    texts: list[str]
    options: dict[str, Any]  # ClassifierSpec fields given in the request


def parse_classify(body: Any, max_texts: int) -> ClassifyRequest:
    body = require_object(body)
    check_fields(body, CLASSIFY_FIELDS)
    req = ClassifyRequest(
        model=get_string(body, "model"),
        classifier=get_string(body, "classifier"),
        labels=_labels(body.get("labels")),
        texts=get_strings(body, "texts", max_items=max_texts),
        options={},
    )
    if not req.labels and req.classifier is None:
        raise bad_field("labels", "Give 'labels' or the name of a saved 'classifier'.")
    if req.model is None and req.classifier is None:
        raise bad_field("model", "'model' is required (or a saved 'classifier').")
    if not req.texts:
        raise bad_field("texts", "'texts' needs at least one text.")
    calibration = get_string(body, "calibration")
    if calibration is not None and calibration not in ("none", "contextual", "batch", "auto"):
        raise bad_field("calibration", "'calibration' must be none, contextual, batch or auto.")
    options = {
        "instructions": get_string(body, "instructions"),
        "calibration": calibration,
        "multi_label": body.get("multi_label") is not None and get_bool(body, "multi_label"),
        "threshold": get_number(body, "threshold", 0.0, 1.0),
    }
    req.options = {k: v for k, v in options.items() if v is not None and v is not False}
    return req


def _labels(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        raise bad_field("labels", "'labels' must be a non-empty list.")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            out.append((item, ""))
            continue
        label = require_object(item, f"labels[{i}]")
        check_fields(label, frozenset(("name", "description")), f"labels[{i}].")
        name = get_string(label, "name", required=True)
        out.append((str(name), get_string(label, "description") or ""))
    return out


__all__ = ["ApiError", "ChatRequest", "ClassifyRequest", "CompletionRequest",
           "EmbeddingRequest", "parse_chat", "parse_classify", "parse_completion",
           "parse_embeddings"]
