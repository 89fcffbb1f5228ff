"""The main window: conversations, the chat, its settings, the model picker, the status line."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import sqlite_utils
from PySide6.QtCore import QByteArray, QRunnable, Qt, QThreadPool, QTimer, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.chat import ChatService, ReplyWriter, Turn
from slmdesk.engine.backend import backend_info
from slmdesk.engine.llama_engine import ModelInfo
from slmdesk.engine.params import GenerationResult, SamplingParams
from slmdesk.errors import UserFacingError
from slmdesk.loadguard import LoadGuard
from slmdesk.settings import load_settings
from slmdesk.store.repositories import (
    Conversation,
    ModelRecord,
    ModelRepository,
    PresetRepository,
    SettingsRepository,
)
from slmdesk.transfer import export_json, export_markdown, import_json
from slmdesk.ui.chat.view import ChatView
from slmdesk.ui.classify_view import ClassifyView
from slmdesk.ui.chat.conversations import ConversationSidebar
from slmdesk.ui.datasets_view import DatasetsView
from slmdesk.ui.engine_thread import ChatJob, EngineClient, LoadJob, bind
from slmdesk.ui.library.view import LibraryView
from slmdesk.ui.model_session import ModelSession
from slmdesk.ui.chat.save_example import SaveExampleDialog
from slmdesk.ui.chat.settings_panel import SettingsPanel
from slmdesk.ui.common.widgets import error_banner

log = logging.getLogger(__name__)

UI_STATE_KEY = "ui_state"
DROP_LIMIT_BYTES = 5_000_000
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".csv", ".json", ".log", ".py"}


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


class _WriteFile(QRunnable):
    """Writes an export off the GUI thread."""

    def __init__(self, path: str, text: str, done: Any) -> None:
        super().__init__()
        self.path, self.text, self.done = path, text, done

    def run(self) -> None:
        try:
            Path(self.path).write_text(self.text, encoding="utf-8")
            self.done(None)
        except OSError as exc:
            self.done(f"Cannot write {self.path}: {exc.strerror or exc}")


class Composer(QPlainTextEdit):
    """Enter sends, Shift+Enter starts a new line; a dropped text file inserts its text."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.setObjectName("composer")
        self.setPlaceholderText("Message the model…  (Enter sends, Shift+Enter for a new line)")
        self.setAcceptDrops(True)

    def keyPressEvent(self, event: Any) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self._window.send_requested()
            return
        super().keyPressEvent(event)

    def canInsertFromMimeData(self, source: Any) -> bool:
        return bool(source.hasUrls()) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: Any) -> None:
        files = [u.toLocalFile() for u in source.urls() if u.isLocalFile()] if (
            source.hasUrls()) else []
        if not files:
            super().insertFromMimeData(source)
            return
        models = [f for f in files if f.lower().endswith(".gguf")]
        if models:
            self._window.import_models(models)
        for name in files:
            if name not in models:
                self.insert_file(name)

    def insert_file(self, name: str) -> None:
        path = Path(name)
        if path.suffix.lower() not in TEXT_SUFFIXES:
            self._window.show_error(f"{path.name}: only text files (.txt, .md, …) can be dropped.")
            return
        try:
            if path.stat().st_size > DROP_LIMIT_BYTES:
                self._window.show_error(f"{path.name} is larger than 5 MB.")
                return
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            self._window.show_error(f"Cannot read {path.name}: {exc.strerror or exc}")
            return
        self.insertPlainText(text)


