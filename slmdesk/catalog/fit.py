"""Will a model fit this machine? Its memory estimated from GGUF numbers, against what is free.

The estimate is weights + KV cache + overhead:

- weights: the tensor bytes of the file (llama.cpp maps them; on Linux they are read at
  load, elsewhere on first use);
- KV cache: K and V, f16, for every layer and every token of the context:
  ``2 × layers × context × kv_heads × head_dim × 2 bytes`` (llama.cpp allocates and zeroes
  all of it at load);
- overhead: the runtime and tokenizer tables (16 MiB + 180 bytes per vocabulary entry),
  resident from the load on, plus the compute scratch a long prompt fills near the end
  of the context: the attention scores of one 128-token prompt slice against the whole
  context (``context × 128 × 2 × heads × 4 bytes``, no flash attention), the slice's
  activations and logit-sized buffers (60 bytes per vocabulary entry + 3 MiB).

The constants are calibrated on the two real models this repository has, with
llama-cpp-python 0.3.36 on CPU, by measuring the process's resident memory
(tests/integration/test_fit_measured.py). Right after a load (weights + KV + runtime) the
estimate was within 2 % of the measurement for SmolLM2-135M and Gemma 3 270M at 512–4096
tokens; after a prompt filling a 1024- or 2048-token context, within 3 %.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from slmdesk.catalog.curated import CatalogEntry
from slmdesk.engine.gguf import ArraySummary, GGUFInfo
from slmdesk.engine.llama_engine import PROMPT_SLICE
from slmdesk.errors import NotEnoughMemoryError
from slmdesk.json_data import JsonFields
from slmdesk.store.models import ModelRecord

__all__ = [
    "FitEstimate",
    "MemoryBudget",
    "accuracy_note",
    "check_fit",
    "effective_context",
    "estimate",
    "estimate_for_entry",
    "estimate_for_file",
    "estimate_for_gguf",
    "estimate_for_record",
    "format_bytes",
    "judge",
    "record_measured_memory",
    "system_memory",
    "with_measurement",
]

Verdict = Literal["fits", "tight", "wont_fit"]

MIB: Final = 1024 * 1024
GIB: Final = 1024 * MIB
RUNTIME_BYTES: Final = 16 * MIB
BYTES_PER_VOCAB_ENTRY: Final = 180
SCRATCH_BYTES: Final = 3 * MIB
SCRATCH_BYTES_PER_VOCAB_ENTRY: Final = 60
VERDICT_WORDS: Final[dict[str, str]] = {"fits": "fits", "tight": "tight", "wont_fit": "won't fit"}
# Above this share of the available memory the model fits but leaves little for the rest
# of the system (and the estimate's own error).
TIGHT_SHARE: Final = 0.8


@dataclass(frozen=True)
class MemoryBudget(JsonFields):
    """Memory this machine has for a model now."""

    total_ram: int
    available_ram: int
    total_vram: int | None = None  # None: no GPU backend is active
    free_vram: int | None = None

    @property
    def uses_gpu(self) -> bool:
        return self.free_vram is not None


@dataclass(frozen=True)
class FitEstimate(JsonFields):
    """The memory a model needs at ``context`` tokens, against what is available."""

    weights: int
    kv: int
    overhead: int
    total: int
    available: int
    context: int
    verdict: Verdict
    rough: bool  # estimated from parameters and file size, not the model's own numbers
    where: str  # "RAM" or "GPU memory"
    # What is resident right after loading (weights + KV + runtime, without the prompt
    # scratch): the figure the measured memory of a load is compared with.
    at_load: int
    # What a load at this same context measured as resident (``with_measurement``); None
    # when no load at this context was measured.
    measured: int | None = None

    @property
    def figure(self) -> int:
        """The one memory figure shown for this model, everywhere: the measured memory of a
        load at this context plus what a long prompt adds when it was measured, else the
        estimate's ``total``. The verdict is judged on it."""
        if self.measured is None:
            return self.total
        return self.measured + (self.total - self.at_load)

    @property
    def total_bytes(self) -> int:
        return self.figure

    @property
    def verdict_text(self) -> str:
        return VERDICT_WORDS[self.verdict]

    @property
    def cell(self) -> str:
        """The verdict and the one memory figure, as a table cell: ``fits · 251 MiB``."""
        return f"{self.verdict_text} · {format_bytes(self.figure)}"

    @property
    def need_text(self) -> str:
        """``needs about 251 MiB at 4,096 tokens (estimated: …)``: the one figure
        (``figure``, as in ``cell``) and where it comes from."""
        if self.measured is None:
            source = (f"estimated: weights {format_bytes(self.weights)} + KV cache "
                      f"{format_bytes(self.kv)} + {format_bytes(self.overhead)} overhead")
            if self.rough:
                source += ", rough: from the parameter count"
        else:
            source = ("measured when it was last loaded at this context, with what a long "
                      "prompt adds")
        return f"needs about {format_bytes(self.figure)} at {self.context:,} tokens ({source})"

    @property
    def sentence(self) -> str:
        """One line for a person: the verdict, ``need_text`` and what is available."""
        have = f"{format_bytes(self.available)} of {self.where} is available"
        if self.verdict == "fits":
            return f"Fits: {self.need_text}; {have}."
        if self.verdict == "tight":
            return f"Tight: {self.need_text}; only {have}."
        return f"Won't fit: {self.need_text}, but only {have}."

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["figure"] = self.figure
        data["sentence"] = self.sentence
        return data


