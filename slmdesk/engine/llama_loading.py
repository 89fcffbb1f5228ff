"""Loading for the llama.cpp engine: check a GGUF, load it, measure what the load cost.

Plain Python (no Qt); one concern of ``slmdesk.engine.llama_engine.LlamaEngine``. Every GGUF
(and LoRA adapter) is checked with bounded reads before llama.cpp sees it.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from slmdesk.engine.backend import backend_info
from slmdesk.engine.gguf import GGUFInfo, read_gguf, supported_architectures
from slmdesk.engine.llama_state import LlamaState, ModelInfo
from slmdesk.engine.params import LoadParams, LoraAdapter
from slmdesk.engine.template import ChatTemplate, fallback_template
from slmdesk.errors import ModelFileError, ModelNotLoadedError, TemplateError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _library_chat_templates_off() -> Iterator[None]:
    """Keep ``llama_cpp.Llama()`` from compiling the chat templates inside the file.

    Llama() compiles every ``tokenizer.chat_template*`` entry with a stock Jinja sandbox,
    whose constant folding evaluates ``{{ 'a' * 10**10 }}`` at compile time: a hostile
    file could exhaust memory before slmdesk's bounded sandbox (template.py) ever sees
    the template. slmdesk renders prompts itself and never uses those handlers.
    """
    import llama_cpp.llama_chat_format as chat_format

    class _Unused:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def to_chat_handler(self) -> None:
            return None

    original = chat_format.Jinja2ChatFormatter
    chat_format.Jinja2ChatFormatter = _Unused  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        chat_format.Jinja2ChatFormatter = original  # type: ignore[misc]



@contextlib.contextmanager
def _context_sequences(n_seq_max: int) -> Iterator[None]:
    """Have ``llama_cpp.Llama()`` create its context with ``n_seq_max`` sequences.

    Llama() has no argument for it: it starts from ``llama_context_default_params()``, so
    that is wrapped while the model loads. The KV cache stays unified (one buffer of
    n_ctx cells for all sequences): a split cache would give each sequence n_ctx/n_seq_max
    cells and cut one request's context short.
    """
    import llama_cpp.llama_cpp as library

    if n_seq_max <= 1:
        yield
        return
    original = library.llama_context_default_params

    def with_sequences() -> Any:
        params = original()
        params.n_seq_max = n_seq_max
        params.kv_unified = True
        return params

    library.llama_context_default_params = with_sequences
    try:
        yield
    finally:
        library.llama_context_default_params = original


def _resident_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - a measurement must never break a load
        return None


def meaningful_growth(growth: int, weights_bytes: int, offloaded_layers: int) -> int | None:
    """The resident-memory growth of a load, or None where it measures something else.

    On the CPU the weights are read in at load, so a real load grows by at least most of
    them. Less means the measurement saw other things too: memory freed during the load
    (a previous model, a garbage collection) or pages another mapping already held. Such a
    figure is "not measured", never 0 or a misleading ratio. With layers on a GPU the RAM
    growth may be small, but not nothing.
    """
    floor = weights_bytes // 2 if offloaded_layers == 0 else 1 << 20
    return growth if growth >= max(floor, 1) else None


def gpu_memory() -> tuple[int, int] | None:
    """(free, total) bytes over llama.cpp's GPU devices; None without a GPU backend."""
    if not backend_info().gpu_offload:
        return None
    try:
        import llama_cpp

        lib = llama_cpp.llama_cpp._lib
        lib.ggml_backend_dev_count.restype = ctypes.c_size_t
        lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        lib.ggml_backend_dev_get.restype = ctypes.c_void_p
        lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_type.restype = ctypes.c_int
        lib.ggml_backend_dev_memory.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)
        ]
        free_sum = total_sum = 0
        found = False
        for i in range(int(lib.ggml_backend_dev_count())):
            dev = lib.ggml_backend_dev_get(i)
            # enum ggml_backend_dev_type: CPU 0, GPU 1, IGPU 2, ACCEL 3
            if lib.ggml_backend_dev_type(dev) not in (1, 2):
                continue
            free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
            lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            free_sum += free.value
            total_sum += total.value
            found = True
    except Exception:  # noqa: BLE001 - an older llama.cpp without the device API
        return None
    return (free_sum, total_sum) if found else None