class MainWindow(QMainWindow):
    def __init__(self, db: sqlite_utils.Database, engine: EngineClient, *,
                 start_downloads: bool = True) -> None:
        super().__init__()
        self._start_downloads = start_downloads
        self._send_after_load = False
        self.db = db
        self.engine = engine
        self.service = ChatService(db)
        self.chats = self.service.chats
        self.models = ModelRepository(db)
        # The chosen and loaded model, its loads, the load guard and the idle unload.
        self.session = ModelSession(db, engine, busy=lambda: self.gen_job is not None,
                                    parent=self)
        self.presets = PresetRepository(db)
        self.conversation: Conversation | None = None
        self.gen_job: ChatJob | None = None
        self.writer: ReplyWriter | None = None
        self.turn: Turn | None = None
        self.last_context_used: int | None = None
        self._stream_base = 0
        self._stream_tokens = self._stream_counted = 0
        self._last_bar_update = 0.0
        self.setWindowTitle("slmdesk")
        self.resize(1200, 760)
        self._build()
        self._build_menus()
        self._follow_session()
        self.setAcceptDrops(True)
        self.sidebar.refresh()
        self.refresh_models()
        self.new_chat()
        self.restore_ui_state()

    # layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self.splitter = QSplitter(self)
        self.splitter.setObjectName("main_splitter")
        self.splitter.setChildrenCollapsible(False)
        self.sidebar = ConversationSidebar(self.chats, self.splitter)
        self.sidebar.conversation_activated.connect(self._on_conversation_activated)
        self.sidebar.search_hit_activated.connect(self.open_search_hit)
        self.sidebar.new_chat_requested.connect(self.new_chat)
        self.sidebar.conversations_changed.connect(self._on_conversations_changed)

        # The header and the banner serve every tab (chat, classify): one model, one engine.
        top = QWidget(self)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(6, 6, 6, 0)
        main = top
        header = QHBoxLayout()
        header.addWidget(QLabel("Model:", main))
        self.model_picker = QComboBox(main)
        self.model_picker.setObjectName("model_picker")
        self.model_picker.setMinimumWidth(280)
        self.model_picker.activated.connect(self._on_model_picked)
        header.addWidget(self.model_picker, 1)
        self.model_state = QLabel("", main)
        self.model_state.setObjectName("model_state")
        header.addWidget(self.model_state)
        self.load_progress = QProgressBar(main)
        self.load_progress.setRange(0, 0)  # busy indicator while a model loads
        self.load_progress.setMaximumWidth(90)
        self.load_progress.hide()
        header.addWidget(self.load_progress)
        self.load_anyway_button = QPushButton("Load anyway", main)
        self.load_anyway_button.setObjectName("load_anyway_button")
        self.load_anyway_button.setToolTip(
            "The estimate says this model does not fit in the free memory; try it anyway")
        self.load_anyway_button.clicked.connect(self._load_anyway)
        self.load_anyway_button.hide()
        header.addWidget(self.load_anyway_button)
        self.settings_button = QToolButton(main)
        self.settings_button.setText("Settings")
        self.settings_button.setCheckable(True)
        self.settings_button.setToolTip("Conversation settings (Ctrl+,)")
        header.addWidget(self.settings_button)
        top_layout.addLayout(header)

        self.banner = error_banner(main, "error_banner")
        top_layout.addWidget(self.banner)

        main = QWidget(self.splitter)
        layout = QVBoxLayout(main)
        layout.setContentsMargins(6, 6, 6, 6)
        self.chat_view = ChatView(main)
        self.chat_view.regenerate_requested.connect(self.regenerate)
        self.chat_view.edit_submitted.connect(self.edit_and_resend)
        self.chat_view.branch_requested.connect(self.switch_branch)
        self.chat_view.link_requested.connect(self.open_link)
        self.chat_view.rating_changed.connect(self.rate_reply)
        self.chat_view.save_example_requested.connect(self.save_example_dialog)
        layout.addWidget(self.chat_view, 1)

        row = QHBoxLayout()
        self.composer = Composer(self)
        self.composer.setMaximumHeight(140)
        self._context_timer = QTimer(self)
        self._context_timer.setSingleShot(True)
        self._context_timer.setInterval(200)
        self.composer.textChanged.connect(self._context_timer.start)
        row.addWidget(self.composer, 1)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send", main)
        self.send_button.setObjectName("send_button")
        self.send_button.clicked.connect(self.send_requested)
        self.stop_button = QPushButton("Stop", main)
        self.stop_button.setObjectName("stop_button")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addLayout(buttons)
        layout.addLayout(row)
        self.fit_note = QLabel("", main)
        self.fit_note.setObjectName("fit_note")
        self.fit_note.setWordWrap(True)
        self.fit_note.hide()
        layout.addWidget(self.fit_note)

        self.settings_panel = SettingsPanel(self.presets, self.splitter)
        self.settings_panel.settings_changed.connect(self._on_settings_changed)
        self.settings_panel.hide()
        self.settings_button.toggled.connect(self.settings_panel.setVisible)

        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(main)
        self.splitter.addWidget(self.settings_panel)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, 700, 300])
        self.tabs = QTabWidget(top)
        self.tabs.setObjectName("tabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.splitter, "Chat")
        self.classify_view = ClassifyView(self.db, self.engine, self.tabs)
        self.classify_view.model_requested.connect(
            lambda model_id: self.select_model(self.models.get(model_id)))
        self.tabs.addTab(self.classify_view, "Classify")
        self.datasets_view = DatasetsView(self.db, self.engine, self.tabs)
        self.tabs.addTab(self.datasets_view, "Data sets")
        self.library_view = LibraryView(self.db, self.tabs,
                                        start_downloads=self._start_downloads)
        self.library_view.use_requested.connect(self._on_library_use)
        self.library_view.models_changed.connect(self.refresh_models)
        self.library_view.idle_minutes_changed.connect(lambda _m: self.session.arm_idle_timer())
        self.tabs.addTab(self.library_view, "Models")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        top_layout.addWidget(self.tabs, 1)
        self.setCentralWidget(top)

        self.status_model = QLabel("No model", self)
        self.status_backend = QLabel("", self)
        self.status_backend.setObjectName("status_backend")
        # Describing the backend imports llama.cpp (tens of ms): after the first paint.
        QTimer.singleShot(0, self, self._show_backend)
        self.status_speed = QLabel("", self)
        self.status_speed.setObjectName("status_speed")
        self.context_bar = QProgressBar(self)
        self.context_bar.setObjectName("context_bar")
        self.context_bar.setMaximumWidth(260)
        self.context_bar.setTextVisible(True)
        self.context_bar.setRange(0, 1)
        self.context_bar.setValue(0)
        self.context_bar.setFormat("used %v / %m tokens")
        for w in (self.status_model, self.status_backend, self.status_speed, self.context_bar):
            self.statusBar().addPermanentWidget(w)

        self._context_timer.timeout.connect(self.update_context_bar)

        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop_requested)
        QShortcut(QKeySequence.StandardKey.Find, self, self.focus_search)
        QShortcut(QKeySequence("Ctrl+,"), self, self.settings_button.toggle)
        QShortcut(QKeySequence("Ctrl+L"), self, self.composer.setFocus)

    def _show_backend(self) -> None:
        backend = backend_info()
        # Short in the status bar (the CPU variant by name), the whole story in the tooltip.
        self.status_backend.setText(
            backend.backend + (" (GPU offload)" if backend.gpu_offload else "")
            + (f" · {backend.cpu_variant}" if backend.cpu_variant else "")
            + (" (GPU build could not start)" if backend.fallback_reason else ""))
        self.status_backend.setToolTip(
            f"llama.cpp: {backend.label}"
            + (f"\n{backend.fallback_reason}" if backend.fallback_reason else ""))

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        new_action = QAction("&New chat", self)
        new_action.setShortcut(QKeySequence.StandardKey.New)
        new_action.triggered.connect(self.new_chat)
        file_menu.addAction(new_action)
        self.new_action = new_action
        file_menu.addSeparator()
        file_menu.addAction("Export as &Markdown…", lambda: self.export_dialog("md"))
        file_menu.addAction("Export as &JSON…", lambda: self.export_dialog("json"))
        file_menu.addAction("&Import conversation (JSON)…", self.import_dialog)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        toggle = QAction("Conversation &settings", self)
        toggle.setCheckable(True)
        toggle.toggled.connect(self.settings_button.setChecked)
        self.settings_button.toggled.connect(toggle.setChecked)
        view_menu.addAction(toggle)

    def _follow_session(self) -> None:
        s = self.session
        s.changed.connect(self._on_session_changed)
        s.loading_started.connect(self._on_loading_started)
        s.loaded_now.connect(self._on_loaded)
        s.load_failed.connect(self._on_load_failed)
        s.refused.connect(self._on_refused)
        s.idle_unloaded.connect(self._on_idle_unloaded)
        # The tabs that work with the model follow the session themselves.
        s.follow(self.classify_view.set_model)
        s.follow(self.datasets_view.set_model)

    # the model session, as the window's own (tests and other tabs read these) ----------
    @property
    def model(self) -> ModelRecord | None:
        return self.session.model

    @property
    def loaded(self) -> ModelInfo | None:
        return self.session.loaded

    @property
    def load_job(self) -> LoadJob | None:
        return self.session.load_job

    @property
    def load_guard(self) -> LoadGuard:
        return self.session.load_guard

    @property
    def last_load_s(self) -> float | None:
        return self.session.last_load_s

    def _on_tab_changed(self, index: int) -> None:
        self.settings_button.setVisible(self.tabs.widget(index) is self.splitter)

    # window state -------------------------------------------------------------------
    def restore_ui_state(self) -> None:
        state = SettingsRepository(self.db).get(UI_STATE_KEY, {}) or {}
        self.restore_ui_state_applied = False  # whether a saved geometry was restored
        try:
            if state.get("geometry"):
                self.restore_ui_state_applied = self.restoreGeometry(
                    QByteArray.fromBase64(state["geometry"].encode()))
            if state.get("splitter"):
                self.splitter.restoreState(QByteArray.fromBase64(state["splitter"].encode()))
        except (TypeError, ValueError):
            log.warning("ignoring a damaged saved window state")
        self.settings_button.setChecked(bool(state.get("settings_visible", False)))

    def save_ui_state(self) -> None:
        SettingsRepository(self.db).set(UI_STATE_KEY, {
            "geometry": bytes(self.saveGeometry().toBase64().data()).decode(),
            "splitter": bytes(self.splitter.saveState().toBase64().data()).decode(),
            "settings_visible": self.settings_button.isChecked(),
        })

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings_panel.flush()
        self.library_view.shutdown()
        if self.gen_job is not None:
            # Stop the reply; the app saves it as cancelled during shutdown.
            self.gen_job.cancel()
        self.save_ui_state()
        self.sidebar.purge_deleted()
        # The database is closed right after the window: no timer may reach it later.
        self._context_timer.stop()
        self.session.idle_timer.stop()
        super().closeEvent(event)

    # messages to the person ---------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def clear_error(self) -> None:
        self.banner.clear()
        self.banner.hide()

    def focus_search(self) -> None:
        self.sidebar.search_box.setFocus()
        self.sidebar.search_box.selectAll()

    def open_link(self, url: QUrl) -> None:
        # Only http(s)/mailto reach here, and only after the person clicked.
        QDesktopServices.openUrl(url)

    # conversations ------------------------------------------------------------------
    def _on_conversations_changed(self) -> None:
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
            self.sidebar.set_current(self.conversation.id if self.conversation else None)
            self.show_error("Stop the current reply before opening another chat.")
            return
        self.open_conversation(conversation_id)

    def open_conversation(self, conversation_id: str, focus_message: str | None = None) -> None:
        self.settings_panel.flush()
        self.conversation = self.chats.get_conversation(conversation_id)
        path = self.chats.path(conversation_id)
        siblings = {m.id: [s.id for s in self.chats.siblings(m.id)] for m in path}
        self.chat_view.show_path(path, siblings)
        self.settings_panel.load(
            self.conversation.system_prompt, SamplingParams.from_json(self.conversation.params)
        )
        self.sidebar.set_current(conversation_id)
        self.last_context_used = None
        self.clear_error()
        if focus_message:
            self.chat_view.scroll_to_message(focus_message)
        self.update_context_bar()
        self.setWindowTitle(f"{self.conversation.title} — slmdesk")

    def open_search_hit(self, conversation_id: str, message_id: str) -> None:
        if self.gen_job is not None:
            self.show_error("Stop the current reply before opening another chat.")
            return
        path_ids = {m.id for m in self.chats.path(conversation_id)}
        if message_id not in path_ids:
            self.chats.switch_branch(message_id)  # the hit is on another branch: show it
        self.open_conversation(conversation_id, focus_message=message_id)

    def new_chat(self) -> None:
        if self.gen_job is not None:
            return
        self.settings_panel.flush()
        self.conversation = None
        self.chat_view.clear()
        self.sidebar.set_current(None)
        settings = load_settings(self.db)
        self.settings_panel.load(settings.system_prompt, settings.sampling)
        self.last_context_used = None
        self.setWindowTitle("slmdesk")
        self.update_context_bar()
        self.composer.setFocus()

    def _on_settings_changed(self, system_prompt: str, sampling: SamplingParams) -> None:
        if self.conversation is not None:
            self.conversation = self.service.update_settings(
                self.conversation, system_prompt=system_prompt, sampling=sampling
            )
        self.update_context_bar()

    # models -------------------------------------------------------------------------
    def refresh_models(self) -> None:
        self.model_picker.clear()
        for m in self.models.list():
            missing = "" if os.path.isfile(m.path) else " (file missing)"
            self.model_picker.addItem(f"{m.name}{missing}", m.id)
            self.model_picker.setItemData(
                self.model_picker.count() - 1, model_details(m), Qt.ItemDataRole.ToolTipRole
            )
        if self.model is not None:
            self.model_picker.setCurrentIndex(self.model_picker.findData(self.model.id))

    def select_model(self, model: ModelRecord, *, automatic: bool = False) -> None:
        """Load ``model`` on the engine thread (``ModelSession.select``); a refusal is shown."""
        self.load_anyway_button.hide()
        self.session.select(model, automatic=automatic)
        self._update_controls()

    def _load_anyway(self) -> None:
        self.load_anyway_button.hide()
        self.session.load_anyway()
        self._update_controls()

    def _on_refused(self, message: str, can_force: bool) -> None:
        if self.session.model is not None and self.session.loaded is None \
                and self.session.load_job is None:
            self.model_state.setText("not loaded")
        self.show_error(message)
        self.load_anyway_button.setVisible(can_force)
        self.refresh_models()

    def _on_session_changed(self) -> None:
        s = self.session
        self.library_view.loaded_model_id = (
            s.model.id if s.model is not None and s.loaded is not None else None)
        if s.model is not None:
            index = self.model_picker.findData(s.model.id)
            if index >= 0 and index != self.model_picker.currentIndex():
                self.model_picker.setCurrentIndex(index)
        self.update_context_bar()
        self._update_controls()

    def _on_library_use(self, model_id: str) -> None:
        self.select_model(self.models.get(model_id))
        self.tabs.setCurrentWidget(self.splitter)

    def _on_idle_unloaded(self, minutes: int) -> None:
        self.model_state.setText(f"unloaded after {minutes} min idle · loads again when needed")

    # dropping model files ------------------------------------------------------------------
    @staticmethod
    def _gguf_urls(event: Any) -> list[str]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls()
                if u.isLocalFile() and u.toLocalFile().lower().endswith(".gguf")]

    def dragEnterEvent(self, event: Any) -> None:
        if self._gguf_urls(event):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dropEvent(self, event: Any) -> None:
        paths = self._gguf_urls(event)
        if not paths:
            super().dropEvent(event)
            return
        event.acceptProposedAction()
        self.import_models(paths)

    def import_models(self, paths: list[str]) -> None:
        """Validate and register dropped .gguf files in place, then show them."""
        self.tabs.setCurrentWidget(self.library_view)
        self.library_view.import_paths(paths)

    def _on_model_picked(self, index: int) -> None:
        model_id = self.model_picker.itemData(index)
        if model_id and (self.model is None or model_id != self.model.id or self.loaded is None):
            self.select_model(self.models.get(model_id))

    def _on_loading_started(self, path: str) -> None:
        self.model_state.setText(f"Loading {Path(path).name}…")
        self.load_progress.show()

    def _on_loaded(self, info: ModelInfo) -> None:
        self.load_progress.hide()
        self.clear_error()
        self.model_state.setText(f"{ready_text(info)} · loaded in {self.last_load_s or 0:.1f} s")
        self.status_model.setText(self.model.name if self.model is not None else info.name)
        if self.model is not None:
            self.library_view.refresh_installed(only_if_shown_before=True)
        if info.template_fallback:
            self.show_error(
                "This model's chat template could not be used safely; a generic template "
                "is used instead, so replies may be less accurate."
            )
        self.last_context_used = None
        self.update_context_bar()
        self._update_controls()
        if self._send_after_load:
            self._send_after_load = False
            self.send_requested()

    def _on_load_failed(self, message: str) -> None:
        self._send_after_load = False
        self.load_progress.hide()
        self.model_state.setText("not loaded")
        self.show_error(message)
        self._update_controls()

    # context ------------------------------------------------------------------------
    def update_context_bar(self) -> None:
        """Tokens the conversation plus the composer's text would use, against the context."""
        if self.loaded is None:
            self.context_bar.setRange(0, 1)
            self.context_bar.setValue(0)
            self.fit_note.hide()
            return
        n_ctx = self.loaded.n_ctx
        history = self._history_for_count()
        draft = self.composer.toPlainText()
        if draft.strip():
            history.append({"role": "user", "content": draft})
        used = self.engine.measure_prompt(history) if history else 0
        if used is None:
            return  # the engine is swapping models: keep the last figure
        if self.writer is not None:
            used = max(used, (self.last_context_used or 0))
        self.context_bar.setRange(0, n_ctx)
        self.context_bar.setValue(min(used, n_ctx))
        reserve = min(self.settings_panel.sampling().max_tokens, n_ctx // 4)
        budget = n_ctx - reserve
        if draft.strip():
            alone = self.engine.measure_prompt([{"role": "user", "content": draft}]) or 0
            if alone > budget:
                self.fit_note.setText(
                    f"This message is about {alone} tokens; the model's context holds {n_ctx} "
                    f"({reserve} kept for the reply). Shorten it or raise the context size."
                )
                self.fit_note.setStyleSheet("QLabel { color: #b00020; }")
                self.fit_note.show()
                return
            if used > budget:
                self.fit_note.setText(
                    "The conversation no longer fits the context: the oldest messages will be "
                    "left out of what the model sees."
                )
                self.fit_note.setStyleSheet("QLabel { color: #b26a00; }")
                self.fit_note.show()
                return
        self.fit_note.hide()

    def _history_for_count(self) -> list[dict[str, str]]:
        from slmdesk.chat import engine_history

        if self.conversation is None:
            prompt = self.settings_panel.system_prompt_text()
            return [{"role": "system", "content": prompt}] if prompt else []
        return engine_history(self.conversation, self.chats.path(self.conversation.id))

    # chatting -----------------------------------------------------------------------
    def _update_controls(self) -> None:
        busy = self.gen_job is not None
        self.send_button.setEnabled(not busy and self.loaded is not None)
        self.stop_button.setEnabled(busy)
        self.model_picker.setEnabled(not busy)
        self.sidebar.new_button.setEnabled(not busy)
        self.new_action.setEnabled(not busy)
        self.chat_view.set_busy(busy)

    def _ready_to_generate(self) -> bool:
        if self.gen_job is not None:
            return False
        if self.loaded is None or self.model is None:
            self.show_error("No model is loaded yet. Pick one in the model list.")
            return False
        return True

    def send_requested(self) -> None:
        text = self.composer.toPlainText()
        if text.strip() and self.session.idle_unloaded_model and self.model is not None and (
                self.load_job is None and self.gen_job is None):
            # The model was unloaded while idle: load it again, then send.
            self._send_after_load = True
            self.select_model(self.model)
            return
        if not text.strip() or not self._ready_to_generate():
            return
        assert self.model is not None
        self.settings_panel.flush()
        try:
            if self.conversation is None:
                self.conversation = self.service.new_conversation(
                    model=self.model,
                    system_prompt=self.settings_panel.system_prompt_text(),
                    sampling=self.settings_panel.sampling(),
                )
            turn = self.service.start_turn(
                self.conversation, text, model=self.model, sampling=self.settings_panel.sampling()
            )
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.composer.clear()
        self._start(turn)

    def regenerate(self, message_id: str) -> None:
        if self.conversation is None or not self._ready_to_generate():
            return
        assert self.model is not None
        try:
            turn = self.service.regenerate(
                self.conversation, message_id, model=self.model,
                sampling=self.settings_panel.sampling(),
            )
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self._start(turn)

    def edit_and_resend(self, message_id: str, text: str) -> None:
        if self.conversation is None or not self._ready_to_generate():
            return
        assert self.model is not None
        try:
            turn = self.service.edit_and_resend(
                self.conversation, message_id, text, model=self.model,
                sampling=self.settings_panel.sampling(),
            )
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self._start(turn)

    def switch_branch(self, message_id: str) -> None:
        if self.conversation is None or self.gen_job is not None:
            return
        self.chats.switch_branch(message_id)
        self.open_conversation(self.conversation.id)

    def rate_reply(self, message_id: str, rating: int) -> None:
        message = self.chats.set_rating(message_id, rating or None)
        widget = self.chat_view.widget_for(message_id)
        if widget is not None:
            widget.message = message

    def example_messages(self, message_id: str) -> list[dict[str, str]]:
        """The exchange up to and including this reply, system prompt first."""
        from slmdesk.chat import engine_history

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
            conversation_id=self.conversation.id, rating=rating, parent=self,
        )
        dialog.open()
        return dialog

    def _start(self, turn: Turn) -> None:
        self.clear_error()
        self.turn = turn
        self.conversation = turn.conversation
        self.open_conversation(turn.conversation.id)
        self.writer = ReplyWriter(self.chats, turn.reply.id)
        self._stream_base = self.engine.measure_prompt(turn.history) or 0
        self._stream_tokens = self._stream_counted = 0
        self._last_bar_update = 0.0
        self.gen_job = self.engine.generate(turn.history, turn.sampling)
        bind(self.gen_job, prompt_progressed=self._on_prompt_progress,
             text_arrived=self._on_text, finished=self._on_finished, failed=self._on_failed)
        self.model_state.setText("Reading prompt…")
        self.sidebar.refresh()
        self.chat_view.scroll_to_bottom()
        self._update_controls()

    def stop_requested(self) -> None:
        if self.gen_job is not None:
            self.gen_job.cancel()

    def _current(self, job: ChatJob) -> bool:
        """Whether ``job`` is the reply being written (not one that ended already)."""
        return job is self.gen_job and self.writer is not None

    def _on_prompt_progress(self, job: ChatJob, done: int, total: int) -> None:
        if self._current(job) and total:
            self.model_state.setText(f"Reading prompt… {100 * done // total}%")

    def _on_text(self, job: ChatJob, text: str) -> None:
        if not self._current(job):
            return
        assert self.writer is not None
        if self.writer.text == "":
            self.model_state.setText("Writing…")
        self.writer.append(text)
        widget = self.chat_view.widget_for(self.writer.message_id)
        if widget is not None:
            widget.set_streaming_text(self.writer.text)
        now = time.monotonic()
        if self.loaded is not None and now - self._last_bar_update > 0.25:
            self._last_bar_update = now
            # Count only what arrived since the last update, and stop once the bar is full:
            # tokenizing the whole reply on the GUI thread took seconds per update for a
            # 1 MB reply and froze the window.
            n_ctx = self.loaded.n_ctx
            if self._stream_base + self._stream_tokens < n_ctx:
                new = self.writer.text[self._stream_counted:]
                self._stream_counted += len(new)
                new_tokens = self.engine.measure_text(new[: n_ctx * 32])
                if new_tokens is not None:
                    self._stream_tokens += new_tokens
                    self.context_bar.setRange(0, n_ctx)
                    self.context_bar.setValue(min(self._stream_base + self._stream_tokens, n_ctx))

    def _on_finished(self, job: ChatJob, result: GenerationResult) -> None:
        if not self._current(job):
            return
        assert self.writer is not None
        try:
            message = self.writer.finish(result, model=self.model)
        except UserFacingError as exc:
            # The disk is full: the reply stays on screen, and what reached the disk is
            # kept (marked interrupted) at the next start.
            self._end_generation()
            self.show_error(exc.message)
            return
        self._end_generation()
        widget = self.chat_view.widget_for(message.id)
        if widget is not None:
            widget.update_message(message, [s.id for s in self.chats.siblings(message.id)])
        if result.error:
            self.show_error(result.error)
        speed = f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else ""
        ttft = f"first token {result.ttft_s:.2f} s" if result.ttft_s is not None else ""
        self.status_speed.setText(" · ".join(x for x in (speed, ttft) if x))
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
        widget = self.chat_view.widget_for(finished.id)
        if widget is not None:
            widget.update_message(finished)
        self.show_error(message)

    def _end_generation(self) -> None:
        self.gen_job = None
        self.writer = None
        self.turn = None
        if self.loaded is not None:
            self.model_state.setText(ready_text(self.loaded))
        self._update_controls()
        self.sidebar.refresh()
        if self.conversation is not None:
            try:
                self.chats.get_conversation(self.conversation.id)
            except UserFacingError:
                self.new_chat()  # it was deleted while the reply streamed
        self.composer.setFocus()

    # import / export ----------------------------------------------------------------
    def export_text(self, fmt: str) -> str:
        assert self.conversation is not None
        if fmt == "json":
            return json.dumps(export_json(self.db, self.conversation.id), indent=2,
                              ensure_ascii=False) + "\n"
        return export_markdown(self.db, self.conversation.id) + "\n"

    def export_to(self, path: str, fmt: str) -> None:
        """Build the export here (the GUI thread owns the database), write it elsewhere."""
        text = self.export_text(fmt)

        def done(error: str | None) -> None:
            if error:
                QTimer.singleShot(0, self, lambda: self.show_error(error))

        QThreadPool.globalInstance().start(_WriteFile(path, text, done))

    def export_dialog(self, fmt: str) -> None:
        if self.conversation is None:
            self.show_error("Open a conversation to export it.")
            return
        suffix = "json" if fmt == "json" else "md"
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in self.conversation.title)
        path, _ = QFileDialog.getSaveFileName(
            self, "Export conversation", f"{safe.strip() or 'conversation'}.{suffix}",
            "JSON (*.json)" if fmt == "json" else "Markdown (*.md)")
        if path:
            self.export_to(path, fmt)

    def import_file(self, path: str) -> None:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            conv = import_json(self.db, data)
        except (OSError, ValueError) as exc:
            self.show_error(f"Cannot import {Path(path).name}: {exc}")
            return
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.sidebar.refresh()
        self.open_conversation(conv.id)

    def import_dialog(self) -> None:
        if self.gen_job is not None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import conversation", "", "JSON (*.json)")
        if path:
            self.import_file(path)

    # shutdown -----------------------------------------------------------------------
    def finish_pending_reply(self) -> None:
        """Called after the engine thread stopped: save whatever reply is left open."""
        # No load runs any more; a mark left now would read as a crash at the next start.
        self.load_guard.end()
        if self.writer is not None and self.writer.finished is None:
            self.writer.finish(GenerationResult(finish_reason="cancelled"), model=self.model)
            self.writer = None
            self.gen_job = None
