"""The state one LlamaEngine holds and the low-level helpers every engine concern uses.

Plain Python (no Qt). ``LlamaState`` owns the ``llama_cpp.Llama`` object, the chat template and
the cancel event; the other ``llama_*`` modules add one concern each on top of it (loading,
prompts, generation, scoring, embeddings) and ``llama_engine.LlamaEngine`` joins them.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.engine.gguf import GGUFInfo
from slmdesk.engine.params import LoraAdapter
from slmdesk.engine.template import ChatTemplate
from slmdesk.errors import ModelNotLoadedError

log = logging.getLogger(__name__)

ChatMessage = dict[str, str]
TextCallback = Callable[[str], None]
ProgressCallback = Callable[[int, int], None]

# Prompt tokens are decoded in slices this size so that a long prompt reports progress and
# can be cancelled between slices; llama.cpp's abort callback also stops inside a slice.
PROMPT_SLICE = 128


class Cancelled(Exception):
    """Raised inside the engine when the job's cancel event is set."""


@dataclass(frozen=True)
class ModelInfo:
    """What is loaded and how."""

    path: str
    name: str
    architecture: str
    n_ctx: int
    n_ctx_train: int
    n_threads: int
    n_gpu_layers: int  # as requested: -1 means all
    offloaded_layers: int  # layers actually placed on the GPU (repeating layers + output)
    n_vocab: int
    backend: str
    load_s: float
    template_fallback: bool
    quantization: str | None
    # What the load cost, measured (see ``_measure_load``): the growth of this process's
    # resident memory from just before the load to just after a one-token warm-up, the
    # tensor bytes llama.cpp holds, and GPU memory taken (None without a GPU backend).
    memory_bytes: int | None = None
    weights_bytes: int | None = None
    gpu_memory_bytes: int | None = None
    adapter: LoraAdapter | None = None  # applied on top of the model (None: the base model)

    @property
    def measured_memory_bytes(self) -> int | None:
        """RAM and GPU memory the load took, for comparison with the fit estimate."""
        if self.memory_bytes is None:
            return None
        return self.memory_bytes + (self.gpu_memory_bytes or 0)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        adapter = data.pop("adapter")
        data["adapter_path"] = adapter.path if adapter is not None else None
        data["adapter_scale"] = adapter.scale if adapter is not None else None
        return data



