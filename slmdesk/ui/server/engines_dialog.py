"""Settings → Engines: save, remove and check remote OpenAI-compatible engines (llama-server,
vLLM, another slmdesk), each shown with what its last check found it can do."""

from __future__ import annotations

from typing import Any

import sqlite_utils
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from slmdesk.engine.remote.capabilities import Capabilities
from slmdesk.engine.remote.http import normalise_base_url
from slmdesk.errors import UserFacingError
from slmdesk.store.engines import EngineRecord, EngineRepository
from slmdesk.ui.common.tab_frame import line_edit, push_button
from slmdesk.ui.common.table_model import Column, RowTableModel
from slmdesk.ui.common.tasks import BackgroundTasks
from slmdesk.ui.common.widgets import error_banner
from slmdesk.ui.server.tables import row_table


def _capabilities(engine: EngineRecord) -> Capabilities | None:
    return Capabilities.from_json(engine.capabilities) if engine.capabilities else None


def _kind(engine: EngineRecord) -> str:
    caps = _capabilities(engine)
    return caps.kind if caps is not None else "not checked"


def _models(engine: EngineRecord) -> str:
    caps = _capabilities(engine)
    return ", ".join(caps.models) if caps is not None else ""


ENGINE_COLUMNS = (
    Column("Name", lambda e: e.name),
    Column("Address", lambda e: e.base_url + (" (key)" if e.api_key else "")),
    Column("Kind", _kind),
    Column("Models", _models, tooltip=_models),
    Column("Checked", lambda e: (e.checked_at or "never")[:19].replace("T", " ")),
)


def describe(engine: EngineRecord) -> str:
    """What the engine's last check found, feature by feature."""
    caps = _capabilities(engine)
    if caps is None:
        return f"{engine.name} ({engine.base_url}) has not been checked yet."
    head = f"{engine.name}: {caps.kind}, model {caps.model}" + (
        f", context {caps.n_ctx} tokens" if caps.n_ctx else "")
    return f"{head}\nmodels: {', '.join(caps.models)}\n{caps.summary()}"


def probe_engine(base_url: str, api_key: str | None) -> dict[str, Any]:
    """Ask the engine what it can do (network: call off the GUI thread)."""
    from slmdesk.engine.remote.capabilities import probe
    from slmdesk.engine.remote.http import RemoteHttp

    return probe(RemoteHttp(base_url, api_key)).to_json()


class EnginesDialog(QDialog):
    """The saved engines, a form to add one, and Remove / Check for the selected one.

    A check runs on the thread pool; ``checked(name, error)`` fires when it ends ("" when it
    succeeded), after the table and the details show its outcome.
    """

    checked = Signal(str, str)

    def __init__(self, db: sqlite_utils.Database, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Engines")
        self.resize(760, 520)
        self.repo = EngineRepository(db)
        self.tasks = BackgroundTasks(self)
        self.checking: set[str] = set()
        self._build()
        self.refresh()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(
            "OpenAI-compatible engines on other machines or programs (llama.cpp's "
            "llama-server, vLLM, another slmdesk's server). A checked engine's models appear in "
            "the model picker, marked remote; on the command line use --engine NAME.", self))
        self.banner = error_banner(self, "engines_error_banner")
        layout.addWidget(self.banner)
        self.table_model = RowTableModel(ENGINE_COLUMNS, self)
        self.table = row_table(self, self.table_model, "engines_table", 3)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.selectionModel().selectionChanged.connect(self._show_selected)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.check_button = push_button(
            "Check", "Ask the engine again what it can do", self, name="engines_check",
            clicked=lambda: self._on_selected(self.check))
        self.remove_button = push_button(
            "Remove", "", self, name="engines_remove",
            clicked=lambda: self._on_selected(self.remove))
        row.addWidget(self.check_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.details = QPlainTextEdit(self)
        self.details.setObjectName("engines_details")
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(150)
        layout.addWidget(self.details)
        layout.addWidget(self._build_add_form())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _build_add_form(self) -> QGroupBox:
        box = QGroupBox("Add an engine", self)
        form = QFormLayout(box)
        self.name_edit = line_edit(box, "engines_name", placeholder="e.g. gpu-box")
        form.addRow("Name:", self.name_edit)
        self.url_edit = line_edit(box, "engines_url",
                                  placeholder="http://HOST:PORT (with or without /v1)")
        form.addRow("Address:", self.url_edit)
        self.key_edit = line_edit(box, "engines_key",
                                  placeholder="optional: sent as 'Authorization: Bearer KEY'")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("API key:", self.key_edit)
        self.add_button = push_button(
            "Add and check", "", box, name="engines_add", clicked=self.add_from_form)
        form.addRow("", self.add_button)
        return box

    # what the table shows ---------------------------------------------------------------
    def refresh(self, select: str | None = None) -> None:
        engines = self.repo.list()
        self.table_model.set_rows(engines)
        names = [e.name for e in engines]
        if select in names:
            self.table.selectRow(names.index(select))
        self._show_selected()

    def selected(self) -> EngineRecord | None:
        rows = self.table.selectionModel().selectedRows()
        row: EngineRecord | None = self.table_model.row_for(rows[0]) if rows else None
        return row

    def _on_selected(self, action: Any) -> None:
        engine = self.selected()
        if engine is not None:
            action(engine.name)

    def _show_selected(self, *_args: Any) -> None:
        engine = self.selected()
        self.details.setPlainText(
            "" if engine is None else
            describe(engine) + ("\n(checking…)" if engine.name in self.checking else ""))
        self.check_button.setEnabled(engine is not None and engine.name not in self.checking)
        self.remove_button.setEnabled(engine is not None)

    # actions ----------------------------------------------------------------------------
    def add_from_form(self) -> bool:
        """Save the engine the form describes and check it; False (and the banner) if not."""
        self.banner.clear_error()
        try:
            url = normalise_base_url(self.url_edit.text())
            engine = self.repo.add(self.name_edit.text(), url, self.key_edit.text() or None)
        except UserFacingError as exc:
            self.banner.show_error(exc.message)
            return False
        for edit in (self.name_edit, self.url_edit, self.key_edit):
            edit.clear()
        self.refresh(select=engine.name)
        self.check(engine.name)
        return True

    def remove(self, name: str) -> None:
        self.banner.clear_error()
        self.repo.remove(name)
        self.refresh()

    def check(self, name: str) -> None:
        """Probe the engine named ``name`` on the thread pool; its outcome is saved and shown."""
        engine = self.repo.get(name)
        self.checking.add(name)
        self._show_selected()
        self.tasks.start(lambda: probe_engine(engine.base_url, engine.api_key),
                         f"check the engine {name}",
                         lambda caps, error: self._on_checked(name, caps, error))

    def _on_checked(self, name: str, caps: dict[str, Any] | None, error: str) -> None:
        self.checking.discard(name)
        if self.repo.find(name) is None:
            return  # removed meanwhile
        if error:
            self.banner.show_error(f"Checking {name} failed: {error}")
        elif caps is not None:
            self.repo.record_check(name, caps)
        self.refresh(select=name)
        self.checked.emit(name, error)


def open_engines_dialog(db: sqlite_utils.Database, parent: QWidget) -> EnginesDialog:
    """Settings → Engines… (modeless, so the window stays usable while an engine is checked)."""
    dialog = EnginesDialog(db, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
