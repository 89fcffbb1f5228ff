"""Output controls for a generation: grammars (JSON, JSON schema), per-token log-probabilities."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slmdesk.errors import InvalidInputError

# A JSON schema is turned into a grammar by llama-cpp-python's converter; a schema that
# large would make a grammar llama.cpp takes seconds to check per token.
MAX_SCHEMA_CHARS = 64_000


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its bytes, log P(token), and the most likely alternatives."""

    token: int
    piece: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


TokenCallback = Callable[[TokenLogprob], None]


@dataclass(frozen=True)
class OutputOptions:
    """What constrains or reports a generation beyond its sampling parameters.

    ``grammar`` is GBNF text (llama.cpp's grammar language) with a ``root`` rule; only
    tokens it allows are sampled. ``on_token`` receives each generated token with its
    log-probability under the model (before sampling) and ``top_logprobs`` alternatives.
    """

    grammar: str | None = None
    on_token: TokenCallback | None = None
    top_logprobs: int = 0


def json_grammar() -> str:
    """GBNF for any JSON object (OpenAI's ``response_format: json_object``)."""
    from llama_cpp.llama_grammar import JSON_GBNF

    return str(JSON_GBNF)


def json_schema_grammar(schema: Any) -> str:
    """GBNF that only allows JSON matching ``schema``; refs to other documents are refused."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if not isinstance(schema, dict):
        raise InvalidInputError("The JSON schema must be an object.")
    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_CHARS:
        raise InvalidInputError(
            f"The JSON schema is {len(text)} characters; at most {MAX_SCHEMA_CHARS} are accepted."
        )
    if _remote_refs(schema):
        # The converter would fetch them over the network: slmdesk makes no connections.
        raise InvalidInputError(
            "The JSON schema refers to another document ($ref outside '#/'); only local "
            "references are followed."
        )
    try:
        return str(json_schema_to_gbnf(text))
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidInputError(
            f"The JSON schema cannot be turned into a grammar: {exc or type(exc).__name__}."
        ) from exc


def token_logprob(row: Any, token: int, top_n: int) -> tuple[float, list[tuple[int, float]]]:
    """log P(token) from one row of logits, and the ``top_n`` most likely tokens."""
    import numpy as np

    row64 = row.astype(np.float64)
    peak = float(row64.max())
    lse = peak + float(np.log(np.exp(row64 - peak).sum()))
    top: list[tuple[int, float]] = []
    if top_n > 0:
        ids = np.argpartition(-row64, top_n - 1)[:top_n]
        ids = ids[np.argsort(-row64[ids], kind="stable")]
        top = [(int(i), float(row64[i]) - lse) for i in ids]
    return float(row64[token]) - lse, top


def _remote_refs(node: Any) -> bool:
    """Whether a schema has a ``$ref`` that is not a local ``#/...`` pointer."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
