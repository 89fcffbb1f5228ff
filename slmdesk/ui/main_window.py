"""The main window: a shell that builds the tabs, the model picker, the menus and the status
line, and wires the ModelSession to them (the Chat tab's logic is ui/chat/controller.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import sqlite_utils
from PySide6.QtCore import QByteArray, Qt, QTimer, SignalInstance
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.chat import ChatService
from slmdesk.engine.backend import backend_info
from slmdesk.engine.llama_engine import ModelInfo
from slmdesk.loadguard import LoadGuard
from slmdesk.store.engines import EngineRepository, RemoteModel
from slmdesk.store.models import ModelRecord, ModelRepository
from slmdesk.store.presets import PresetRepository
from slmdesk.store.settings import SettingsRepository
from slmdesk.ui.chat.controller import ChatController, ready_text, remote_ready_text
from slmdesk.ui.chat.page import ChatPage
from slmdesk.ui.classify.view import ClassifyView
from slmdesk.ui.common.labels import ElidedLabel
from slmdesk.ui.common.signals import connect_handlers
from slmdesk.ui.common.widgets import error_banner
from slmdesk.ui.datasets.view import DatasetsView
from slmdesk.ui.engine_thread import EngineClient, LoadJob
from slmdesk.ui.library.view import LibraryView
from slmdesk.ui.model_session import REPLY_RUNNING, ModelSession
from slmdesk.ui.server.engines_dialog import open_engines_dialog
from slmdesk.ui.server.panel import ServerView
from slmdesk.ui.train.window_link import open_train_dialog

log = logging.getLogger(__name__)

UI_STATE_KEY = "ui_state"
NOTICE_MS = 4000


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


class MainWindow(QMainWindow):
    """The tabs (Chat, Classify, Data sets, Models) under one model picker and one banner."""

    def __init__(self, db: sqlite_utils.Database, engine: EngineClient, *,
                 start_downloads: bool = True) -> None:
        super().__init__()
        self._start_downloads = start_downloads
        self.db = db
        self.engine = engine
        self.models = ModelRepository(db)
        # The banner's message about the last load (failed or refused): a new load clears it.
        self._load_message: str | None = None
        # The chosen and loaded model, its loads, the load guard and the idle unload.
        self.session = ModelSession(db, engine, busy=lambda: self.chat.busy, parent=self)
        self.setWindowTitle("slmdesk")
        self.resize(1200, 760)
        self._build()
        self._build_status_bar()
        self._build_menus()
        self._follow_chat()
        self._follow_session()
        self.setAcceptDrops(True)
        self.chat_page.sidebar.refresh()
        self.refresh_models()
        self.chat.new_chat()
        self.restore_ui_state()

    # layout -------------------------------------------------------------------------
    def _build(self) -> None:
        # The header and the banner serve every tab (chat, classify): one model, one engine.
        top = QWidget(self)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(6, 6, 6, 0)
        top_layout.addLayout(self._build_header(top))
        self.banner = error_banner(top, "error_banner")
        top_layout.addWidget(self.banner)

        service = ChatService(self.db)
        self.chat_page = ChatPage(service.chats, PresetRepository(self.db), top)
        self.chat = ChatController(service, self.engine, self.session, self.chat_page, self)
        self.settings_button.toggled.connect(self.chat_page.show_settings)
        self.tabs = QTabWidget(top)
        self.tabs.setObjectName("tabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.chat_page, "Chat")
        self.classify_view = ClassifyView(self.db, self.engine, self.tabs)
        self.classify_view.model_requested.connect(
            lambda model_id: self.select_model(self.models.get(model_id)))
        self.tabs.addTab(self.classify_view, "Classify")
        self.datasets_view = DatasetsView(self.db, self.engine, self.tabs)
        self.datasets_view.train_requested.connect(lambda name: open_train_dialog(self, name))
        self.tabs.addTab(self.datasets_view, "Data sets")
        self.library_view = LibraryView(self.db, self.tabs,
                                        start_downloads=self._start_downloads)
        self.library_view.use_requested.connect(self._on_library_use)
        self.library_view.models_changed.connect(self.refresh_models)
        self.library_view.idle_minutes_changed.connect(lambda _m: self.session.arm_idle_timer())
        self.tabs.addTab(self.library_view, "Models")
        self.server_view = ServerView(self.db, self.session, self.tabs)
        self.tabs.addTab(self.server_view, "Server")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        top_layout.addWidget(self.tabs, 1)
        self.setCentralWidget(top)

        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.chat.stop_requested)
        QShortcut(QKeySequence.StandardKey.Find, self, self.chat.focus_search)
        QShortcut(QKeySequence("Ctrl+,"), self, self.settings_button.toggle)
        QShortcut(QKeySequence("Ctrl+L"), self, self.chat_page.composer.setFocus)

    def _build_header(self, parent: QWidget) -> QHBoxLayout:
        """Model: [picker] state · load progress · Load anyway · Settings."""
        header = QHBoxLayout()
        header.addWidget(QLabel("Model:", parent))
        self.model_picker = QComboBox(parent)
        self.model_picker.setObjectName("model_picker")
        self.model_picker.setMinimumWidth(280)
        self.model_picker.activated.connect(self._on_model_picked)
        header.addWidget(self.model_picker, 1)
        self.model_state = ElidedLabel("", parent)
        self.model_state.setObjectName("model_state")
        header.addWidget(self.model_state)
        self.load_progress = QProgressBar(parent)
        self.load_progress.setRange(0, 0)  # busy indicator while a model loads
        self.load_progress.setMaximumWidth(90)
        self.load_progress.hide()
        header.addWidget(self.load_progress)
        self.load_anyway_button = QPushButton("Load anyway", parent)
        self.load_anyway_button.setObjectName("load_anyway_button")
        self.load_anyway_button.setToolTip(
            "The estimate says this model does not fit in the free memory; try it anyway")
        self.load_anyway_button.clicked.connect(self._load_anyway)
        self.load_anyway_button.hide()
        header.addWidget(self.load_anyway_button)
        self.settings_button = QToolButton(parent)
        self.settings_button.setText("Settings")
        self.settings_button.setCheckable(True)
        self.settings_button.setToolTip("Conversation settings (Ctrl+,)")
        header.addWidget(self.settings_button)
        return header

    def _build_status_bar(self) -> None:
        self.status_model = ElidedLabel("No model", self)
        self.status_backend = ElidedLabel("", self)
        self.status_backend.setObjectName("status_backend")
        # Describing the backend imports llama.cpp (tens of ms): after the first paint.
        QTimer.singleShot(0, self, self._show_backend)
        self.status_speed = ElidedLabel("", self)
        self.status_speed.setObjectName("status_speed")
        self.context_bar = QProgressBar(self)
        self.context_bar.setObjectName("context_bar")
        self.context_bar.setMaximumWidth(260)
        # Its words whole, however many other things the status bar shows.
        self.context_bar.setMinimumWidth(
            self.context_bar.fontMetrics().horizontalAdvance("used 32768 / 32768 tokens") + 24)
        self.context_bar.setTextVisible(True)
        self.context_bar.setRange(0, 1)
        self.context_bar.setValue(0)
        self.context_bar.setFormat("used %v / %m tokens")
        self.status_serving = ElidedLabel("", self)  # "Serving … at …" while the server runs
        self.status_serving.setObjectName("status_serving")
        self.server_view.serving_changed.connect(self.status_serving.setText)
        # A request the server kept in the history shows in the chat list at once.
        self.server_view.control.chat_saved.connect(lambda _id: self.chat_page.sidebar.refresh())
        for w in (self.status_serving, self.status_model, self.status_backend,
                  self.status_speed, self.context_bar):
            self.statusBar().addPermanentWidget(w)

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
        new_action.triggered.connect(self.chat.new_chat)
        file_menu.addAction(new_action)
        self.new_action = new_action
        file_menu.addSeparator()
        files = self.chat.files
        file_menu.addAction("Export as &Markdown…", lambda: files.export_dialog("md", self))
        file_menu.addAction("Export as &JSON…", lambda: files.export_dialog("json", self))
        file_menu.addAction("&Import conversation (JSON)…", self.chat.import_dialog)
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
        settings_menu = self.menuBar().addMenu("&Settings")
        settings_menu.addAction("&Engines…", self.open_engines)

    def open_engines(self) -> None:
        """Settings → Engines…; the model picker follows what its checks find."""
        dialog = open_engines_dialog(self.db, self)
        dialog.checked.connect(lambda _name, _error: self.refresh_models())
        dialog.finished.connect(lambda _result: self.refresh_models())

    def _follow_chat(self) -> None:
        c = self.chat
        c.error_raised.connect(self.show_error)
        c.error_cleared.connect(self.clear_error)
        c.state_changed.connect(self.model_state.setText)
        c.speed_reported.connect(self.status_speed.setText)
        c.context_measured.connect(self._show_context)
        c.title_changed.connect(self.setWindowTitle)
        c.busy_changed.connect(self._on_chat_busy)
        c.busy_refused.connect(lambda text: self.show_error(text, until=c.reply_ended))
        c.reload_requested.connect(self.select_model)
        c.notified.connect(self.show_notice)
        self.chat_page.composer.model_files_dropped.connect(self.import_models)
        welcome = self.chat_page.welcome
        welcome.download_requested.connect(self._download_entry)
        welcome.import_requested.connect(self.library_view.import_dialog)
        welcome.find_requested.connect(self._find_models)

    def _download_entry(self, entry: Any) -> None:
        """The welcome's Download: the same download the Models tab's catalog starts."""
        self.tabs.setCurrentWidget(self.library_view)
        self.library_view.start_download(
            entry.repo_id, entry.filename, revision=entry.revision, display_name=entry.name,
            licence=entry.licence, expected_sha256=entry.sha256)

    def _find_models(self) -> None:
        self.library_view.look_for_models()  # once: before the tab's first showing
        self.tabs.setCurrentWidget(self.library_view)

    def _follow_session(self) -> None:
        s = self.session
        connect_handlers(s, self, "changed", "loading_started", "loaded_now", "load_failed",
                         "refused", "idle_unloaded", prefix="_on_session_")
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
        self.settings_button.setVisible(self.tabs.widget(index) is self.chat_page)

    def _show_context(self, used: int, n_ctx: int) -> None:
        """The status line's context bar: tokens used of the context (empty: no model)."""
        self.context_bar.setRange(0, n_ctx or 1)
        self.context_bar.setValue(min(used, n_ctx))
        # The figure itself, even past the context: a full bar alone hides by how much.
        self.context_bar.setFormat(f"used {used} / {n_ctx} tokens" if n_ctx else "no model")

    def _on_chat_busy(self, busy: bool) -> None:
        self.model_picker.setEnabled(not busy)

    def _update_controls(self) -> None:
        self.chat.update_controls()

    # window state -------------------------------------------------------------------
    def restore_ui_state(self) -> None:
        state = SettingsRepository(self.db).get(UI_STATE_KEY, {}) or {}
        self.restore_ui_state_applied = False  # whether a saved geometry was restored
        try:
            if state.get("geometry"):
                self.restore_ui_state_applied = self.restoreGeometry(
                    QByteArray.fromBase64(state["geometry"].encode()))
            if state.get("splitter"):
                self.chat_page.restoreState(QByteArray.fromBase64(state["splitter"].encode()))
        except (TypeError, ValueError):
            log.warning("ignoring a damaged saved window state")
        self.settings_button.setChecked(bool(state.get("settings_visible", False)))
        self.chat.reopen(state.get("conversation"))

    def save_ui_state(self) -> None:
        SettingsRepository(self.db).set(UI_STATE_KEY, {
            "geometry": bytes(self.saveGeometry().toBase64().data()).decode(),
            "splitter": bytes(self.chat_page.saveState().toBase64().data()).decode(),
            "settings_visible": self.settings_button.isChecked(),
            # The chat on screen opens again at the next start (None: a new chat).
            "conversation": self.chat.conversation.id if self.chat.conversation else None,
        })

    def closeEvent(self, event: QCloseEvent) -> None:
        self.library_view.shutdown()
        self.server_view.shutdown()
        self.chat.close()
        self.save_ui_state()
        self.session.idle_timer.stop()
        super().closeEvent(event)

    def finish_pending_reply(self) -> None:
        """Called after the engine thread stopped: save whatever reply is left open."""
        # No load runs any more; a mark left now would read as a crash at the next start.
        self.load_guard.end()
        self.chat.finish_pending_reply()

    # messages to the person ---------------------------------------------------------
    def show_error(self, text: str, *, until: SignalInstance | None = None) -> None:
        """Show ``text`` in the window's banner; with ``until``, only until that signal says
        its cause is gone (``ErrorBanner.show_error``)."""
        self.banner.show_error(text, until=until)

    def clear_error(self) -> None:
        self.banner.clear_error()

    def show_notice(self, text: str) -> None:
        """A passing confirmation in the status line: it goes by itself and, being the
        status bar's temporary message, never widens the window."""
        self.statusBar().showMessage(text, NOTICE_MS)

    # models -------------------------------------------------------------------------
    def refresh_models(self) -> None:
        self.model_picker.clear()
        for m in self.models.list():
            missing = "" if os.path.isfile(m.path) else " (file missing)"
            self.model_picker.addItem(f"{m.name}{missing}", m.id)
            self.model_picker.setItemData(
                self.model_picker.count() - 1, model_details(m), Qt.ItemDataRole.ToolTipRole
            )
        # The models of the checked remote engines, after the local ones.
        self.remote_models = {m.key: m for m in EngineRepository(self.db).remote_models()}
        for remote in self.remote_models.values():
            self.model_picker.addItem(remote.label, remote.key)
            self.model_picker.setItemData(
                self.model_picker.count() - 1,
                f"{remote.name}\non the remote engine {remote.engine_name} at "
                f"{remote.base_url}\nNothing is loaded on this computer.",
                Qt.ItemDataRole.ToolTipRole)
        if self.session.remote is not None:
            self.model_picker.setCurrentIndex(
                self.model_picker.findData(self.session.remote.model.key))
        elif self.model is not None:
            self.model_picker.setCurrentIndex(self.model_picker.findData(self.model.id))

    def select_remote_model(self, model: RemoteModel) -> None:
        """Chat with a model on a remote engine (``ModelSession.select_remote``)."""
        self.load_anyway_button.hide()
        if self.session.select_remote(model):
            self.clear_error()
            self.model_state.setText(remote_ready_text(model))
            self.status_model.setText(model.label)
            self.chat.model_loaded()

    def select_model(self, model: ModelRecord, *, automatic: bool = False) -> None:
        """Load ``model`` on the engine thread (``ModelSession.select``); a refusal is shown."""
        self.load_anyway_button.hide()
        self.session.select(model, automatic=automatic)
        self._update_controls()

    def _load_anyway(self) -> None:
        self.load_anyway_button.hide()
        self.session.load_anyway()
        self._update_controls()

    def _on_session_refused(self, message: str, can_force: bool) -> None:
        if self.session.model is not None and self.session.loaded is None \
                and self.session.load_job is None:
            self.model_state.setText("not loaded")
        # "Stop the current reply…" goes when the reply ends.
        self.show_error(message, until=self.chat.reply_ended if message == REPLY_RUNNING
                        else None)
        self._load_message = message
        self.load_anyway_button.setVisible(can_force)
        self.refresh_models()

    def _on_session_changed(self) -> None:
        s = self.session
        self.library_view.set_loaded_model(
            s.model.id if s.model is not None and s.loaded is not None else None)
        chosen = s.remote.model.key if s.remote is not None else s.model.id if s.model else None
        if chosen is not None:
            index = self.model_picker.findData(chosen)
            if index >= 0 and index != self.model_picker.currentIndex():
                self.model_picker.setCurrentIndex(index)
        self.chat.update_context_bar()
        self._update_controls()

    def _on_library_use(self, model_id: str) -> None:
        self.select_model(self.models.get(model_id))
        self.tabs.setCurrentWidget(self.chat_page)

    def _on_session_idle_unloaded(self, minutes: int) -> None:
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
        remote = self.remote_models.get(model_id)
        if remote is not None:
            if self.session.remote is None or remote != self.session.remote.model:
                self.select_remote_model(remote)
            return
        if model_id and (self.model is None or model_id != self.model.id or self.loaded is None
                         or self.session.remote is not None):
            self.select_model(self.models.get(model_id))

    def _on_session_loading_started(self, path: str) -> None:
        self.model_state.setText(f"Loading {Path(path).name}…")
        self.load_progress.show()
        if self._load_message is not None and self.banner.text() == self._load_message:
            self.clear_error()  # about an earlier load; this one reports for itself

    def _on_session_loaded_now(self, info: ModelInfo) -> None:
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
        self.chat.model_loaded()

    def _on_session_load_failed(self, message: str) -> None:
        self.chat.send_after_load = False
        self.load_progress.hide()
        self.model_state.setText("not loaded")
        self.show_error(message)
        self._load_message = message
        self._update_controls()
