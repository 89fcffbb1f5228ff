"""Prompts for the llama.cpp engine: render the chat template, tokenize, fit the context.

Plain Python (no Qt); one concern of ``slmdesk.engine.llama_engine.LlamaEngine``.
"""

from __future__ import annotations

from collections.abc import Sequence

from slmdesk.engine.llama_state import ChatMessage, LlamaState
from slmdesk.errors import ContextOverflowError, ModelNotLoadedError, TemplateError


class LlamaPrompts(LlamaState):
    """Turns messages and text into prompt tokens for the loaded model."""

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

    def render(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        """The prompt text of ``messages`` in the model's chat template (opening the
        assistant's turn unless ``add_generation_prompt`` is False)."""
        if self._template is None:
            raise ModelNotLoadedError("No model is loaded.")
        return self._template.render(messages, add_generation_prompt=add_generation_prompt)

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

