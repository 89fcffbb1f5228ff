"""The main window: conversations, a streaming transcript, a composer and a model picker."""

from __future__ import annotations

import logging
import os

import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from slmdesk.chat import ChatService, ReplyWriter
from slmdesk.engine.backend import backend_info
from slmdesk.engine.core import ModelInfo
from slmdesk.engine.params import GenerationResult
from slmdesk.engine.worker import EngineClient, EngineJob
from slmdesk.errors import UserFacingError
from slmdesk.models import check_model_present
from slmdesk.settings import load_settings, save_settings
from slmdesk.store.repositories import Conversation, ModelRecord, ModelRepository
from slmdesk.ui.transcript import TranscriptView

log = logging.getLogger(__name__)


def model_details(m: ModelRecord) -> str:
    """The model's details as shown in its tooltip: file, size, kind, licence."""
    params = f"{m.parameter_count / 1e6:.0f}M parameters" if m.parameter_count else ""
    lines = [
        m.name,
        " · ".join(x for x in (m.architecture, params, m.quantization) if x),
        f"context {m.context_length or '?'} tokens · {m.size_bytes / 1e6:.0f} MB",
        f"licence: {m.licence or 'unknown'}",
        m.path,
    ]
    return "\n".join(line for line in lines if line)


def ready_text(info: ModelInfo) -> str:
    """The model state line once a model is loaded."""
    gpu = f" · {info.offloaded_layers} layers on {info.backend}" if info.offloaded_layers else ""
    return f"ready · ctx {info.n_ctx} · {info.n_threads} threads{gpu}"


