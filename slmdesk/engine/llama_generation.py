"""Generation for the llama.cpp engine: stream a reply, reusing the KV cache across turns.

Plain Python (no Qt); one concern of ``slmdesk.engine.llama_engine.LlamaEngine``.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from slmdesk.engine.llama_prompts import LlamaPrompts
from slmdesk.engine.llama_state import (
    Cancelled,
    ChatMessage,
    ProgressCallback,
    TextCallback,
)
from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.engine.structured import OutputOptions, TokenLogprob, token_logprob
from slmdesk.errors import ContextOverflowError, InvalidInputError

log = logging.getLogger(__name__)


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



class _ReplyText:
    """The reply as it streams: token bytes to text, held back at a possible stop string."""

    def __init__(self, on_text: TextCallback | None, stops: Sequence[str]) -> None:
        self._on_text = on_text
        self._utf8 = _Utf8Stream()
        self.stopper = _StopMatcher(stops)
        self.pieces: list[str] = []

    def _emit(self, text: str) -> None:
        if text:
            self.pieces.append(text)
            if self._on_text is not None:
                self._on_text(text)

    def feed(self, data: bytes) -> bool:
        """Stream one token's bytes; return whether a stop string was hit."""
        text, hit = self.stopper.feed(self._utf8.feed(data))
        self._emit(text)
        return hit

    def flush(self) -> None:
        """Stream what is held back (an unfinished character, a possible stop string)."""
        self._emit(self.stopper.feed(self._utf8.flush())[0])
        self._emit(self.stopper.flush())

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _end_reply(result: GenerationResult, reply: _ReplyText, finish: str) -> None:
    """Set the finish reason and stream what is held back, except a stop string's start
    when a stop string ended the reply."""
    if finish != "stop" or not reply.stopper.stops:
        reply.flush()
    result.finish_reason = finish


def _time_result(result: GenerationResult, reply: _ReplyText, started: float) -> None:
    """The reply's text, duration and decode speed (tokens after the first ÷ their time)."""
    result.text = reply.text
    result.duration_s = time.perf_counter() - started
    if result.ttft_s is not None and result.completion_tokens > 1:
        gen_time = result.duration_s - result.ttft_s
        result.tokens_per_s = (result.completion_tokens - 1) / max(gen_time, 1e-9)


