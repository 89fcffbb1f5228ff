"""Embeddings for the llama.cpp engine: mean-pooled, normalised hidden states of texts.

Plain Python (no Qt); one concern of ``slmdesk.engine.llama_engine.LlamaEngine``.
"""

from __future__ import annotations

from collections.abc import Sequence

from slmdesk.engine.llama_state import LlamaState
from slmdesk.errors import ContextOverflowError


class LlamaEmbeddings(LlamaState):
    """Turns texts into vectors with the loaded model."""

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """Mean-pooled, L2-normalised hidden states of each text, and the tokens read.

        A chat model has no pooling of its own: the context is switched to output
        embeddings, each text is decoded from an empty cache with every position as an
        output, and the per-token states are averaged (an embedding model's own pooling
        is used where it has one). The cache is empty afterwards.
        """
        import llama_cpp
        import numpy as np

        llm = self._require()
        ctx = llm._ctx.ctx
        n_embd = int(llama_cpp.llama_model_n_embd(llm._model.model))
        pooled = llama_cpp.llama_pooling_type(ctx) != llama_cpp.LLAMA_POOLING_TYPE_NONE
        vectors: list[list[float]] = []
        total = 0
        llama_cpp.llama_set_embeddings(ctx, True)
        try:
            for text in texts:
                tokens = list(llm.tokenize(text.encode("utf-8"), add_bos=self._add_bos,
                                           special=False))
                if not tokens or len(tokens) > llm.n_ctx():
                    raise ContextOverflowError(
                        f"A text to embed is {len(tokens)} tokens; the model's context holds "
                        f"{llm.n_ctx()}."
                    )
                total += len(tokens)
                self.clear_cache()
                acc = np.zeros(n_embd, dtype=np.float64)
                for _start, size in self._decode_every_position(tokens):
                    if pooled:
                        continue
                    for j in range(size):
                        ptr = llama_cpp.llama_get_embeddings_ith(ctx, j)
                        acc += np.ctypeslib.as_array(ptr, shape=(n_embd,))
                if pooled:
                    ptr = llama_cpp.llama_get_embeddings_seq(ctx, 0)
                    acc = np.ctypeslib.as_array(ptr, shape=(n_embd,)).astype(np.float64)
                norm = float(np.linalg.norm(acc))
                vectors.append((acc / norm if norm > 0 else acc).tolist())
        finally:
            llama_cpp.llama_set_embeddings(ctx, False)
            self.clear_cache()
        return vectors, total

