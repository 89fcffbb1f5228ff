"""The Chat tab's context measure: tokens the chat and the draft would use, the fit note,
and whether the draft may be sent (a part of ChatController, kept apart for its size)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slmdesk.chat import engine_history
from slmdesk.ui.common.tones import tone_style

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance

    from slmdesk.store.chats import ChatRepository, Conversation
    from slmdesk.ui.chat.page import ChatPage
    from slmdesk.ui.engine_thread import EngineClient
    from slmdesk.ui.model_session import ModelSession


class ContextMeter:
    """Mixed into ChatController, whose state it reads (the page, the engine, the chat)."""

    if TYPE_CHECKING:
        page: ChatPage
        engine: EngineClient
        session: ModelSession
        chats: ChatRepository
        conversation: Conversation | None
        writer: object | None
        last_context_used: int | None
        draft_fits: bool
        context_measured: SignalInstance

        def update_controls(self) -> None: ...

    def update_context_bar(self) -> None:
        """Tokens the conversation plus the composer's text would use, against the context.

        One estimate for everything (the bar, the note, Send): the engine's own count of the
        rendered prompt. A message that cannot fit even with every older message left out
        (system prompt + message + the room kept for the reply) disables Send.
        """
        # A remote model's tokens are not counted here: no bar, no overflow check.
        loaded = self.session.loaded if self.session.remote is None else None
        fit_note = self.page.fit_note
        if loaded is None:
            self.context_measured.emit(0, 0)
            self._set_draft_fits(True)
            fit_note.hide()
            return
        n_ctx = loaded.n_ctx
        history = self._history_for_count()
        draft = self.page.composer.toPlainText()
        if draft.strip():
            history.append({"role": "user", "content": draft})
        used = self.engine.measure_prompt(history) if history else 0
        if used is None:
            return  # the engine is swapping models: keep the last figure
        if self.writer is not None:
            used = max(used, (self.last_context_used or 0))
        self.context_measured.emit(used, n_ctx)
        overflow = self.draft_overflow(draft) if draft.strip() else None
        self._set_draft_fits(overflow is None)
        if overflow is not None:
            fit_note.setText(overflow)
            fit_note.setStyleSheet(tone_style("error"))
            fit_note.show()
            return
        if draft.strip() and used > n_ctx - self._reply_reserve(n_ctx):
            fit_note.setText(
                "The conversation no longer fits the context: the oldest messages will be "
                "left out of what the model sees."
            )
            fit_note.setStyleSheet(tone_style("warn"))
            fit_note.show()
            return
        fit_note.hide()

    def _reply_reserve(self, n_ctx: int) -> int:
        """The room the engine keeps for the reply (as LlamaEngine.stream_chat does)."""
        return min(max(1, self.page.settings_panel.sampling().max_tokens), n_ctx // 4)

    def draft_overflow(self, draft: str) -> str | None:
        """Why ``draft`` cannot be sent (it cannot fit the context), or None when it can.

        The count is the smallest prompt the engine could build for it: the system prompt
        and the message, every older message left out; with a new chat that is the same
        figure the context bar shows.
        """
        loaded = self.session.loaded if self.session.remote is None else None
        if loaded is None or not draft.strip():
            return None
        n_ctx = loaded.n_ctx
        prompt = self.page.settings_panel.system_prompt_text() if self.conversation is None \
            else (self.conversation.system_prompt or "")
        smallest = ([{"role": "system", "content": prompt}] if prompt else []) + [
            {"role": "user", "content": draft}]
        needed = self.engine.measure_prompt(smallest)
        reserve = self._reply_reserve(n_ctx)
        if needed is None or needed <= n_ctx - reserve:
            return None
        return (f"This message needs about {needed} tokens; the model's context holds "
                f"{n_ctx} ({reserve} kept for the reply). Shorten it or raise the context "
                "size.")

    def _set_draft_fits(self, fits: bool) -> None:
        if fits != self.draft_fits:
            self.draft_fits = fits
            self.update_controls()

    def _history_for_count(self) -> list[dict[str, str]]:
        if self.conversation is None:
            prompt = self.page.settings_panel.system_prompt_text()
            return [{"role": "system", "content": prompt}] if prompt else []
        return engine_history(self.conversation, self.chats.path(self.conversation.id))