def validate_model_file(path: str | os.PathLike[str]) -> GGUFInfo:
    """Check a GGUF file before anything hands it to llama.cpp."""
    return read_gguf(path, known_architectures=supported_architectures())


def validate_adapter_file(path: str | os.PathLike[str], model: GGUFInfo) -> GGUFInfo:
    """Check a GGUF LoRA adapter before llama.cpp sees it: a sound file of the model's
    architecture (llama.cpp would apply a mismatched one to the wrong tensors or abort)."""
    adapter = read_gguf(path, known_architectures=supported_architectures())
    if adapter.architecture != model.architecture:
        raise ModelFileError(
            f"{adapter.path.name}: this adapter is for {adapter.architecture or 'an unknown'} "
            f"models, but {model.path.name} is {model.architecture or 'unknown'}."
        )
    return adapter


def _offloaded_layers(requested: int, block_count: int | None) -> int:
    """How many layers llama.cpp puts on the GPU for ``n_gpu_layers=requested``."""
    total = (block_count or 0) + 1  # the repeating blocks and the output layer
    if requested < 0:
        return total
    return min(requested, total)



class LlamaLoading(LlamaState):
    """Loads and unloads the model, its LoRA adapter and the chat template."""

    def load(self, path: str | os.PathLike[str], params: LoadParams | None = None) -> ModelInfo:
        """Validate and load a model, replacing any loaded one."""
        params = params or LoadParams()
        gguf = validate_model_file(path)
        adapter = validate_adapter_file(params.lora_path, gguf) if params.lora_path else None
        backend = backend_info()
        if not backend.available:
            raise ModelFileError(backend.error or "llama.cpp is not available.")
        self.unload()
        import llama_cpp

        n_ctx_train = gguf.context_length or params.max_context
        n_ctx = max(256, min(params.max_context, n_ctx_train))
        # Measured from here, after the previous model is freed.
        rss_before = _resident_bytes()
        gpu_before = gpu_memory()
        threads = params.resolved_threads()
        if params.n_gpu_layers is None:
            n_gpu_layers = -1 if backend.gpu_offload else 0
        else:
            n_gpu_layers = params.n_gpu_layers
        sequences = min(max(1, params.parallel_sequences),
                        llama_cpp.llama_max_parallel_sequences())
        started = time.perf_counter()
        try:
            with _library_chat_templates_off(), _context_sequences(sequences):
                llm = llama_cpp.Llama(
                    model_path=str(gguf.path),
                    n_ctx=n_ctx,
                    n_batch=min(params.n_batch, n_ctx),
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=n_gpu_layers,
                    logits_all=False,
                    vocab_only=params.vocab_only,
                    lora_path=str(adapter.path) if adapter else None,
                    lora_scale=params.lora_scale,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            what = f"this model with the adapter {adapter.path.name}" if adapter else "this model"
            raise ModelFileError(
                f"{gguf.path.name}: llama.cpp could not load {what} ({exc})."
            ) from exc
        load_s = time.perf_counter() - started
        with self.swap_lock:
            self._install_model(llm, gguf, n_ctx_train, threads, n_gpu_layers, load_s)
            if adapter is not None:
                self._set_adapter(LoraAdapter(str(adapter.path), params.lora_scale))
            if not params.vocab_only:  # without weights there is nothing to warm up
                self._measure_load(rss_before, gpu_before)
        assert self._info is not None
        return self._info

    def _set_adapter(self, adapter: LoraAdapter) -> None:
        assert self._info is not None
        self._info = dataclasses.replace(self._info, adapter=adapter)

    def set_adapter_scale(self, scale: float) -> None:
        """Change the loaded LoRA adapter's scale without reloading (0: the base model).

        The KV cache was computed with the old scale, so it is cleared.
        """
        import llama_cpp

        llm = self._require()
        adapter = getattr(llm, "_lora_adapter", None)
        if adapter is None or self._info is None or self._info.adapter is None:
            raise ModelNotLoadedError("No LoRA adapter is loaded.")
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(scale)
        if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, adapters, 1, scales):
            raise ModelFileError("llama.cpp could not change the adapter's scale.")
        self._set_adapter(dataclasses.replace(self._info.adapter, scale=scale))
        self.clear_cache()

    def _measure_load(self, rss_before: int | None, gpu_before: tuple[int, int] | None) -> None:
        """Warm up with one token, then record what the load added to memory.

        Weights are memory-mapped and only count as resident once read (Linux reads them
        at load; macOS and Windows on first use), so one token is evaluated first: it
        reads every layer. Untouched rows of a token-embedding table stay out, and the
        scratch buffers that a long prompt fills later are not included yet.
        """

        import llama_cpp

        llm = self._llm
        info = self._info
        if llm is None or info is None:
            return
        try:
            bos = llm.token_bos()
            llm.eval([bos if bos >= 0 else 0])
        except RuntimeError:
            log.warning("warm-up evaluation failed; memory measured without it")
        # The warm-up token is no prompt: the next job starts from an empty cache.
        self.clear_cache()
        rss_after = _resident_bytes()
        gpu_after = gpu_memory()
        weights = int(llama_cpp.llama_model_size(llm._model.model))
        memory = None
        if rss_before is not None and rss_after is not None:
            memory = meaningful_growth(rss_after - rss_before, weights, info.offloaded_layers)
        gpu_used = None
        if gpu_before is not None and gpu_after is not None and info.offloaded_layers:
            gpu_used = gpu_before[0] - gpu_after[0]
            gpu_used = gpu_used if gpu_used > 0 else None
        self._info = dataclasses.replace(
            info, memory_bytes=memory, weights_bytes=weights, gpu_memory_bytes=gpu_used,
        )

    def _install_model(
        self, llm: Any, gguf: GGUFInfo, n_ctx_train: int, threads: int, n_gpu_layers: int,
        load_s: float,
    ) -> None:
        import llama_cpp

        backend = backend_info()
        self._llm = llm
        self._gguf = gguf
        self._n_seq_max = int(llm.context_params.n_seq_max)
        self._install_abort_callback()
        vocab = llm._model.vocab
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        bos_id = llm.token_bos()
        eos_id = llm.token_eos()
        self._bos_text = self._token_text(bos_id) if bos_id >= 0 else ""
        eos_text = self._token_text(eos_id) if eos_id >= 0 else ""
        template_fallback = False
        try:
            if not gguf.chat_template:
                raise TemplateError("The model has no chat template.")
            self._template = ChatTemplate(gguf.chat_template, self._bos_text, eos_text)
            # Render once now so a template that cannot work is caught at load time.
            self._template.render([{"role": "user", "content": "Hello"}])
        except TemplateError as exc:
            log.warning("%s: using the fallback chat template: %s", gguf.path.name, exc)
            self._template = fallback_template(self._bos_text, eos_text)
            template_fallback = True
        self._info = ModelInfo(
            path=str(gguf.path),
            name=gguf.name or gguf.path.stem,
            architecture=gguf.architecture or "unknown",
            n_ctx=llm.n_ctx(),
            n_ctx_train=n_ctx_train,
            n_threads=threads,
            n_gpu_layers=n_gpu_layers if backend.gpu_offload else 0,
            offloaded_layers=_offloaded_layers(
                n_gpu_layers if backend.gpu_offload else 0, gguf.block_count
            ),
            n_vocab=llm.n_vocab(),
            backend=backend.backend,
            load_s=load_s,
            template_fallback=template_fallback,
            quantization=gguf.quantization,
        )

    def unload(self) -> None:
        with self.swap_lock:
            llm, self._llm = self._llm, None
            self._info = None
            self._gguf = None
            self._template = None
            self._free(llm)

