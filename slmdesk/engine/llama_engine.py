"""The llama.cpp engine: load a GGUF, stream a chat reply, reuse the KV cache across turns.

Plain Python (no Qt): the CLI drives it directly, the GUI on the engine thread
(``slmdesk.ui.engine_thread``). One ``LlamaEngine`` owns at most one loaded model; it is not
thread-safe and must be used from one thread at a time (the cancel event is the exception:
set it from anywhere).
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.engine.backend import backend_info
from slmdesk.engine.fingerprint import REFERENCE_TEXT, Fingerprint
from slmdesk.engine.gguf import GGUFInfo, read_gguf, supported_architectures
from slmdesk.engine.params import GenerationResult, LoadParams, SamplingParams
from slmdesk.engine.template import ChatTemplate, fallback_template
from slmdesk.errors import (
    ContextOverflowError,
    ModelFileError,
    ModelNotLoadedError,
    TemplateError,
)

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

    @property
    def measured_memory_bytes(self) -> int | None:
        """RAM and GPU memory the load took, for comparison with the fit estimate."""
        if self.memory_bytes is None:
            return None
        return self.memory_bytes + (self.gpu_memory_bytes or 0)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


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


def _offloaded_layers(requested: int, block_count: int | None) -> int:
    """How many layers llama.cpp puts on the GPU for ``n_gpu_layers=requested``."""
    total = (block_count or 0) + 1  # the repeating blocks and the output layer
    if requested < 0:
        return total
    return min(requested, total)


class _Utf8Stream:
    """Turns token bytes into text without breaking multi-byte characters across tokens."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data, final=False)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class _StopMatcher:
    """Holds back text that may be the start of a stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop string was hit)."""
        self.pending += text
        if not self.stops:
            out, self.pending = self.pending, ""
            return out, False
        first = min(
            (i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1
        )
        if first >= 0:
            out = self.pending[:first]
            self.pending = ""
            return out, True
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def _log_softmax_at(row: Any, tokens: list[int]) -> list[float]:
    """log P(token) for each of ``tokens`` from one row of logits, in float64."""
    import numpy as np

    row64 = row.astype(np.float64)
    top = float(row64.max())
    lse = top + float(np.log(np.exp(row64 - top).sum()))
    return [float(row64[t]) - lse for t in tokens]


class LlamaEngine:
    """Owns one ``llama_cpp.Llama`` and generates chat replies with it."""

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
        # Held while a model is swapped in or freed. Other threads may count tokens
        # (tokenizing only reads the immutable vocabulary) but only under this lock.
        self.swap_lock = threading.RLock()

    # loading --------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo | None:
        return self._info

    @property
    def gguf(self) -> GGUFInfo | None:
        return self._gguf

    @property
    def is_loaded(self) -> bool:
        return self._llm is not None

    def load(self, path: str | os.PathLike[str], params: LoadParams | None = None) -> ModelInfo:
        """Validate and load a model, replacing any loaded one."""
        params = params or LoadParams()
        gguf = validate_model_file(path)
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
        started = time.perf_counter()
        try:
            with _library_chat_templates_off():
                llm = llama_cpp.Llama(
                    model_path=str(gguf.path),
                    n_ctx=n_ctx,
                    n_batch=min(params.n_batch, n_ctx),
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=n_gpu_layers,
                    logits_all=False,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(
                f"{gguf.path.name}: llama.cpp could not load this model ({exc})."
            ) from exc
        load_s = time.perf_counter() - started
        with self.swap_lock:
            self._install_model(llm, gguf, n_ctx_train, threads, n_gpu_layers, load_s)
            self._measure_load(rss_before, gpu_before)
        assert self._info is not None
        return self._info

    def _measure_load(self, rss_before: int | None, gpu_before: tuple[int, int] | None) -> None:
        """Warm up with one token, then record what the load added to memory.

        Weights are memory-mapped and only count as resident once read (Linux reads them
        at load; macOS and Windows on first use), so one token is evaluated first: it
        reads every layer. Untouched rows of a token-embedding table stay out, and the
        scratch buffers that a long prompt fills later are not included yet.
        """
        import dataclasses

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

    def measure_prompt(self, messages: Sequence[ChatMessage]) -> int | None:
        """Prompt tokens for ``messages``; callable from any thread.

        Returns None when no model is loaded, a model is being swapped, or the template
        refuses the messages (the caller keeps its last figure).
        """
        if not self.swap_lock.acquire(blocking=False):
            return None
        try:
            if self._llm is None or self._template is None:
                return None
            try:
                return len(self.tokenize_prompt(self.render(messages)))
            except TemplateError:
                return None
        finally:
            self.swap_lock.release()

    def measure_text(self, text: str) -> int | None:
        """Tokens in plain ``text``; callable from any thread (None while swapping)."""
        if not self.swap_lock.acquire(blocking=False):
            return None
        try:
            return None if self._llm is None else self.count_tokens(text)
        finally:
            self.swap_lock.release()

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

    # prompts --------------------------------------------------------------------------
    def render(self, messages: Sequence[ChatMessage]) -> str:
        if self._template is None:
            raise ModelNotLoadedError("No model is loaded.")
        return self._template.render(messages, add_generation_prompt=True)

    def tokenize_prompt(self, text: str) -> list[int]:
        llm = self._require()
        add_bos = self._add_bos and not (self._bos_text and text.startswith(self._bos_text))
        return list(llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def count_tokens(self, text: str) -> int:
        llm = self._require()
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def fit_messages(
        self, messages: Sequence[ChatMessage], reserve: int
    ) -> tuple[list[int], int]:
        """Tokenize the prompt, dropping the oldest turns until it fits.

        Keeps the system prompt and the last message. Returns (prompt tokens, number of
        messages dropped). Raises ``ContextOverflowError`` when even the last message
        alone cannot fit.
        """
        llm = self._require()
        n_ctx = llm.n_ctx()
        budget = n_ctx - reserve
        msgs = list(messages)
        system = [m for m in msgs[:1] if m["role"] == "system"]
        rest = msgs[len(system):]
        dropped = 0
        while True:
            tokens = self.tokenize_prompt(self.render(system + rest))
            if len(tokens) <= budget:
                return tokens, dropped
            if len(rest) <= 1:
                last = rest[-1]["content"] if rest else ""
                n_last = self.count_tokens(last)
                if system and n_last < budget:
                    raise ContextOverflowError(
                        f"The system prompt and your message together need {len(tokens)} "
                        f"tokens, but the model's context holds {n_ctx} "
                        f"({reserve} are kept free for the reply). Shorten one of them."
                    )
                raise ContextOverflowError(
                    f"Your message is about {n_last} tokens, but the model's context holds "
                    f"{n_ctx} ({reserve} are kept free for the reply). Shorten the message "
                    "or raise the context size in the settings."
                )
            # Drop the oldest turn; keep roles alternating by starting again at a user turn.
            rest.pop(0)
            dropped += 1
            while len(rest) > 1 and rest[0]["role"] != "user":
                rest.pop(0)
                dropped += 1

    # generation -----------------------------------------------------------------------
    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
        on_prompt_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Generate the assistant's reply to ``messages``, streaming text to ``on_text``.

        The KV cache keeps the previous prompt and reply, so a follow-up turn only
        processes the tokens after the longest shared prefix.
        """
        sampling = sampling or SamplingParams()
        llm = self._require()
        n_ctx = llm.n_ctx()
        reserve = min(max(1, sampling.max_tokens), n_ctx // 4)
        tokens, dropped = self.fit_messages(messages, reserve)
        result = GenerationResult(prompt_tokens=len(tokens), dropped_messages=dropped)
        if dropped:
            result.notes.append(
                f"{dropped} older message(s) were left out so the conversation fits the "
                f"{n_ctx}-token context."
            )
        cancel = cancel or threading.Event()
        return self._generate(tokens, sampling, cancel, result, on_text, on_prompt_progress)

    def _generate(
        self,
        tokens: list[int],
        sampling: SamplingParams,
        cancel: threading.Event,
        result: GenerationResult,
        on_text: TextCallback | None,
        on_prompt_progress: ProgressCallback | None,
    ) -> GenerationResult:
        import llama_cpp

        llm = self._require()
        n_ctx = llm.n_ctx()
        started = time.perf_counter()
        # At least one token is decoded again, to get fresh logits for sampling.
        todo = self._reuse_cached_prefix(tokens)
        result.prompt_tokens_evaluated = len(todo)

        self._cancel = cancel
        sampler = self._make_sampler(sampling)
        utf8 = _Utf8Stream()
        stopper = _StopMatcher(sampling.stop)
        pieces: list[str] = []

        def emit(text: str) -> None:
            if text:
                pieces.append(text)
                if on_text is not None:
                    on_text(text)

        try:
            try:
                done = 0
                for i in range(0, len(todo), PROMPT_SLICE):
                    if cancel.is_set():
                        raise Cancelled
                    llm.eval(todo[i : i + PROMPT_SLICE])
                    done = min(len(todo), i + PROMPT_SLICE)
                    if on_prompt_progress is not None:
                        on_prompt_progress(done, len(todo))
            except RuntimeError as exc:
                if cancel.is_set():
                    raise Cancelled from exc
                raise
            prompt_done = time.perf_counter()
            if todo:
                result.prompt_tokens_per_s = len(todo) / max(prompt_done - started, 1e-9)
            # One token's decode is short, so the cancel check between tokens is enough.
            # llama.cpp calls the abort callback once per graph node (~600 times a token),
            # each a Python call that must take the GIL: profiled, that slowed decoding by
            # 5-15%, most while the GUI thread was rendering the reply (bench decode_ratio).
            self._set_abort_checks(False)
            vocab = llm._model.vocab
            first_token_at: float | None = None
            finish = "length"
            while result.completion_tokens < sampling.max_tokens:
                if cancel.is_set():
                    raise Cancelled
                token = llama_cpp.llama_sampler_sample(sampler, llm._ctx.ctx, -1)
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                    result.ttft_s = first_token_at - started
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                result.completion_tokens += 1
                text, hit = stopper.feed(utf8.feed(self._token_bytes(token)))
                emit(text)
                if hit:
                    finish = "stop"
                    break
                if llm.n_tokens >= n_ctx:
                    result.notes.append("The reply filled the context window.")
                    break
                try:
                    llm.eval([token])
                except RuntimeError as exc:
                    if cancel.is_set():
                        raise Cancelled from exc
                    raise
            else:
                finish = "length"
            if finish != "stop" or not stopper.stops:
                emit(stopper.feed(utf8.flush())[0])
                emit(stopper.flush())
            result.finish_reason = finish
        except Cancelled:
            emit(stopper.feed(utf8.flush())[0])
            emit(stopper.flush())
            result.finish_reason = "cancelled"
        except RuntimeError as exc:
            log.exception("generation failed")
            result.finish_reason = "error"
            result.error = f"llama.cpp failed during generation: {exc}"
        finally:
            self._set_abort_checks(True)
            self._cancel = threading.Event()
            llama_cpp.llama_sampler_free(sampler)
        ended = time.perf_counter()
        result.text = "".join(pieces)
        result.duration_s = ended - started
        if result.ttft_s is not None and result.completion_tokens > 1:
            gen_time = result.duration_s - result.ttft_s
            result.tokens_per_s = (result.completion_tokens - 1) / max(gen_time, 1e-9)
        return result

    def _make_sampler(self, s: SamplingParams) -> Any:
        import llama_cpp

        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = llama_cpp.llama_sampler_chain_add
        if s.repeat_penalty and s.repeat_penalty != 1.0:
            add(chain, self._penalties(s.repeat_penalty))
        if s.temperature <= 0:
            add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        seed = s.seed if s.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
        if s.top_k > 0:
            add(chain, llama_cpp.llama_sampler_init_top_k(s.top_k))
        if 0 < s.top_p < 1:
            add(chain, llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0:
            add(chain, llama_cpp.llama_sampler_init_min_p(s.min_p, 1))
        add(chain, llama_cpp.llama_sampler_init_temp(s.temperature))
        add(chain, llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def _penalties(self, repeat_penalty: float) -> Any:
        import llama_cpp

        # llama-cpp-python's vendored llama.cpp takes n_vocab first; upstream does not.
        try:
            return llama_cpp.llama_sampler_init_penalties(
                self._require().n_vocab(), 64, repeat_penalty, 0.0, 0.0
            )
        except TypeError:
            return llama_cpp.llama_sampler_init_penalties(64, repeat_penalty, 0.0, 0.0)

    def stream_tokens(
        self,
        tokens: Sequence[int],
        sampling: SamplingParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
    ) -> GenerationResult:
        """Generate after a prompt given as tokens (a completion, not a chat turn).

        Used for text the caller built itself, e.g. a classifier's explanation prompt. The
        KV cache is reused for the longest prefix shared with what is cached.
        """
        sampling = sampling or SamplingParams()
        llm = self._require()
        tokens = list(tokens)
        if not tokens:
            raise ValueError("stream_tokens needs at least one prompt token")
        if len(tokens) >= llm.n_ctx():
            raise ContextOverflowError(
                f"The prompt is {len(tokens)} tokens, but the model's context holds "
                f"{llm.n_ctx()}."
            )
        result = GenerationResult(prompt_tokens=len(tokens))
        return self._generate(
            tokens, sampling, cancel or threading.Event(), result, on_text, None
        )

    # scoring --------------------------------------------------------------------------
    def tokenize_piece(self, text: str, *, special: bool = False) -> list[int]:
        """Tokens of ``text`` without BOS, for building a prompt piece by piece.

        ``special=True`` turns special-token text (``<|im_end|>``) into control tokens,
        which template pieces need; text from a person or a data set keeps it off so it
        cannot inject them.
        """
        llm = self._require()
        if not text:
            return []
        return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def token_piece(self, token: int) -> bytes:
        """The bytes one token stands for (special tokens as their text)."""
        return self._token_bytes(token, special=True)

    def has_chat_template(self) -> bool:
        """Whether the loaded model brings a chat template that renders (instruction-tuned)."""
        return bool(
            self._gguf is not None
            and self._gguf.chat_template
            and self._info is not None
            and not self._info.template_fallback
        )

    def score_continuations(
        self,
        prefix: Sequence[int],
        continuations: Sequence[tuple[Sequence[int], Sequence[int]]],
        *,
        cancel: threading.Event | None = None,
    ) -> list[float]:
        """Log-probability of each ``target`` after ``prefix + context``.

        For every ``(context, target)`` pair, returns the sum over the target's tokens of
        log P(token | prefix, context, earlier target tokens), in nats. The prefix is
        decoded once (reusing the KV cache for what it shares with the cached tokens);
        each continuation is then decoded on top of it and its KV cells are removed again,
        so the next one starts right after the prefix. Continuations with the same tokens
        up to their last target token share one decode (the last token is never decoded:
        its probability comes from the logits before it).

        Only the positions whose logits are needed are requested from llama.cpp, one row
        of n_vocab floats each: ``logits_all=True`` would hold n_ctx x n_vocab floats
        (gigabytes for a 262k vocabulary). Raises ``Cancelled`` when ``cancel`` is set.
        """
        llm = self._require()
        prefix = list(prefix)
        conts = [(list(c), list(t)) for c, t in continuations]
        if not prefix:
            raise ValueError("score_continuations needs a non-empty prefix")
        if any(not t for _, t in conts):
            raise ValueError("every continuation needs at least one target token")
        n_ctx = llm.n_ctx()
        longest = max((len(c) + len(t) for c, t in conts), default=0)
        if len(prefix) + longest > n_ctx:
            raise ContextOverflowError(
                f"The prompt and its longest label need {len(prefix) + longest} tokens, but "
                f"the model's context holds {n_ctx}."
            )
        cancel = cancel or threading.Event()
        with self._abortable(cancel):
            last_row = self._decode_prefix(prefix, cancel)
            return self._score_on_prefix(len(prefix), conts, last_row, cancel)

    @contextlib.contextmanager
    def _abortable(self, cancel: threading.Event) -> Iterator[None]:
        """Run a decoding job that ``cancel`` stops, also inside llama.cpp (abort callback;
        the aborted decode's RuntimeError becomes ``Cancelled``)."""
        self._cancel = cancel
        try:
            yield
        except RuntimeError as exc:
            if cancel.is_set():
                raise Cancelled from exc
            raise
        finally:
            self._cancel = threading.Event()

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

    def _decode_prefix(self, prefix: list[int], cancel: threading.Event) -> Any:
        """Bring the KV cache to exactly ``prefix``; return the last position's logits."""
        import llama_cpp
        import numpy as np

        llm = self._require()
        # Decode at least the last prefix token: its logits predict the first target token,
        # and logits are not kept for tokens that came from the cache.
        todo = self._reuse_cached_prefix(prefix)
        for i in range(0, len(todo), PROMPT_SLICE):
            if cancel.is_set():
                raise Cancelled
            llm.eval(todo[i : i + PROMPT_SLICE])
        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        if not ptr:
            raise RuntimeError("llama.cpp returned no logits for the prompt")
        return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()

    def _score_on_prefix(
        self,
        base: int,
        conts: list[tuple[list[int], list[int]]],
        last_row: Any,
        cancel: threading.Event,
    ) -> list[float]:
        import llama_cpp
        import numpy as np

        llm = self._require()
        n_vocab = llm.n_vocab()
        scores = [0.0] * len(conts)
        # Continuations that need the same decoded tokens share one decode.
        groups: dict[tuple[int, ...], list[int]] = {}
        for idx, (context, target) in enumerate(conts):
            groups.setdefault(tuple(context + target[:-1]), []).append(idx)

        for key, members in groups.items():
            if cancel.is_set():
                raise Cancelled
            # needs[p]: (continuation, token) pairs predicted by the logits at key position p;
            # p == -1 is the last prefix token.
            needs: dict[int, list[tuple[int, int]]] = {}
            for idx in members:
                context, target = conts[idx]
                full = context + target
                for p in range(len(context) - 1, len(full) - 1):
                    needs.setdefault(p, []).append((idx, full[p + 1]))
            for idx, token in needs.pop(-1, []):
                scores[idx] += _log_softmax_at(last_row, [token])[0]
            if not key:
                continue
            try:
                for start in range(0, len(key), llm.n_batch):
                    chunk = key[start : start + llm.n_batch]
                    wanted = [p - start for p in needs if start <= p < start + len(chunk)]
                    if not wanted:
                        wanted = [len(chunk) - 1]  # llama.cpp needs one output per batch
                    self._fill_batch(chunk, base + start, set(wanted))
                    llm._ctx.decode(llm._batch)
                    for j in sorted(wanted):
                        pairs = needs.get(start + j)
                        if not pairs:
                            continue
                        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, j)
                        if not ptr:
                            raise RuntimeError("llama.cpp returned no logits for a label")
                        row = np.ctypeslib.as_array(ptr, shape=(n_vocab,))
                        values = _log_softmax_at(row, [t for _, t in pairs])
                        for (idx, _), v in zip(pairs, values, strict=True):
                            scores[idx] += v
            finally:
                # Drop this continuation so the next starts right after the prefix; the
                # cache then holds exactly llm.input_ids[:llm.n_tokens] again.
                llm._ctx.kv_cache_seq_rm(0, base, -1)
        return scores

    def hidden_states(
        self, tokens: Sequence[int], start: int, *, cancel: threading.Event | None = None
    ) -> Any:
        """The model's last hidden state (after the final norm) at ``tokens[start:]``.

        Returns a float64 array of shape (len(tokens) - start, n_embd). The tokens before
        ``start`` are decoded without outputs (reusing the KV cache as far as it matches);
        the rest are decoded with llama.cpp's embeddings switched on for this call only
        (pooling "none" gives one vector per token, so the caller pools). Afterwards the
        cache holds all of ``tokens``, so scoring labels after the same tokens next
        decodes only the last one again. Raises ``Cancelled`` when ``cancel`` is set.
        """
        import llama_cpp
        import numpy as np

        llm = self._require()
        tokens = list(tokens)
        if not 0 < start < len(tokens):
            raise ValueError("hidden_states needs tokens before and after start")
        if len(tokens) > llm.n_ctx():
            raise ContextOverflowError(
                f"The text needs {len(tokens)} tokens, but the model's context holds "
                f"{llm.n_ctx()}."
            )
        cancel = cancel or threading.Event()
        n_embd = int(llama_cpp.llama_model_n_embd(llm._model.model))
        ctx = llm._ctx.ctx
        with self._abortable(cancel):
            self._decode_prefix(tokens[:start], cancel)
            rows: list[Any] = []
            llama_cpp.llama_set_embeddings(ctx, True)
            try:
                for first in range(start, len(tokens), llm.n_batch):
                    if cancel.is_set():
                        raise Cancelled
                    chunk = tokens[first : first + llm.n_batch]
                    self._fill_batch(chunk, first, set(range(len(chunk))))
                    llm._ctx.decode(llm._batch)
                    for j in range(len(chunk)):
                        ptr = llama_cpp.llama_get_embeddings_ith(ctx, j)
                        if not ptr:
                            raise RuntimeError("llama.cpp returned no hidden state")
                        rows.append(np.ctypeslib.as_array(ptr, shape=(n_embd,)).astype(
                            np.float64))
                    llm.input_ids[first : first + len(chunk)] = chunk
                    llm.n_tokens = first + len(chunk)
            finally:
                llama_cpp.llama_set_embeddings(ctx, False)
                # Cells of an unfinished chunk go, so the cache is input_ids[:n_tokens].
                llm._ctx.kv_cache_seq_rm(0, llm.n_tokens, -1)
            return np.stack(rows)

    def fingerprint(self, text: str = REFERENCE_TEXT) -> Fingerprint:
        """Mean log-probability per token of ``text`` (fingerprint.py says why).

        One prompt-processing pass from an empty cache, in batches of the context's batch
        size, with logits for every position; the cache is empty again afterwards. The
        result is a property of the weights and the arithmetic, not of sampling.
        """
        import llama_cpp
        import numpy as np

        llm = self._require()
        tokens = list(llm.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=False))
        if len(tokens) < 2:
            raise ValueError("the fingerprint text needs at least two tokens")
        if len(tokens) > llm.n_ctx():
            raise ContextOverflowError(
                f"The fingerprint text is {len(tokens)} tokens, but the model's context holds "
                f"{llm.n_ctx()}."
            )
        n_vocab = llm.n_vocab()
        total = 0.0
        self.clear_cache()
        try:
            for start in range(0, len(tokens), llm.n_batch):
                chunk = tokens[start : start + llm.n_batch]
                self._fill_batch(chunk, start, set(range(len(chunk))))
                llm._ctx.decode(llm._batch)
                for j in range(len(chunk)):
                    if start + j + 1 >= len(tokens):
                        break
                    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, j)
                    if not ptr:
                        raise RuntimeError("llama.cpp returned no logits for the fingerprint")
                    row = np.ctypeslib.as_array(ptr, shape=(n_vocab,))
                    total += _log_softmax_at(row, [tokens[start + j + 1]])[0]
        finally:
            self.clear_cache()  # the next job starts from an empty cache
        return Fingerprint(mean_logprob=total / (len(tokens) - 1), tokens=len(tokens) - 1)

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

    # counters -------------------------------------------------------------------------
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
