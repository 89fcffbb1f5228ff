"""The Server tab: start and stop the local OpenAI-compatible server, its address, token and
browser origins, the log of the requests it answered, and snippets to call it."""

from __future__ import annotations

import socket

import sqlite_utils
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from slmdesk.server.config import DEFAULT_HOST, generate_token
from slmdesk.ui.common.tab_frame import (
    ButtonSpec,
    add_push_buttons,
    check_box,
    line_edit,
    push_button,
    status_label,
    tab_frame,
)
from slmdesk.ui.model_session import ModelSession
from slmdesk.ui.server.control import NO_MODEL, ServerControl
from slmdesk.ui.server.panel_settings import load_panel_settings, save_panel_settings
from slmdesk.ui.server.request_log import RequestLogModel
from slmdesk.ui.server.snippets import curl_snippet, openai_snippet
from slmdesk.ui.server.tables import row_table

LOG_POLL_MS = 500
SNIPPET_HEIGHT = 130  # px: the five lines of a snippet and a scroll bar
STATE_TEXT = {"stopped": "Stopped", "starting": "Starting…", "stopping": "Stopping…",
              "running": "Running; choose a model in the model picker to serve it"}


class ServerView(QWidget):
    """The Server tab over a ``ServerControl``; ``serving_changed(text)`` says what the window's
    status line should show ("" when the server is stopped)."""

    serving_changed = Signal(str)

    def __init__(self, db: sqlite_utils.Database, session: ModelSession,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.settings = load_panel_settings(db)
        self.control = ServerControl(session, self)
        left, right = QWidget(self), QWidget(self)
        self.banner, _splitter = tab_frame(self, "server", [left, right], [380, 620])
        self._build_controls(left)
        self._build_activity(right)
        self.control.state_changed.connect(self._on_state_changed)
        # "Choose a model first" goes once the picker has one.
        self.control.start_failed.connect(lambda message: self.banner.show_error(
            message, until=session.changed if message == NO_MODEL else None))
        session.changed.connect(self._update_texts)
        self.log_timer = QTimer(self)
        self.log_timer.setInterval(LOG_POLL_MS)
        self.log_timer.timeout.connect(self.refresh_log)
        self._on_state_changed(self.control.state)

    # layout (declarative) ----------------------------------------------------------------
    def _build_controls(self, column: QWidget) -> None:
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.start_button = push_button(
            "Start server", "", column, name="server_start_button", clicked=self.toggle_server)
        top.addWidget(self.start_button)
        self.state_label = status_label(column, "server_state")
        top.addWidget(self.state_label, 1)
        layout.addLayout(top)

        box = QGroupBox("Settings", column)
        form = QFormLayout(box)
        self.port_spin = QSpinBox(box)
        self.port_spin.setObjectName("server_port")
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText("any free port")
        self.port_spin.setValue(self.settings.port)
        self.port_spin.valueChanged.connect(self._save)
        form.addRow("Port:", self.port_spin)
        self.network_check = check_box(
            box, "Allow other machines on the network", "server_allow_network",
            checked=self.settings.allow_network, toggled=self._on_network_toggled,
            tip="Listen on every address (0.0.0.0) instead of this machine only (127.0.0.1). "
            "Other machines must then send the token.")
        form.addRow(self.network_check)
        self.token_edit = line_edit(box, "server_token", text=self.settings.token,
                                    placeholder="none: anyone on this machine may call it")
        self.token_edit.setReadOnly(True)
        form.addRow("Token:", self.token_edit)
        tokens = QHBoxLayout()
        self.new_token_button, self.copy_token_button, self.remove_token_button = (
            add_push_buttons(
                tokens, box,
                ButtonSpec("New token", "Generate a random token; the old one stops working "
                           "at once (the server restarts)", "server_new_token", self.new_token),
                ButtonSpec("Copy", clicked=lambda: QGuiApplication.clipboard().setText(
                    self.token_edit.text())),
                ButtonSpec("No token", "Accept requests without a token (this machine only)",
                           "server_remove_token", self.remove_token)))
        form.addRow("", tokens)
        self.cors_edit = line_edit(
            box, "server_cors", text=self.settings.cors_origins,
            placeholder="e.g. http://localhost:3000",
            tip="Web pages from these origins (comma-separated) may call the server from a "
            "browser; any other page gets 403 naming this setting.")
        self.cors_edit.editingFinished.connect(self._save)
        form.addRow("Browser origins (CORS):", self.cors_edit)
        self.keep_chats_check = check_box(
            box, "Keep API conversations in the chat history", "server_keep_chats",
            checked=self.settings.keep_chats, toggled=lambda _on: self._save(),
            tip="Store each chat request and its reply as a conversation (titled 'API: …'); a "
            "follow-up that repeats an earlier conversation goes on in it. Off: nothing said "
            "through the API is kept.")
        form.addRow(self.keep_chats_check)
        layout.addWidget(box)
        note = QLabel("The server serves the model chosen in the window, on the window's "
                      "engine: the window's chats and the server's requests take turns.",
                      column)
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addStretch(1)

    def _build_activity(self, column: QWidget) -> None:
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(QLabel("Requests", column), 1)
        header.addWidget(push_button("Clear", "", column, clicked=self.clear_log))
        layout.addLayout(header)
        self.log_model = RequestLogModel(self)
        self.log_view = row_table(column, self.log_model, "server_request_log", 2)
        self._size_log_columns()
        layout.addWidget(self.log_view, 1)
        self.snippet_tabs = QTabWidget(column)
        self.snippet_tabs.setObjectName("server_snippets")
        self.python_snippet = self._snippet_box("server_snippet_python")
        self.curl_snippet = self._snippet_box("server_snippet_curl")
        self.snippet_tabs.addTab(self.python_snippet, "Python (openai)")
        self.snippet_tabs.addTab(self.curl_snippet, "curl")
        copy = QPushButton("Copy", column)
        copy.clicked.connect(self.copy_snippet)
        self.snippet_tabs.setCornerWidget(copy)
        # As tall as a snippet, no taller: the request log takes the rest.
        self.snippet_tabs.setMaximumHeight(
            SNIPPET_HEIGHT + self.snippet_tabs.tabBar().sizeHint().height() + 8)
        layout.addWidget(self.snippet_tabs)

    def _size_log_columns(self) -> None:
        """The columns beside the path as wide as their widest value, so that at 800×600
        the path elides instead of pushing Status and Took out of sight."""
        metrics = self.log_view.fontMetrics()
        self.log_view.setWordWrap(False)
        for column, widest in ((0, "00:00:00"), (1, "DELETE"), (3, "Status"), (4, "99999 ms")):
            title = str(self.log_model.headerData(column, Qt.Orientation.Horizontal))
            self.log_view.setColumnWidth(
                column, max(metrics.horizontalAdvance(widest), metrics.horizontalAdvance(title))
                + 24)

    def _snippet_box(self, name: str) -> QPlainTextEdit:
        box = QPlainTextEdit(self)
        box.setObjectName(name)
        box.setReadOnly(True)
        box.setMaximumHeight(SNIPPET_HEIGHT)
        box.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        return box

    # actions ------------------------------------------------------------------------------
    def toggle_server(self) -> None:
        self.banner.clear_error()
        if self.control.running:
            self.control.stop()
        else:
            self._save()
            self.control.start(self.settings.server_config())

    def new_token(self) -> None:
        """A fresh random token; a running server restarts so the old one stops working."""
        self._set_token(generate_token())

    def remove_token(self) -> None:
        self._set_token("")

    def _set_token(self, token: str) -> None:
        self.token_edit.setText(token)
        self._save()
        self._update_texts()
        if self.control.running:
            self.control.restart(self.settings.server_config())

    def _on_network_toggled(self, allowed: bool) -> None:
        if allowed and not self.token_edit.text():
            self.token_edit.setText(generate_token())  # other machines need one
        self._save()
        self._update_texts()

    def copy_snippet(self) -> None:
        box = self.snippet_tabs.currentWidget()
        if isinstance(box, QPlainTextEdit):
            QGuiApplication.clipboard().setText(box.toPlainText())

    def clear_log(self) -> None:
        self.control.clear_request_log()
        self.refresh_log()

    def refresh_log(self) -> None:
        self.log_model.show(self.control.request_records())

    def shutdown(self) -> None:
        """At window close: stop the server (its requests are cancelled)."""
        self.log_timer.stop()
        self.control.shutdown()

    # state --------------------------------------------------------------------------------
    def _save(self) -> None:
        s = self.settings
        s.port = self.port_spin.value()
        s.allow_network = self.network_check.isChecked()
        s.token = self.token_edit.text()
        s.cors_origins = self.cors_edit.text().strip()
        s.keep_chats = self.keep_chats_check.isChecked()
        save_panel_settings(self.db, s)

    def _on_state_changed(self, state: str) -> None:
        running = state == "running"
        stopped = state == "stopped"
        self.start_button.setText("Stop server" if running else "Start server")
        self.start_button.setEnabled(running or stopped)
        for field in (self.port_spin, self.network_check, self.cors_edit, self.keep_chats_check):
            field.setEnabled(stopped)
        if running:
            self.log_timer.start()
        else:
            self.log_timer.stop()
        self.refresh_log()
        self._update_texts()

    def _update_texts(self) -> None:
        model = self.control.served_model
        # Bound to 127.0.0.1 or to every address: this machine reaches it at 127.0.0.1.
        local_url = f"http://{DEFAULT_HOST}:{self._port()}/v1"
        if self.control.running and model is not None:
            where = local_url
            if self.settings.allow_network:
                where += f" (other machines: http://{socket.gethostname()}:{self._port()}/v1)"
            self.state_label.setText(f"Serving {model.name} at {where}")
            self.serving_changed.emit(f"Serving {model.name} at {local_url}")
        else:
            self.state_label.setText(STATE_TEXT.get(self.control.state, ""))
            if self.control.state == "stopped":
                self.serving_changed.emit("")
        token = self.token_edit.text() or None
        model_name = model.name if model is not None else "MODEL"
        self.python_snippet.setPlainText(openai_snippet(local_url, token, model_name))
        self.curl_snippet.setPlainText(curl_snippet(local_url, token, model_name))
        self.remove_token_button.setEnabled(not self.network_check.isChecked())

    def _port(self) -> int:
        server = self.control.server
        return server.port if server is not None else self.settings.port
