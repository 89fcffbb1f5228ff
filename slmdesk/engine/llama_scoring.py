"""Scoring for the llama.cpp engine: log-probabilities of continuations, the fingerprint.

Plain Python (no Qt); one concern of ``slmdesk.engine.llama_engine.LlamaEngine``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from slmdesk.engine.fingerprint import REFERENCE_TEXT, Fingerprint
from slmdesk.engine.llama_state import Cancelled, LlamaState
from slmdesk.errors import ContextOverflowError


def _log_softmax_at(row: Any, tokens: list[int]) -> list[float]:
    """log P(token) for each of ``tokens`` from one row of logits, in float64."""
    import numpy as np

    row64 = row.astype(np.float64)
    top = float(row64.max())
    lse = top + float(np.log(np.exp(row64 - top).sum()))
    return [float(row64[t]) - lse for t in tokens]



class LlamaScoring(LlamaState):
    """Reads log-probabilities from the model: label scores and the weights' fingerprint."""

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
        with self._abortable(cancel):
            self._decode_prefix(tokens[:start], cancel)
            return self._hidden_rows(tokens, start, cancel)

    def _hidden_rows(self, tokens: list[int], start: int, cancel: threading.Event) -> Any:
        """Decode ``tokens[start:]`` with embeddings on; one hidden-state row per token."""
        import llama_cpp
        import numpy as np

        llm = self._require()
        n_embd = int(llama_cpp.llama_model_n_embd(llm._model.model))
        ctx = llm._ctx.ctx
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
                    rows.append(np.ctypeslib.as_array(ptr, shape=(n_embd,)).astype(np.float64))
                llm.input_ids[first : first + len(chunk)] = chunk
                llm.n_tokens = first + len(chunk)
        finally:
            llama_cpp.llama_set_embeddings(ctx, False)
            # Cells of an unfinished chunk go, so the cache is input_ids[:n_tokens].
            llm._ctx.kv_cache_seq_rm(0, llm.n_tokens, -1)
        return np.stack(rows)

    def _decode_prefix(self, prefix: list[int], cancel: threading.Event) -> Any:
        """Bring the KV cache to exactly ``prefix``; return the last position's logits."""
        import llama_cpp
        import numpy as np

        llm = self._require()
        # Decode at least the last prefix token: its logits predict the first target token,
        # and logits are not kept for tokens that came from the cache.
        self._decode_in_slices(self._reuse_cached_prefix(prefix), cancel)
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
            for start, size in self._decode_every_position(tokens):
                for j in range(size):
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