class LlamaGeneration(LlamaPrompts):
    """Samples replies: chat turns, completions of given tokens, grammars, log-probs."""

    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
        on_prompt_progress: ProgressCallback | None = None,
        output: OutputOptions | None = None,
        continue_from: str = "",
    ) -> GenerationResult:
        """Generate the assistant's reply to ``messages``, streaming text to ``on_text``.

        The KV cache keeps the previous prompt and reply, so a follow-up turn only
        processes the tokens after the longest shared prefix. ``output`` adds a grammar
        and per-token log-probabilities. ``continue_from`` is the start of the reply,
        already written (a stopped or length-cut reply): the model goes on from its last
        token, and only the new text is streamed and returned.
        """
        sampling = sampling or SamplingParams()
        tokens, result = self._chat_prompt(messages, sampling, continue_from)
        cancel = cancel or threading.Event()
        return self._generate(
            tokens, sampling, cancel, result, on_text, on_prompt_progress, output
        )

    def _chat_prompt(
        self, messages: Sequence[ChatMessage], sampling: SamplingParams, continue_from: str = ""
    ) -> tuple[list[int], GenerationResult]:
        """The prompt tokens of a chat turn, fitted to the context (oldest messages left
        out first), and the result that will describe the reply."""
        n_ctx = self._require().n_ctx()
        reserve = min(max(1, sampling.max_tokens), n_ctx // 4)
        written = self.tokenize_piece(continue_from) if continue_from else []
        tokens, dropped = self.fit_messages(messages, reserve + len(written))
        tokens += written
        result = GenerationResult(prompt_tokens=len(tokens), dropped_messages=dropped)
        if dropped:
            result.notes.append(
                f"{dropped} older message(s) were left out so the conversation fits the "
                f"{n_ctx}-token context."
            )
        return tokens, result

    def stream_tokens(self, tokens: Sequence[int], sampling: SamplingParams | None = None, *,
                      cancel: threading.Event | None = None, on_text: TextCallback | None = None,
                      output: OutputOptions | None = None) -> GenerationResult:
        """Generate after a prompt given as tokens (a completion, not a chat turn).

        Used for text the caller built itself, e.g. a classifier's explanation prompt. The
        KV cache is reused for the longest prefix shared with what is cached.
        """
        sampling = sampling or SamplingParams()
        tokens, result = self._completion_prompt(tokens)
        return self._generate(
            tokens, sampling, cancel or threading.Event(), result, on_text, None, output
        )

    def _completion_prompt(self, tokens: Sequence[int]) -> tuple[list[int], GenerationResult]:
        """The prompt tokens of a completion, refused when they fill the context."""
        n_ctx = self._require().n_ctx()
        tokens = list(tokens)
        if not tokens:
            raise ValueError("stream_tokens needs at least one prompt token")
        if len(tokens) >= n_ctx:
            raise ContextOverflowError(
                f"The prompt is {len(tokens)} tokens, but the model's context holds {n_ctx}."
            )
        return tokens, GenerationResult(prompt_tokens=len(tokens))

    def _generate(
        self,
        tokens: list[int],
        sampling: SamplingParams,
        cancel: threading.Event,
        result: GenerationResult,
        on_text: TextCallback | None,
        on_prompt_progress: ProgressCallback | None,
        output: OutputOptions | None = None,
    ) -> GenerationResult:
        import llama_cpp

        output = output or OutputOptions()
        grammar = self._grammar_sampler(output.grammar)
        started = time.perf_counter()
        # At least one token is decoded again, to get fresh logits for sampling.
        todo = self._reuse_cached_prefix(tokens)
        result.prompt_tokens_evaluated = len(todo)

        self._cancel = cancel
        sampler = self._make_sampler(sampling, grammar)
        reply = _ReplyText(on_text, sampling.stop)
        try:
            self._decode_in_slices(todo, cancel, on_prompt_progress)
            prompt_done = time.perf_counter()
            if todo:
                result.prompt_tokens_per_s = len(todo) / max(prompt_done - started, 1e-9)
            # One token's decode is short, so the cancel check between tokens is enough.
            # llama.cpp calls the abort callback once per graph node (~600 times a token),
            # each a Python call that must take the GIL: profiled, that slowed decoding by
            # 5-15%, most while the GUI thread was rendering the reply (bench decode_ratio).
            self._set_abort_checks(False)
            finish = self._sample_reply(sampler, sampling, cancel, result, reply, output, started)
            _end_reply(result, reply, finish)
        except Cancelled:
            _end_reply(result, reply, "cancelled")
        except RuntimeError as exc:
            log.exception("generation failed")
            result.finish_reason = "error"
            result.error = f"llama.cpp failed during generation: {exc}"
        finally:
            self._set_abort_checks(True)
            self._cancel = threading.Event()
            llama_cpp.llama_sampler_free(sampler)
        _time_result(result, reply, started)
        return result

    def _sample_reply(
        self,
        sampler: Any,
        sampling: SamplingParams,
        cancel: threading.Event,
        result: GenerationResult,
        reply: _ReplyText,
        output: OutputOptions,
        started: float,
    ) -> str:
        """Sample and decode reply tokens after the prompt; return the finish reason
        ("stop": end of generation or a stop string, "length": max_tokens or a full context).
        Raises ``Cancelled`` when ``cancel`` is set."""
        import llama_cpp

        llm = self._require()
        n_ctx = llm.n_ctx()
        first_token = True
        while result.completion_tokens < sampling.max_tokens:
            if cancel.is_set():
                raise Cancelled
            token = llama_cpp.llama_sampler_sample(sampler, llm._ctx.ctx, -1)
            if first_token:
                first_token = False
                result.ttft_s = time.perf_counter() - started
            finish = self._accept_token(token, result, reply, output, llm.n_tokens >= n_ctx)
            if finish is not None:
                return finish
            try:
                llm.eval([token])
            except RuntimeError as exc:
                if cancel.is_set():
                    raise Cancelled from exc
                raise
        return "length"

    def _accept_token(
        self,
        token: int,
        result: GenerationResult,
        reply: _ReplyText,
        output: OutputOptions,
        context_full: bool,
        index: int = -1,
    ) -> str | None:
        """One sampled token: count it, report its log-probability (from the logits at
        output ``index`` of the last decode), stream its text; return the finish reason
        when it ends the reply ("stop": end of generation or a stop string, "length": the
        context is full), else None."""
        import llama_cpp

        if llama_cpp.llama_vocab_is_eog(self._require()._model.vocab, token):
            return "stop"
        result.completion_tokens += 1
        if output.on_token is not None:
            output.on_token(self._token_logprob(token, output.top_logprobs, index))
        if reply.feed(self._token_bytes(token)):
            return "stop"
        if context_full:
            result.notes.append("The reply filled the context window.")
            return "length"
        return None

    def _grammar_sampler(self, grammar: str | None) -> Any:
        """llama.cpp's grammar sampler for GBNF text (None without a grammar)."""
        import llama_cpp

        if grammar is None:
            return None
        vocab = self._require()._model.vocab
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            raise InvalidInputError("llama.cpp could not parse the grammar.")
        return sampler

    def _token_logprob(self, token: int, top_n: int, index: int = -1) -> TokenLogprob:
        """log P(token) under the model's logits (before sampling) at output ``index`` of
        the last decode (-1: its last output)."""
        import llama_cpp
        import numpy as np

        llm = self._require()
        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, index)
        row = np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))
        logprob, top = token_logprob(row, token, top_n)
        return TokenLogprob(
            token=token,
            piece=self._token_bytes(token),
            logprob=logprob,
            top=tuple((self._token_bytes(t), lp) for t, lp in top),
        )

    def _make_sampler(self, s: SamplingParams, grammar: Any = None) -> Any:
        import llama_cpp

        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = llama_cpp.llama_sampler_chain_add
        if grammar is not None:
            # First, so that every later step only sees tokens the grammar allows; the
            # chain owns it from here and frees it with the chain.
            add(chain, grammar)
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

