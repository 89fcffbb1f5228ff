"""Parallel sequences for the llama.cpp engine: several replies decoded together, one
``llama_decode`` per step, one sequence id (and its own KV cache cells) per request.

Plain Python (no Qt); one concern of ``slmdesk.engine.llama_engine.LlamaEngine``. Only a
model loaded with ``LoadParams.parallel_sequences`` > 1 can do it (llama.cpp's ``n_seq_max``,
with one KV buffer shared by all sequences so that one request alone still has the whole
context). Sequence 0 is the one the single-request path uses: a request that gets it reuses
the cached prefix and leaves its prompt and reply cached, as ``stream_chat`` does; the other
sequences' cells are freed when their reply ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slmdesk.engine.llama_generation import LlamaGeneration, _end_reply, _ReplyText, _time_result
from slmdesk.engine.llama_state import PROMPT_SLICE, ChatMessage, TextCallback
from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.engine.structured import OutputOptions

log = logging.getLogger(__name__)


@dataclass
class SequenceRequest:
    """One reply to decode beside others: its prompt, sampling, callbacks and result.

    ``on_done`` receives the result on the engine thread as soon as this reply ends, while
    the others may still run; ``on_error`` the exception of a request that could not start
    (a grammar llama.cpp refuses).
    """

    tokens: list[int]
    result: GenerationResult
    sampling: SamplingParams
    on_done: Callable[[GenerationResult], None]
    on_error: Callable[[BaseException], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    on_text: TextCallback | None = None
    output: OutputOptions = field(default_factory=OutputOptions)

    @property
    def cells(self) -> int:
        """KV cache cells this reply may take: its prompt and its longest reply."""
        return len(self.tokens) + max(0, self.sampling.max_tokens)


# Given the number of free sequences, the requests that wait now (at most that many).
Admit = Callable[[int], Sequence[SequenceRequest]]


@dataclass
class _Running:
    """A sequence being decoded: the request, its slot in the KV cache and its progress."""

    request: SequenceRequest
    seq_id: int
    sampler: Any
    reply: _ReplyText
    todo: list[int]  # prompt tokens not decoded yet
    n_past: int  # positions in the KV cache
    started: float
    next_token: int | None = None  # sampled, to be decoded in the next step
    output_index: int = -1  # where its logits are in this step's batch (-1: none)


class LlamaParallel(LlamaGeneration):
    """Decodes several requests' replies together (continuous batching)."""

    @property
    def parallel_sequences(self) -> int:
        """How many sequences the loaded context holds (1: one request at a time)."""
        return self._n_seq_max if self._llm is not None else 1

    def chat_sequence(self, messages: Sequence[ChatMessage], sampling: SamplingParams,
                      **kwargs: Any) -> SequenceRequest:
        """A chat turn's reply as a ``SequenceRequest`` (the prompt as ``stream_chat``
        builds it); ``kwargs``: the request's other fields (``on_done``, ``on_error``,
        ``cancel``, ``on_text``, ``output``)."""
        tokens, result = self._chat_prompt(messages, sampling)
        return SequenceRequest(tokens, result, sampling, **kwargs)

    def tokens_sequence(self, tokens: Sequence[int], sampling: SamplingParams,
                        **kwargs: Any) -> SequenceRequest:
        """A completion of ``tokens`` as a ``SequenceRequest`` (as ``stream_tokens``)."""
        prompt, result = self._completion_prompt(tokens)
        return SequenceRequest(prompt, result, sampling, **kwargs)

    def generate_together(self, admit: Admit) -> None:
        """Decode the replies of the requests ``admit`` hands over, all in one batch per
        step, asking it for more between steps while sequences and cache cells are free.
        Returns when no reply runs and ``admit`` has nothing more. Every request ends with
        its ``on_done``, whatever happens."""
        llm = self._require()
        n_ctx = llm.n_ctx()
        free_ids = list(range(self.parallel_sequences))
        running: list[_Running] = []
        held: list[SequenceRequest] = []  # handed over, waiting for cache cells
        self._set_abort_checks(False)  # per step, cancel is checked between steps
        try:
            while True:
                running = self._drop_finished(running, free_ids)
                if free_ids and not held:
                    held.extend(admit(len(free_ids)))
                while held and free_ids and (
                        not running or held[0].cells <= n_ctx - _cells(running, n_ctx)):
                    self._start(held.pop(0), free_ids, running)
                if not running and not held:
                    return
                if running:
                    self._step(running, n_ctx)
        except Exception as exc:  # every request gets its error; the worker goes on
            log.exception("parallel generation failed")
            error = f"llama.cpp failed during generation: {exc}"
            for seq in running:
                self._fail(seq, error)
            for request in held:
                request.result.finish_reason = "error"
                request.result.error = error
                request.on_done(request.result)
            self.clear_cache()  # which cells hold what is unknown now
        finally:
            self._set_abort_checks(True)

    # one sequence --------------------------------------------------------------------
    def _start(self, request: SequenceRequest, free_ids: list[int],
               running: list[_Running]) -> None:
        """Give ``request`` the lowest free sequence (sequence 0 reuses the cached prefix)
        and add it to ``running``; a request that cannot start gets its ``on_error``."""
        llm = self._require()
        try:
            grammar = self._grammar_sampler(request.output.grammar)
        except Exception as exc:  # noqa: BLE001 - this request's error, not the batch's
            request.on_error(exc)
            return
        sampler = self._make_sampler(request.sampling, grammar)
        seq_id = free_ids.pop(0)
        started = time.perf_counter()
        if seq_id == 0:
            todo = self._reuse_cached_prefix(request.tokens)
            n_past = llm.n_tokens
            llm._ctx.kv_cache_seq_rm(0, n_past, -1)
        else:
            todo, n_past = list(request.tokens), 0
        request.result.prompt_tokens_evaluated = len(todo)
        reply = _ReplyText(request.on_text, request.sampling.stop)
        running.append(_Running(request, seq_id, sampler, reply, todo, n_past, started))

    def _drop_finished(self, running: list[_Running], free_ids: list[int]) -> list[_Running]:
        """End the cancelled replies, free the sequences of the ended ones, keep the rest."""
        kept = []
        for seq in running:
            if seq.request.cancel.is_set():
                self._finish(seq, "cancelled")
            if seq.sampler is None:
                free_ids.append(seq.seq_id)
            else:
                kept.append(seq)
        free_ids.sort()
        return kept

    def _finish(self, seq: _Running, finish: str) -> None:
        import llama_cpp

        if seq.sampler is None:
            return  # already finished
        _end_reply(seq.request.result, seq.reply, finish)
        self._release(seq)
        llama_cpp.llama_sampler_free(seq.sampler)
        seq.sampler = None
        seq.next_token = None
        seq.todo = []
        _time_result(seq.request.result, seq.reply, seq.started)
        seq.request.on_done(seq.request.result)

    def _fail(self, seq: _Running, error: str) -> None:
        if seq.sampler is None:
            return
        seq.request.result.error = error
        self._finish(seq, "error")
        seq.request.result.finish_reason = "error"

    def _release(self, seq: _Running) -> None:
        """Free the sequence's cache cells; sequence 0 stays cached for the next request."""
        if seq.seq_id != 0:
            self._require()._ctx.kv_cache_seq_rm(seq.seq_id, -1, -1)

    # one step ------------------------------------------------------------------------
    def _step(self, running: list[_Running], n_ctx: int) -> None:
        """One ``llama_decode``: every decoding sequence's last token, and up to
        ``PROMPT_SLICE`` prompt tokens of the sequences still reading their prompt; then
        sample the sequences whose prompt or last token was decoded."""
        llm = self._require()
        batch = llm._batch.batch
        n = 0
        budget = PROMPT_SLICE
        for seq in running:
            seq.output_index = -1
            if seq.next_token is not None:
                tokens = [seq.next_token]
            elif seq.todo and budget > 0:
                tokens, budget = seq.todo[:budget], budget - min(budget, len(seq.todo))
            else:
                continue
            for i, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = seq.n_past + i
                batch.seq_id[n][0] = seq.seq_id
                batch.n_seq_id[n] = 1
                batch.logits[n] = False
                n += 1
            if seq.next_token is None:
                seq.todo = seq.todo[len(tokens):]
            seq.next_token = None
            self._advance_cache(seq, tokens)
            if not seq.todo:
                batch.logits[n - 1] = True
                seq.output_index = n - 1
        batch.n_tokens = n
        llm._ctx.decode(llm._batch)
        for seq in running:
            if seq.output_index >= 0:
                self._sample(seq, n_ctx)

    def _advance_cache(self, seq: _Running, tokens: list[int]) -> None:
        """Count the tokens put in the batch; sequence 0 also records them as the Llama's
        cached tokens, so that the single-request path can reuse them."""
        if seq.seq_id == 0:
            llm = self._require()
            llm.input_ids[seq.n_past: seq.n_past + len(tokens)] = tokens
            llm.n_tokens = seq.n_past + len(tokens)
        seq.n_past += len(tokens)

    def _sample(self, seq: _Running, n_ctx: int) -> None:
        """Sample the sequence's next token from its logits in this step's batch."""
        import llama_cpp

        result = seq.request.result
        if result.completion_tokens >= seq.request.sampling.max_tokens:
            self._finish(seq, "length")
            return
        token = llama_cpp.llama_sampler_sample(seq.sampler, self._require()._ctx.ctx,
                                               seq.output_index)
        if result.ttft_s is None:
            result.ttft_s = time.perf_counter() - seq.started
            result.prompt_tokens_per_s = result.prompt_tokens_evaluated / max(
                result.ttft_s, 1e-9)
        finish = self._accept_token(token, result, seq.reply, seq.request.output,
                                    seq.n_past >= n_ctx, seq.output_index)
        if finish is None and result.completion_tokens >= seq.request.sampling.max_tokens:
            finish = "length"
        if finish is not None:
            self._finish(seq, finish)
        else:
            seq.next_token = token


def _cells(running: list[_Running], n_ctx: int) -> int:
    """KV cache cells the running sequences may take by the end of their replies."""
    return sum(min(seq.request.cells, n_ctx) for seq in running)