class Composer(QPlainTextEdit):
    """Enter sends, Shift+Enter starts a new line."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.setPlaceholderText("Message the model…  (Enter sends, Shift+Enter for a new line)")
        self.setObjectName("composer")

    def keyPressEvent(self, event):  # type: ignore[no-untyped-def]
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self._window.send_requested()
            return
        super().keyPressEvent(event)


class MainWindow(QMainWindow):
    def __init__(self, db: sqlite_utils.Database, engine: EngineClient) -> None:
        super().__init__()
        self.db = db
        self.engine = engine
        self.service = ChatService(db)
        self.models = ModelRepository(db)
        self.conversation: Conversation | None = None
        self.model: ModelRecord | None = None
        self.loaded: ModelInfo | None = None
        self.load_job: EngineJob | None = None
        self.gen_job: EngineJob | None = None
        self.writer: ReplyWriter | None = None
        self.setWindowTitle("slmdesk")
        self.resize(1100, 720)
        self._build()
        self._connect_engine()
        self.refresh_conversations()
        self.refresh_models()
        self.composer.setFocus()

    # layout -------------------------------------------------------------------------
    def _build(self) -> None:
        splitter = QSplitter(self)
        side = QWidget(splitter)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(6, 6, 6, 6)
        self.new_button = QPushButton("New chat", side)
        self.new_button.clicked.connect(self.new_chat)
        self.conversation_list = QListWidget(side)
        self.conversation_list.setObjectName("conversations")
        self.conversation_list.itemSelectionChanged.connect(self._on_conversation_selected)
        side_layout.addWidget(self.new_button)
        side_layout.addWidget(self.conversation_list)

        main = QWidget(splitter)
        layout = QVBoxLayout(main)
        layout.setContentsMargins(6, 6, 6, 6)
        header = QHBoxLayout()
        header.addWidget(QLabel("Model:", main))
        self.model_picker = QComboBox(main)
        self.model_picker.setObjectName("model_picker")
        self.model_picker.setMinimumWidth(320)
        self.model_picker.activated.connect(self._on_model_picked)
        header.addWidget(self.model_picker, 1)
        self.model_state = QLabel("", main)
        header.addWidget(self.model_state)
        layout.addLayout(header)
        self.banner = QLabel("", main)
        self.banner.setObjectName("error_banner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("QLabel { color: #b00020; padding: 4px; }")
        self.banner.hide()
        layout.addWidget(self.banner)
        self.transcript = TranscriptView(main)
        layout.addWidget(self.transcript, 1)
        row = QHBoxLayout()
        self.composer = Composer(self)
        self.composer.setMaximumHeight(120)
        row.addWidget(self.composer, 1)
        self.send_button = QPushButton("Send", main)
        self.send_button.setObjectName("send_button")
        self.send_button.clicked.connect(self.send_requested)
        self.stop_button = QPushButton("Stop", main)
        self.stop_button.setObjectName("stop_button")
        self.stop_button.clicked.connect(self.stop_requested)
        self.stop_button.setEnabled(False)
        row.addWidget(self.send_button)
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        splitter.addWidget(side)
        splitter.addWidget(main)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 840])
        self.setCentralWidget(splitter)

        self.status_model = QLabel("No model", self)
        self.status_speed = QLabel("", self)
        self.status_context = QLabel("", self)
        backend = backend_info()
        self.status_backend = QLabel(
            backend.backend + (" (GPU offload)" if backend.gpu_offload else ""), self
        )
        for w in (self.status_model, self.status_backend, self.status_speed, self.status_context):
            self.statusBar().addPermanentWidget(w)

        new_action = QAction("New chat", self)
        new_action.setShortcut(QKeySequence.StandardKey.New)
        new_action.triggered.connect(self.new_chat)
        self.addAction(new_action)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop_requested)

    def _connect_engine(self) -> None:
        w = self.engine
        w.loading_started.connect(self._on_loading_started)
        w.loaded.connect(self._on_loaded)
        w.load_failed.connect(self._on_load_failed)
        w.prompt_progressed.connect(self._on_prompt_progress)
        w.text_received.connect(self._on_text)
        w.generation_finished.connect(self._on_finished)
        w.generation_failed.connect(self._on_failed)

    # messages to the person ---------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def clear_error(self) -> None:
        self.banner.clear()
        self.banner.hide()

    # conversations ------------------------------------------------------------------
    def refresh_conversations(self) -> None:
        self.conversation_list.blockSignals(True)
        self.conversation_list.clear()
        for c in self.service.chats.list_conversations(limit=500):
            item = QListWidgetItem(c.title)
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            item.setToolTip(f"{c.title}\n{c.updated_at[:16].replace('T', ' ')} UTC")
            self.conversation_list.addItem(item)
            if self.conversation and c.id == self.conversation.id:
                item.setSelected(True)
        self.conversation_list.blockSignals(False)

    def _on_conversation_selected(self) -> None:
        items = self.conversation_list.selectedItems()
        if not items or self.gen_job is not None:
            return
        cid = items[0].data(Qt.ItemDataRole.UserRole)
        self.open_conversation(self.service.chats.get_conversation(cid))

    def open_conversation(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.transcript.show_messages(self.service.chats.messages(conversation.id))
        self.clear_error()

    def new_chat(self) -> None:
        if self.gen_job is not None:
            return
        self.conversation = None
        self.transcript.clear()
        self.conversation_list.clearSelection()
        self.composer.setFocus()

    # models -------------------------------------------------------------------------
    def refresh_models(self) -> None:
        self.model_picker.clear()
        for m in self.models.list():
            missing = "" if os.path.isfile(m.path) else " (file missing)"
            self.model_picker.addItem(f"{m.name}{missing}", m.id)
            self.model_picker.setItemData(
                self.model_picker.count() - 1, model_details(m), Qt.ItemDataRole.ToolTipRole
            )

    def select_model(self, model: ModelRecord) -> None:
        """Load ``model`` on the engine thread (switching from any loaded one)."""
        if self.gen_job is not None:
            self.show_error("Stop the current reply before switching models.")
            return
        try:
            check_model_present(model)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.model = model
        index = self.model_picker.findData(model.id)
        if index >= 0:
            self.model_picker.setCurrentIndex(index)
        self.loaded = None
        self.load_job = self.engine.load(model.path, load_settings(self.db).load_params())
        self._update_controls()

    def _on_model_picked(self, index: int) -> None:
        model_id = self.model_picker.itemData(index)
        if model_id and (self.model is None or model_id != self.model.id):
            self.select_model(self.models.get(model_id))

    def _on_loading_started(self, job_id: int, path: str) -> None:
        self.model_state.setText("Loading…")

    def _on_loaded(self, job_id: int, info: ModelInfo) -> None:
        if self.load_job is None or job_id != self.load_job.id:
            return
        self.load_job = None
        self.loaded = info
        self.clear_error()
        self.model_state.setText(ready_text(info))
        self.status_model.setText(self.model.name if self.model is not None else info.name)
        if self.model is not None:
            settings = load_settings(self.db)
            settings.default_model_id = self.model.id
            save_settings(self.db, settings)
        if info.template_fallback:
            self.show_error(
                "This model's chat template could not be used safely; a generic template "
                "is used instead, so replies may be less accurate."
            )
        self._update_controls()

    def _on_load_failed(self, job_id: int, message: str) -> None:
        if self.load_job is None or job_id != self.load_job.id:
            return
        self.load_job = None
        self.model_state.setText("not loaded")
        self.show_error(message)
        self._update_controls()

    # chatting -----------------------------------------------------------------------
    def _update_controls(self) -> None:
        busy = self.gen_job is not None
        self.send_button.setEnabled(not busy and self.loaded is not None)
        self.stop_button.setEnabled(busy)
        self.model_picker.setEnabled(not busy)
        self.new_button.setEnabled(not busy)

    def send_requested(self) -> None:
        text = self.composer.toPlainText()
        if self.gen_job is not None or not text.strip():
            return
        if self.loaded is None or self.model is None:
            self.show_error("No model is loaded yet. Pick one in the model list.")
            return
        if self.conversation is None:
            self.conversation = self.service.new_conversation(model=self.model)
        try:
            turn = self.service.start_turn(self.conversation, text, model=self.model)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.clear_error()
        self.composer.clear()
        self.conversation = turn.conversation
        self.writer = ReplyWriter(self.service.chats, turn.reply.id)
        self.transcript.add_message("user", text)
        self.transcript.add_message("assistant", "")
        self.gen_job = self.engine.generate(turn.history, turn.sampling)
        self.model_state.setText("Reading prompt…")
        self.refresh_conversations()
        self._update_controls()

    def stop_requested(self) -> None:
        if self.gen_job is not None:
            self.engine.cancel(self.gen_job.id)

    def _on_prompt_progress(self, job_id: int, done: int, total: int) -> None:
        if self.gen_job is not None and job_id == self.gen_job.id and total:
            self.model_state.setText(f"Reading prompt… {100 * done // total}%")

    def _on_text(self, job_id: int, text: str) -> None:
        if self.gen_job is None or job_id != self.gen_job.id or self.writer is None:
            return
        if self.writer.text == "":
            self.model_state.setText("Writing…")
        self.writer.append(text)
        self.transcript.append_text(text)

    def _on_finished(self, job_id: int, result: GenerationResult) -> None:
        if self.gen_job is None or job_id != self.gen_job.id or self.writer is None:
            return
        self.writer.finish(result, model=self.model)
        self._end_generation()
        if result.finish_reason != "stop":
            self.transcript.append_note(result.finish_reason)
        for note in result.notes:
            self.transcript.append_note(note)
        if result.error:
            self.show_error(result.error)
        speed = f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else ""
        ttft = f"first token {result.ttft_s:.2f} s" if result.ttft_s is not None else ""
        self.status_speed.setText(" · ".join(x for x in (speed, ttft) if x))
        if self.loaded is not None:
            used = result.prompt_tokens + result.completion_tokens
            self.status_context.setText(f"used {used} / {self.loaded.n_ctx} tokens")

    def _on_failed(self, job_id: int, message: str) -> None:
        if self.gen_job is None or job_id != self.gen_job.id or self.writer is None:
            return
        self.writer.fail(message)
        self._end_generation()
        self.show_error(message)

    def _end_generation(self) -> None:
        self.gen_job = None
        self.writer = None
        if self.loaded is not None:
            self.model_state.setText(ready_text(self.loaded))
        self._update_controls()
        self.composer.setFocus()

    # shutdown -----------------------------------------------------------------------
    def finish_pending_reply(self) -> None:
        """Called after the engine thread stopped: save whatever reply is left open."""
        if self.writer is not None and self.writer.finished is None:
            self.writer.finish(GenerationResult(finish_reason="cancelled"), model=self.model)
            self.writer = None
            self.gen_job = None
