"""The llama.cpp engine: load a GGUF, stream a chat reply, reuse the KV cache across turns.

Plain Python (no Qt): the CLI drives it directly, the GUI on the engine thread
(``slmdesk.ui.engine_thread``). One ``LlamaEngine`` owns at most one loaded model; it is not
thread-safe and must be used from one thread at a time (the cancel event is the exception:
set it from anywhere).

``LlamaEngine`` joins one class per concern, each in its own module on top of
``llama_state.LlamaState``: ``llama_loading`` (check and load a GGUF, measure the load),
``llama_prompts`` (template, tokens, fitting the context), ``llama_generation`` (streaming
replies), ``llama_parallel`` (several replies decoded together), ``llama_scoring``
(log-probabilities, fingerprint) and ``llama_embeddings``.
This module stays the entry point: import the engine and its types from here.
"""

from __future__ import annotations

from slmdesk.engine.llama_embeddings import LlamaEmbeddings
from slmdesk.engine.llama_generation import _StopMatcher, _Utf8Stream
from slmdesk.engine.llama_loading import (
    LlamaLoading,
    gpu_memory,
    meaningful_growth,
    validate_adapter_file,
    validate_model_file,
)
from slmdesk.engine.llama_parallel import LlamaParallel, SequenceRequest
from slmdesk.engine.llama_scoring import LlamaScoring
from slmdesk.engine.llama_state import (
    PROMPT_SLICE,
    Cancelled,
    ChatMessage,
    ModelInfo,
    ProgressCallback,
    TextCallback,
)

__all__ = [
    "PROMPT_SLICE",
    "Cancelled",
    "ChatMessage",
    "LlamaEngine",
    "ModelInfo",
    "ProgressCallback",
    "SequenceRequest",
    "TextCallback",
    "_StopMatcher",
    "_Utf8Stream",
    "gpu_memory",
    "meaningful_growth",
    "validate_adapter_file",
    "validate_model_file",
]


class LlamaEngine(LlamaLoading, LlamaParallel, LlamaScoring, LlamaEmbeddings):
    """Owns one ``llama_cpp.Llama`` and generates chat replies with it."""