def format_bytes(n: int | float) -> str:
    """1.2 GiB / 340 MiB / 12 KiB: binary units, as memory is counted."""
    if abs(n) >= 1024 * GIB:
        return f"{n / (1024 * GIB):,.1f} TiB"
    if abs(n) >= GIB:
        return f"{n / GIB:.1f} GiB"
    if abs(n) >= MIB or n == 0:
        return f"{n / MIB:.0f} MiB"
    if abs(n) >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{int(n)} bytes"


def system_memory() -> MemoryBudget:
    """Total and available RAM (psutil), and GPU memory when llama.cpp offloads to a GPU."""
    import psutil

    from slmdesk.engine.llama_engine import gpu_memory

    vm = psutil.virtual_memory()
    gpu = gpu_memory()
    return MemoryBudget(
        total_ram=int(vm.total),
        available_ram=int(vm.available),
        total_vram=gpu[1] if gpu else None,
        free_vram=gpu[0] if gpu else None,
    )


def effective_context(max_context: int, context_length: int | None) -> int:
    """The n_ctx LlamaEngine.load picks: the setting, capped by the trained length."""
    trained = context_length or max_context
    return max(256, min(max_context, trained))


def estimate(
    *,
    weights_bytes: int,
    n_layers: int,
    n_embd: int,
    n_head: int,
    n_head_kv: int,
    context: int,
    head_dim: int | None = None,
    n_vocab: int | None = None,
    kv_bytes_per_element: int = 2,
    budget: MemoryBudget | None = None,
    reclaimable: int = 0,
    rough: bool = False,
) -> FitEstimate:
    """Estimate from the model's shape; compare with ``budget`` (``system_memory()`` if None).

    ``reclaimable`` is memory that loading frees first (the model loaded now), added to
    what is available.
    """
    budget = budget or system_memory()
    head_dim = head_dim or max(1, n_embd // max(1, n_head))
    kv = 2 * n_layers * context * n_head_kv * head_dim * kv_bytes_per_element
    runtime = RUNTIME_BYTES + (n_vocab or 0) * BYTES_PER_VOCAB_ENTRY
    batch = min(PROMPT_SLICE, context)
    # What a long prompt adds while it is read near the end of the context (llama.cpp's
    # compute buffer is reserved for bigger batches, but only the part used is resident):
    # the attention scores of one prompt slice against the whole context (twice: scores
    # and softmax, no flash attention), the slice's activations, and logit-sized buffers.
    scratch = (context * batch * 2 * n_head * 4 + batch * n_embd * 32
               + (n_vocab or 0) * SCRATCH_BYTES_PER_VOCAB_ENTRY + SCRATCH_BYTES)
    overhead = runtime + scratch
    total = weights_bytes + kv + overhead
    if budget.uses_gpu:
        assert budget.free_vram is not None
        available, where = budget.free_vram + reclaimable, "GPU memory"
    else:
        available, where = budget.available_ram + reclaimable, "RAM"
    return FitEstimate(
        weights=weights_bytes, kv=kv, overhead=overhead, total=total, available=available,
        context=context, verdict=judge(total, available), rough=rough, where=where,
        at_load=weights_bytes + kv + runtime,
    )


def judge(needed: int, available: int) -> Verdict:
    """The verdict on ``needed`` bytes when ``available`` are free."""
    if needed > available:
        return "wont_fit"
    if needed > available * TIGHT_SHARE:
        return "tight"
    return "fits"


def with_measurement(est: FitEstimate, measured: int | None,
                     measured_context: int | None) -> FitEstimate:
    """``est`` with the memory a load measured, when that load used the same context: its
    ``figure`` and verdict then come from the measurement. Unchanged otherwise."""
    if not measured or measured_context != est.context:
        return est
    measured_est = dataclasses.replace(est, measured=measured)
    return dataclasses.replace(measured_est,
                               verdict=judge(measured_est.figure, est.available))


def _shape(*values: object) -> tuple[int, int, int, int] | None:
    """(layers, embedding, heads, kv heads) when all four are positive integers."""
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    if len(ints) != 4 or len(values) != 4:
        return None
    return ints[0], ints[1], ints[2], ints[3]


def _vocab_size(info: GGUFInfo) -> int | None:
    tokens = info.metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, ArraySummary):
        return tokens.length
    if isinstance(tokens, tuple):
        return len(tokens)
    arch = info.architecture
    value = info.metadata.get(f"{arch}.vocab_size") if arch else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _head_dim(info: GGUFInfo) -> int | None:
    arch = info.architecture
    if arch is None:
        return None
    # Gemma and others set the per-head size explicitly (Gemma 3: 256, not embd / heads).
    for key in (f"{arch}.attention.key_length", f"{arch}.attention.value_length"):
        value = info.metadata.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def estimate_for_gguf(
    info: GGUFInfo, context: int, *, budget: MemoryBudget | None = None, reclaimable: int = 0
) -> FitEstimate:
    """Estimate for a checked GGUF file; falls back to the rough estimate without a shape."""
    weights = max(0, info.size_bytes - info.tensor_data_offset) or info.size_bytes
    shape = _shape(info.block_count, info.embedding_length, info.head_count, info.head_count_kv)
    if shape is None:
        return _rough(weights, info.parameter_count, context, budget, reclaimable)
    n_layers, n_embd, n_head, n_head_kv = shape
    return estimate(
        weights_bytes=weights, n_layers=n_layers, n_embd=n_embd, n_head=n_head,
        n_head_kv=n_head_kv, head_dim=_head_dim(info), n_vocab=_vocab_size(info),
        context=context, budget=budget, reclaimable=reclaimable,
    )