class LlamaState:
    """One loaded model's llama.cpp objects and the token, batch and cache primitives."""

    def __init__(self) -> None:
        self._llm: Any = None
        self._info: ModelInfo | None = None
        self._gguf: GGUFInfo | None = None
        self._template: ChatTemplate | None = None
        self._add_bos = True
        self._bos_text = ""
        # The running job's cancel event; llama.cpp's abort callback reads it mid-decode.
        self._cancel = threading.Event()
        self._abort_cb: Any = None
        # Sequences the context holds (llama.cpp's n_seq_max): 1 but for parallel loads.
        self._n_seq_max = 1
        # Held while a model is swapped in or freed. Other threads may count tokens
        # (tokenizing only reads the immutable vocabulary) but only under this lock.
        self.swap_lock = threading.RLock()

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    @property
    def gguf(self) -> GGUFInfo | None:
        return self._gguf

    @property
    def is_loaded(self) -> bool:
        return self._llm is not None


    @staticmethod
    def _free(llm: Any) -> None:
        if llm is not None:
            try:
                llm.close()
            except Exception:  # freeing must not take the app down (logged)
                log.exception("error while freeing the model")

    def _install_abort_callback(self) -> None:
        import llama_cpp

        def _should_abort(_data: Any) -> bool:
            return self._cancel.is_set()

        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._abort_cb = llama_cpp.ggml_abort_callback(_should_abort)
        llama_cpp.llama_set_abort_callback(self._llm._ctx.ctx, self._abort_cb, None)

    def _set_abort_checks(self, on: bool) -> None:
        """Turn llama.cpp's per-node abort callback on (prompt work) or off (one token)."""
        import llama_cpp

        llm = self._llm
        if llm is None or self._abort_cb is None:
            return
        callback = self._abort_cb if on else llama_cpp.ggml_abort_callback()  # NULL: none
        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, callback, None)

    def _require(self) -> Any:
        if self._llm is None:
            raise ModelNotLoadedError("No model is loaded.")
        return self._llm

    def _token_text(self, token: int) -> str:
        return self._token_bytes(token, special=True).decode("utf-8", errors="replace")

    def _token_bytes(self, token: int, *, special: bool = False) -> bytes:
        import llama_cpp

        llm = self._require()
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buf, size, 0, special)
            if n >= 0:
                return buf.raw[:n]
            size = -n

    def _reuse_cached_prefix(self, tokens: list[int]) -> list[int]:
        """Keep the longest prefix of ``tokens`` that the KV cache already holds, but never
        all of them (the last one is decoded again for its logits); return what is left to
        decode. ``Llama.eval()`` removes the cache cells past the kept prefix."""
        llm = self._require()
        cached = llm.input_ids[: llm.n_tokens].tolist()
        keep = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            keep += 1
        keep = min(keep, len(tokens) - 1)
        llm.n_tokens = keep
        return tokens[keep:]


    def _decode_in_slices(
        self,
        tokens: list[int],
        cancel: threading.Event,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Decode ``tokens`` into the KV cache ``PROMPT_SLICE`` at a time.

        ``cancel`` is checked between slices (llama.cpp's abort callback checks it inside
        one); raises ``Cancelled`` when it is set. ``on_progress(done, total)`` after each.
        """
        llm = self._require()
        try:
            for i in range(0, len(tokens), PROMPT_SLICE):
                if cancel.is_set():
                    raise Cancelled
                llm.eval(tokens[i : i + PROMPT_SLICE])
                if on_progress is not None:
                    on_progress(min(len(tokens), i + PROMPT_SLICE), len(tokens))
        except RuntimeError as exc:
            if cancel.is_set():
                raise Cancelled from exc
            raise

    def _fill_batch(self, tokens: Sequence[int], n_past: int, outputs: set[int]) -> None:
        """Put ``tokens`` in the Llama's batch (sequence 0), logits only at ``outputs``."""
        batch = self._require()._batch.batch
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = n_past + i
            batch.seq_id[i][0] = 0
            batch.n_seq_id[i] = 1
            batch.logits[i] = i in outputs

    def _decode_every_position(self, tokens: Sequence[int]) -> Iterator[tuple[int, int]]:
        """Decode ``tokens`` from position 0 in batches of the context's batch size, with
        every position an output; after each batch, yield (its first position, its size)
        while its logits or embeddings can be read."""
        llm = self._require()
        for start in range(0, len(tokens), llm.n_batch):
            chunk = tokens[start : start + llm.n_batch]
            self._fill_batch(chunk, start, set(range(len(chunk))))
            llm._ctx.decode(llm._batch)
            yield start, len(chunk)

    # counters and cache -----------------------------------------------------------------
    def perf_counts(self) -> dict[str, int]:
        """llama.cpp's own counters since the last reset: prompt and generated tokens."""
        import llama_cpp

        llm = self._require()
        data = llama_cpp.llama_perf_context(llm._ctx.ctx)
        return {"n_p_eval": int(data.n_p_eval), "n_eval": int(data.n_eval)}

    def reset_perf(self) -> None:
        import llama_cpp

        llama_cpp.llama_perf_context_reset(self._require()._ctx.ctx)

    def clear_cache(self) -> None:
        """Forget the cached prompt: the next job processes its prompt from the start."""
        llm = self._require()
        llm.n_tokens = 0
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)

    def cached_tokens(self) -> int:
        return int(self._require().n_tokens) if self._llm is not None else 0

    def model_path(self) -> Path | None:
        return Path(self._info.path) if self._info else None
