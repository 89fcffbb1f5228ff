"""The chat turn's lifecycle behind the Chat tab: send, regenerate, edit and resend, the
streamed reply, switching conversations and branches, and the context measure."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from slmdesk.chat import ChatModel, ChatService, ReplyWriter, Turn, engine_history
from slmdesk.engine.llama_engine import ModelInfo
from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.errors import UserFacingError
from slmdesk.settings import load_settings
from slmdesk.store.chats import Conversation
from slmdesk.store.engines import RemoteModel
from slmdesk.ui.chat.context_meter import ContextMeter
from slmdesk.ui.chat.model_defaults import ModelDefaultsBinding
from slmdesk.ui.chat.page import ChatPage
from slmdesk.ui.chat.save_example import SaveExampleDialog
from slmdesk.ui.chat.transfer import ConversationFiles
from slmdesk.ui.common.model_messages import NO_MODEL_LOADED
from slmdesk.ui.engine_thread import ChatJob, EngineClient, bind
from slmdesk.ui.model_session import ModelSession


def ready_text(info: ModelInfo) -> str:
    """The model state line once a model is loaded."""
    gpu = f" · {info.offloaded_layers} layers on {info.backend}" if info.offloaded_layers else ""
    return f"ready · ctx {info.n_ctx} · {info.n_threads} threads{gpu}"


def remote_ready_text(model: RemoteModel) -> str:
    """The model state line while a model on a remote engine is chosen."""
    return f"ready · remote, on {model.engine_name} · nothing loaded here"


STOP_FIRST = "Stop the current reply before opening another chat."


class ChatController(ContextMeter, QObject):
    """Drives a ChatPage: one conversation open, at most one reply streaming into it.

    The window shows what this reports: errors (``error_raised``/``error_cleared``), the
    model state line (``state_changed``), the reply's speed, the context used, the title.
    """

    error_raised = Signal(str)
    error_cleared = Signal()
    state_changed = Signal(str)  # the model state line: "Reading prompt…", "Writing…", ready
    speed_reported = Signal(str)  # "12.3 tok/s · first token 0.40 s"
    context_measured = Signal(int, int)  # tokens used, context size (0: no model loaded)
    title_changed = Signal(str)
    busy_changed = Signal(bool)  # a reply is being written (True) or not (False), again
    reply_ended = Signal()  # the reply being written ended (finished, stopped or failed)
    busy_refused = Signal(str)  # not done while a reply is written: shown until it ends
    reload_requested = Signal(object)  # ModelRecord: load again (unloaded while idle)
    notified = Signal(str)  # a passing confirmation ("Message copied"): the status line

    def __init__(self, service: ChatService, engine: EngineClient, session: ModelSession,
                 page: ChatPage, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db = db = service.db
        self.engine = engine
        self.session = session
        self.page = page
        self.service = service
        self.chats = service.chats  # the sidebar's own, too (ChatPage)
        self.conversation: Conversation | None = None
        self.gen_job: ChatJob | None = None
        self._was_busy = False  # as update_controls last saw it: tells when a reply ends
        self.writer: ReplyWriter | None = None
        self.turn: Turn | None = None
        self.last_context_used: int | None = None
        self.send_after_load = False
        self.draft_fits = True  # the composer's text fits the context (else Send is off)
        self._stream_base = 0
        self._stream_tokens = self._stream_counted = 0
        self._last_bar_update = 0.0
        self.files = ConversationFiles(db, lambda: self.conversation, self)
        self.files.failed.connect(self.show_error)
        self.files.imported.connect(self._on_imported)
        self.files.exported.connect(
            lambda path: self.notified.emit(f"Exported to {Path(path).name}"))
        self._context_timer = QTimer(self)
        self._context_timer.setSingleShot(True)
        self._context_timer.setInterval(200)
        self._context_timer.timeout.connect(self.update_context_bar)
        # The chosen model's defaults: a new chat starts with them (settings panel).
        self.model_defaults = ModelDefaultsBinding(
            db, session, page.settings_panel, is_new_chat=lambda: self.conversation is None,
            notify=self.notified.emit, parent=self)
        self._connect_page()

    def _connect_page(self) -> None:
        page = self.page
        page.sidebar.conversation_activated.connect(self._on_conversation_activated)
        page.sidebar.search_hit_activated.connect(self.open_search_hit)
        page.sidebar.new_chat_requested.connect(self.new_chat)
        page.sidebar.conversations_changed.connect(self._on_conversations_changed)
        view = page.chat_view
        view.regenerate_requested.connect(self.regenerate)
        view.continue_requested.connect(self.continue_reply)
        view.delete_requested.connect(self.delete_message)
        view.edit_submitted.connect(self.edit_and_resend)
        view.branch_requested.connect(self.switch_branch)
        view.link_requested.connect(self.open_link)
        view.rating_changed.connect(self.rate_reply)
        view.save_example_requested.connect(self.save_example_dialog)
        view.copied.connect(self.notified)
        page.composer.send_requested.connect(self.send_requested)
        page.composer.drop_refused.connect(self.show_error)
        page.composer.textChanged.connect(self._context_timer.start)
        page.send_button.clicked.connect(self.send_requested)
        page.stop_button.clicked.connect(self.stop_requested)
        page.settings_panel.settings_changed.connect(self._on_settings_changed)

    @property
    def busy(self) -> bool:
        """Whether a reply is being written."""
        return self.gen_job is not None

    @property
    def chat_model(self) -> ChatModel | None:
        """The model the next reply comes from: a remote one when chosen, else the local."""
        remote = self.session.remote
        return remote.model if remote is not None else self.session.model

    def _ready_text(self) -> str | None:
        if self.session.remote is not None:
            return remote_ready_text(self.session.remote.model)
        return ready_text(self.session.loaded) if self.session.loaded is not None else None

    def show_error(self, text: str) -> None:
        self.error_raised.emit(text)

    def clear_error(self) -> None:
        self.error_cleared.emit()

    def focus_search(self) -> None:
        self.page.sidebar.search_box.setFocus()
        self.page.sidebar.search_box.selectAll()

    def open_link(self, url: QUrl) -> None:
        # Only http(s)/mailto reach here, and only after the person clicked.
        QDesktopServices.openUrl(url)

    def close(self) -> None:
        """The window closes: keep the settings, stop the reply, stop the timers."""
        self.page.settings_panel.flush()
        if self.gen_job is not None:
            # Stop the reply; the app saves it as cancelled during shutdown.
            self.gen_job.cancel()
        self.page.sidebar.purge_deleted()
        # The database is closed right after the window: no timer may reach it later.
        self._context_timer.stop()

    # conversations ------------------------------------------------------------------
    def _on_conversations_changed(self) -> None:
        if self.turn is not None and self.turn.conversation.id != (
                self.conversation.id if self.conversation else None):
            try:
                self.chats.get_conversation(self.turn.conversation.id)
            except UserFacingError:
                self.stop_requested()  # the chat a reply streams into, off screen, was deleted
        if self.conversation is not None:
            try:
                self.conversation = self.chats.get_conversation(self.conversation.id)
            except UserFacingError:
                # Deleted while open. A reply still streaming into it is stopped, and the
                # window leaves the chat when that reply has ended (see _end_generation).
                self.stop_requested()
                self.new_chat()

    def _on_conversation_activated(self, conversation_id: str) -> None:
        if self.gen_job is not None:
            self.page.sidebar.set_current(self.conversation.id if self.conversation else None)
            self.busy_refused.emit(STOP_FIRST)
            return
        self.open_conversation(conversation_id)

    def open_conversation(self, conversation_id: str, focus_message: str | None = None) -> None:
        page = self.page
        page.settings_panel.flush()
        self.conversation = self.chats.get_conversation(conversation_id)
        path = self.chats.path(conversation_id)
        siblings = {m.id: [s.id for s in self.chats.siblings(m.id)] for m in path}
        page.chat_view.show_path(path, siblings)
        page.settings_panel.load(
            self.conversation.system_prompt, SamplingParams.from_json(self.conversation.params)
        )
        page.sidebar.set_current(conversation_id)
        self._show_welcome(False)
        self.last_context_used = None
        self.clear_error()
        if focus_message:
            page.chat_view.scroll_to_message(focus_message)
        self.update_context_bar()
        self.title_changed.emit(f"{self.conversation.title} — slmdesk")

    def reopen(self, conversation_id: object) -> None:
        """Open the chat that was on screen when the app last closed, if it is still there."""
        if not isinstance(conversation_id, str) or self.gen_job is not None:
            return
        try:
            self.open_conversation(conversation_id)
        except UserFacingError:
            self.new_chat()  # deleted since, or a damaged id: start with a new chat

    def open_search_hit(self, conversation_id: str, message_id: str) -> None:
        if self.gen_job is not None:
            self.busy_refused.emit(STOP_FIRST)
            return
        path_ids = {m.id for m in self.chats.path(conversation_id)}
        if message_id not in path_ids:
            self.chats.switch_branch(message_id)  # the hit is on another branch: show it
        self.open_conversation(conversation_id, focus_message=message_id)

    def new_chat(self) -> None:
        """Show an empty chat. A reply still streaming goes on in its own chat, saved as
        it grows (ReplyWriter); only its view is left."""
        page = self.page
        page.settings_panel.flush()
        self.conversation = None
        page.chat_view.clear()
        page.sidebar.set_current(None)
        self.model_defaults.apply_to_new_chat()
        self.last_context_used = None
        self.title_changed.emit("slmdesk")
        self.update_context_bar()
        self._show_welcome(not self.chats.list_conversations())
        page.composer.setFocus()

    def _show_welcome(self, show: bool) -> None:
        """The first start's welcome, while no chat exists yet."""
        welcome = self.page.welcome
        if show and welcome.isHidden():
            welcome.recommend_for(load_settings(self.db).max_context)
        welcome.setVisible(show)

    def _on_settings_changed(self, system_prompt: str, sampling: SamplingParams) -> None:
        if self.conversation is not None:
            self.conversation = self.service.update_settings(
                self.conversation, system_prompt=system_prompt, sampling=sampling
            )
        self.update_context_bar()

    def import_dialog(self) -> None:
        if self.gen_job is None:
            self.files.import_dialog(self.page.window())

    def _on_imported(self, conversation_id: str) -> None:
        self.page.sidebar.refresh()
        self.open_conversation(conversation_id)

    # the model ----------------------------------------------------------------------
    def model_loaded(self) -> None:
        """The session loaded a model: measure again; send what waited for the load."""
        self.last_context_used = None
        self.update_context_bar()
        self.update_controls()
        if self.send_after_load:
            self.send_after_load = False
            self.send_requested()

    # chatting -----------------------------------------------------------------------
    def update_controls(self) -> None:
        busy = self.gen_job is not None
        page = self.page
        ready = self.session.loaded is not None or self.session.remote is not None
        page.send_button.setEnabled(not busy and ready and self.draft_fits)
        page.stop_button.setEnabled(busy)
        page.chat_view.set_busy(busy)
        was_busy, self._was_busy = self._was_busy, busy
        self.busy_changed.emit(busy)
        if was_busy and not busy:
            self.reply_ended.emit()

    def _ready_to_generate(self) -> bool:
        if self.gen_job is not None:
            return False
        if self.session.remote is None and (
                self.session.loaded is None or self.session.model is None):
            self.show_error(NO_MODEL_LOADED)  # the window clears it when a model loads
            return False
        return True

    def send_requested(self) -> None:
        text = self.page.composer.toPlainText()
        session = self.session
        if text.strip() and session.idle_unloaded_model and session.model is not None and (
                session.remote is None and session.load_job is None and self.gen_job is None):
            # The model was unloaded while idle: load it again, then send.
            self.send_after_load = True
            self.reload_requested.emit(session.model)
            return
        if not text.strip() or not self._ready_to_generate():
            return
        overflow = self.draft_overflow(text)
        if overflow is not None:
            # Never start a chat whose reply can only fail (issue 16, defect 9).
            self.update_context_bar()
            self.show_error(overflow)
            return
        model = self.chat_model
        assert model is not None
        panel = self.page.settings_panel
        panel.flush()
        try:
            if self.conversation is None:
                self.conversation = self.service.new_conversation(
                    model=model,
                    system_prompt=panel.system_prompt_text(),
                    sampling=panel.sampling(),
                )
            turn = self.service.start_turn(
                self.conversation, text, model=model, sampling=panel.sampling()
            )
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.page.composer.clear()
        self._start(turn)

    def _turn_in_conversation(self, begin: Callable[..., Turn], *args: str) -> None:
        """Start a turn in the open chat: ``begin(conversation, *args, model=, sampling=)``
        is one of ChatService's regenerate / continue_reply / edit_and_resend."""
        if self.conversation is None or not self._ready_to_generate():
            return
        model = self.chat_model
        assert model is not None
        try:
            turn = begin(self.conversation, *args, model=model,
                         sampling=self.page.settings_panel.sampling())
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self._start(turn)

    def regenerate(self, message_id: str) -> None:
        self._turn_in_conversation(self.service.regenerate, message_id)

    def continue_reply(self, message_id: str) -> None:
        """Go on writing a stopped or cut-off reply, in the same message."""
        self._turn_in_conversation(self.service.continue_reply, message_id)

    def confirm_delete(self, count_below: int) -> bool:
        """Ask before deleting a message (and ``count_below`` messages under it)."""
        below = f" and the {count_below} message(s) after it on this branch" \
            if count_below else ""
        answer = QMessageBox.question(
            self.page.window(), "Delete message",
            f"Delete this message{below}? Other versions are kept. This cannot be undone.")
        return answer == QMessageBox.StandardButton.Yes

    def delete_message(self, message_id: str) -> None:
        """Delete one message and its branch below it, after asking."""
        if self.conversation is None or self.gen_job is not None:
            return
        path = [m.id for m in self.chats.path(self.conversation.id)]
        below = len(path) - path.index(message_id) - 1 if message_id in path else 0
        if not self.confirm_delete(below):
            return
        try:
            self.service.delete_message(self.conversation, message_id)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.open_conversation(self.conversation.id)
        self.notified.emit("Message deleted")

    def edit_and_resend(self, message_id: str, text: str) -> None:
        self._turn_in_conversation(self.service.edit_and_resend, message_id, text)

    def switch_branch(self, message_id: str) -> None:
        if self.conversation is None or self.gen_job is not None:
            return
        self.chats.switch_branch(message_id)
        self.open_conversation(self.conversation.id)

    def rate_reply(self, message_id: str, rating: int) -> None:
        message = self.chats.set_rating(message_id, rating or None)
        widget = self.page.chat_view.widget_for(message_id)
        if widget is not None:
            widget.message = message

    def example_messages(self, message_id: str) -> list[dict[str, str]]:
        """The exchange up to and including this reply, system prompt first."""
        assert self.conversation is not None
        path = self.chats.path_to(message_id)
        return engine_history(self.conversation, path)

    def save_example_dialog(self, message_id: str) -> SaveExampleDialog | None:
        if self.conversation is None:
            return None
        from slmdesk.store.datasets import DatasetRepository

        rating = self.chats.get_message(message_id).metadata.get("rating")
        dialog = SaveExampleDialog(
            DatasetRepository(self.db), self.example_messages(message_id),
            conversation_id=self.conversation.id, rating=rating, parent=self.page.window(),
        )
        dialog.open()
        return dialog

    # the streamed reply ---------------------------------------------------------------
    def _start(self, turn: Turn) -> None:
        self.clear_error()
        self.turn = turn
        self.conversation = turn.conversation
        self.open_conversation(turn.conversation.id)
        self.writer = ReplyWriter(self.chats, turn.reply.id, continued=turn.continued,
                                  continued_tokens=turn.continued_tokens)
        remote = self.session.choice.remote_engine
        # A remote model's tokens cannot be counted here (the local tokenizer is another's).
        self._stream_base = 0 if remote else (self.engine.measure_prompt(turn.history) or 0)
        self._stream_tokens = self._stream_counted = 0
        self._last_bar_update = 0.0
        self.gen_job = self.engine.generate(turn.history, turn.sampling,
                                            continue_from=turn.continued, remote=remote)
        bind(self.gen_job, prompt_progressed=self._on_prompt_progress,
             text_arrived=self._on_text, finished=self._on_finished, failed=self._on_failed)
        self.state_changed.emit("Reading prompt…")
        self.page.sidebar.refresh()
        self.page.chat_view.scroll_to_bottom()
        self.update_controls()

    def stop_requested(self) -> None:
        if self.gen_job is not None:
            self.gen_job.cancel()

    def _current(self, job: ChatJob) -> bool:
        """Whether ``job`` is the reply being written (not one that ended already)."""
        return job is self.gen_job and self.writer is not None

    def _showing_reply(self) -> bool:
        """Whether the chat on screen is the one the reply streams into."""
        return self.turn is not None and self.conversation is not None and (
            self.conversation.id == self.turn.conversation.id)

    def _on_prompt_progress(self, job: ChatJob, done: int, total: int) -> None:
        if self._current(job) and total:
            self.state_changed.emit(f"Reading prompt… {100 * done // total}%")

    def _on_text(self, job: ChatJob, text: str) -> None:
        if not self._current(job):
            return
        assert self.writer is not None
        if self.writer.text == "":
            self.state_changed.emit("Writing…")
        self.writer.append(text)
        widget = self.page.chat_view.widget_for(self.writer.message_id)
        if widget is not None:
            widget.set_streaming_text(self.writer.text)
        now = time.monotonic()
        loaded = self.session.loaded if job.remote is None else None
        if loaded is not None and now - self._last_bar_update > 0.25:
            self._last_bar_update = now
            # Count only what arrived since the last update, and stop once the bar is full:
            # tokenizing the whole reply on the GUI thread took seconds per update for a
            # 1 MB reply and froze the window.
            n_ctx = loaded.n_ctx
            if self._stream_base + self._stream_tokens < n_ctx:
                new = self.writer.text[self._stream_counted:]
                self._stream_counted += len(new)
                new_tokens = self.engine.measure_text(new[: n_ctx * 32])
                if new_tokens is not None:
                    self._stream_tokens += new_tokens
                    if self._showing_reply():
                        self.context_measured.emit(
                            self._stream_base + self._stream_tokens, n_ctx)

    def _on_finished(self, job: ChatJob, result: GenerationResult) -> None:
        if not self._current(job):
            return
        assert self.writer is not None
        try:
            message = self.writer.finish(result, model=self.chat_model)
        except UserFacingError as exc:
            # The disk is full: the reply stays on screen, and what reached the disk is
            # kept (marked interrupted) at the next start.
            self._end_generation()
            self.show_error(exc.message)
            return
        self._end_generation()
        widget = self.page.chat_view.widget_for(message.id)
        if widget is not None:
            widget.update_message(message, [s.id for s in self.chats.siblings(message.id)])
        if result.error:
            self.show_error(result.error)
        speed = f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else ""
        ttft = f"first token {result.ttft_s:.2f} s" if result.ttft_s is not None else ""
        self.speed_reported.emit(" · ".join(x for x in (speed, ttft) if x))
        if self.conversation is not None and self.conversation.id == message.conversation_id:
            self.last_context_used = result.prompt_tokens + result.completion_tokens
        self.update_context_bar()

    def _on_failed(self, job: ChatJob, message: str) -> None:
        if not self._current(job):
            return
        assert self.writer is not None
        try:
            finished = self.writer.fail(message)
        except UserFacingError as exc:
            self._end_generation()
            self.show_error(f"{message} {exc.message}")
            return
        self._end_generation()
        widget = self.page.chat_view.widget_for(finished.id)
        if widget is not None:
            widget.update_message(finished)
        self.show_error(message)

    def _end_generation(self) -> None:
        self.gen_job = None
        self.writer = None
        self.turn = None
        ready = self._ready_text()
        if ready is not None:
            self.state_changed.emit(ready)
        self.update_controls()
        self.page.sidebar.refresh()
        if self.conversation is not None:
            try:
                self.chats.get_conversation(self.conversation.id)
            except UserFacingError:
                self.new_chat()  # it was deleted while the reply streamed
        self.page.composer.setFocus()

    def finish_pending_reply(self) -> None:
        """Called after the engine thread stopped: save whatever reply is left open."""
        if self.writer is not None and self.writer.finished is None:
            self.writer.finish(GenerationResult(finish_reason="cancelled"),
                               model=self.chat_model)
            self.writer = None
            self.gen_job = None