def _rough(
    weights: int, parameters: int | None, context: int, budget: MemoryBudget | None,
    reclaimable: int,
) -> FitEstimate:
    """Without the model's shape: a typical small transformer of this size.

    Assumes about 100 M parameters per layer-equivalent of width 2048 with grouped-query
    attention (8 KV heads of 64), which over-estimates the KV cache of most small models,
    so the rough verdict errs on the careful side.
    """
    params = parameters or int(weights / 0.6)
    n_layers = max(12, min(40, params // 100_000_000 + 12))
    return estimate(
        weights_bytes=weights, n_layers=n_layers, n_embd=2048, n_head=32, n_head_kv=8,
        head_dim=64, n_vocab=128_000, context=context, budget=budget,
        reclaimable=reclaimable, rough=True,
    )


def estimate_for_entry(
    entry: CatalogEntry, context: int, *, budget: MemoryBudget | None = None, reclaimable: int = 0
) -> FitEstimate:
    """Estimate for a catalog entry (``CatalogEntry``) before it is downloaded."""
    context = min(context, entry.context_length) if entry.context_length else context
    weights = int(entry.size_bytes)
    shape = _shape(entry.layers, entry.embedding, entry.heads, entry.kv_heads)
    if shape is not None:
        n_layers, n_embd, n_head, n_head_kv = shape
        return estimate(
            weights_bytes=weights, n_layers=n_layers, n_embd=n_embd,
            n_head=n_head, n_head_kv=n_head_kv, head_dim=entry.head_dim,
            n_vocab=entry.vocab, context=context, budget=budget, reclaimable=reclaimable,
        )
    return _rough(weights, entry.parameters, context, budget, reclaimable)


class HubFileLike(Protocol):
    """What ``estimate_for_file`` reads of a hub file (``slmdesk.catalog.hub.HubFile``)."""

    repo_id: str
    filename: str
    size_bytes: int | None
    quantization: str | None


def estimate_for_file(
    file: HubFileLike, context: int, *, budget: MemoryBudget | None = None,
    catalog: list[CatalogEntry] | None = None,
) -> FitEstimate:
    """Estimate for a hub search result: the catalog's numbers when it is a catalog file,
    else rough, from its size."""
    if catalog is None:
        from slmdesk.catalog.curated import CatalogError, load_catalog

        try:
            catalog = load_catalog()
        except CatalogError:
            catalog = []
    for entry in catalog:
        if entry.repo_id.casefold() == file.repo_id.casefold() and entry.filename == file.filename:
            if file.size_bytes:
                entry = dataclasses.replace(entry, size_bytes=file.size_bytes)
            return estimate_for_entry(entry, context, budget=budget)
    if not file.size_bytes:
        raise ValueError(f"{file.filename}: the size is not known, so there is no estimate")
    return _rough(file.size_bytes, None, context, budget, 0)


def estimate_for_record(
    record: ModelRecord, context: int, *, budget: MemoryBudget | None = None,
    reclaimable: int = 0,
) -> FitEstimate:
    """Estimate for a registered model, with the memory its last load measured when that
    load used ``context`` (``with_measurement``)."""
    est = _estimate_for_record_file(record, context, budget, reclaimable)
    return with_measurement(est, record.measured_memory_bytes, record.measured_context)


def _estimate_for_record_file(
    record: ModelRecord, context: int, budget: MemoryBudget | None, reclaimable: int,
) -> FitEstimate:
    """Estimate for a registered model: from its file when present, else what was stored."""
    info = _read_gguf_cached(record.path)
    if info is not None:
        return estimate_for_gguf(info, context, budget=budget, reclaimable=reclaimable)
    meta = record.metadata
    shape = _shape(*(meta.get(k) for k in ("block_count", "embedding_length", "head_count",
                                          "head_count_kv")))
    if shape is not None:
        n_layers, n_embd, n_head, n_head_kv = shape
        return estimate(
            weights_bytes=record.size_bytes, n_layers=n_layers, n_embd=n_embd,
            n_head=n_head, n_head_kv=n_head_kv, context=context, budget=budget,
            reclaimable=reclaimable,
        )
    return _rough(record.size_bytes, record.parameter_count, context, budget, reclaimable)


def _read_gguf_cached(path: str) -> GGUFInfo | None:
    """The checked GGUF header of ``path``, or None; re-read only when the file changes.

    Reading a large vocabulary's header takes ~0.1 s; the library refreshes estimates for
    every model on the GUI thread.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _read_gguf_keyed(os.path.realpath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_gguf_keyed(path: str, _size: int, _mtime_ns: int) -> GGUFInfo | None:
    from slmdesk.engine.llama_engine import validate_model_file
    from slmdesk.errors import ModelFileError

    try:
        return validate_model_file(path)
    except ModelFileError:
        return None


def check_fit(
    model: ModelRecord | GGUFInfo,
    context: int,
    *,
    force: bool = False,
    budget: MemoryBudget | None = None,
    reclaimable: int = 0,
) -> FitEstimate:
    """Refuse a model that will not fit: ``NotEnoughMemoryError`` with the numbers.

    ``force`` loads anyway (the estimate can be wrong; memory may be freed meanwhile).
    Returns the estimate, which the caller can record with the measured memory.
    """
    if isinstance(model, GGUFInfo):
        est = estimate_for_gguf(model, context, budget=budget, reclaimable=reclaimable)
        name = model.name or model.path.name
    else:
        est = estimate_for_record(model, context, budget=budget, reclaimable=reclaimable)
        name = model.name
    if est.verdict == "wont_fit" and not force:
        raise NotEnoughMemoryError(
            f"Not enough memory for {name}: it {est.need_text}, but only "
            f"{format_bytes(est.available)} of {est.where} is available. Close other "
            "programs, lower the context size in the settings, pick a smaller "
            "quantization, or load it anyway (--force on the command line)."
        )
    return est


def record_measured_memory(
    db: Any, model_id: str, info: Any, gguf: GGUFInfo | None = None
) -> FitEstimate | None:
    """After a load: keep the estimate and the measured memory of ``info`` (a ModelInfo).

    ``gguf`` is the loaded file's GGUFInfo (``LlamaEngine.gguf``); without it the file is
    read again. The estimate kept is the resident-at-load figure (weights + KV +
    runtime), the one the measurement can be compared with. Returns the estimate, or
    None when the file cannot be read any more.
    """
    from slmdesk.engine.llama_engine import validate_model_file
    from slmdesk.errors import ModelFileError
    from slmdesk.store.models import ModelRepository

    if gguf is None:
        try:
            gguf = validate_model_file(info.path)
        except ModelFileError:
            return None
    budget = MemoryBudget(total_ram=0, available_ram=0)  # the verdict is not used here
    est = estimate_for_gguf(gguf, int(info.n_ctx), budget=budget)
    ModelRepository(db).record_memory(
        model_id, estimated=est.at_load, measured=info.measured_memory_bytes,
        context=int(info.n_ctx),
    )
    return est


def accuracy_note(
    estimated: int | None, measured: int | None, context: int | None = None
) -> str | None:
    """The memory measured once a model was loaded and how the estimate for that moment
    (``FitEstimate.at_load``) compared, in the one wording the library, the details and
    the command line share: ``202 MiB once loaded at 4,096 tokens (estimated 207 MiB,
    2 % high)``. None when nothing was measured."""
    if not measured:
        return None
    where = f" at {context:,} tokens" if context else ""
    text = f"{format_bytes(measured)} once loaded{where}"
    if not estimated:
        return text
    diff = (estimated - measured) / measured
    if round(abs(diff) * 100) == 0:
        return f"{text} (as estimated)"
    # The estimate is what is judged: above the measurement it was high, below it low.
    direction = "high" if diff > 0 else "low"
    return (f"{text} (estimated {format_bytes(estimated)}, {abs(diff) * 100:.0f} % "
            f"{direction})")
