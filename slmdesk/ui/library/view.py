"""The Models tab: installed models with details and fit, models found on this computer,
the curated catalog, hub search, and the download queue.

Network, hashing and folder walks run on the thread pool (BackgroundTasks); the download
manager runs its own threads and writes through its own database connection. This view
reads and writes the database only on the GUI thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import sqlite_utils
from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from slmdesk.catalog import curated as catalog_mod
from slmdesk.catalog import discover as discover_mod
from slmdesk.catalog import fit as fit_mod
from slmdesk.catalog import hub as hub_mod
from slmdesk.catalog import library as library_mod
from slmdesk.catalog.downloads import DownloadManager
from slmdesk.catalog.registry import import_model
from slmdesk.errors import UserFacingError
from slmdesk.paths import get_paths
from slmdesk.settings import load_settings, save_settings
from slmdesk.store.repositories import ModelRecord, ModelRepository
from slmdesk.ui.common.table_model import (
    SORT_ROLE,
    Column,
    RowTableModel,
    human_bytes,
    human_duration,
)
from slmdesk.ui.common.tasks import BackgroundTasks
from slmdesk.ui.common.widgets import error_banner
from slmdesk.ui.library.table_models import VERDICT_COLOURS, DownloadEvents

log = logging.getLogger(__name__)

VERDICT_TEXT = {"fits": "fits", "tight": "tight", "wont_fit": "won't fit"}
ACTIVE_STATES = ("queued", "running", "verifying")


def database_path(db: sqlite_utils.Database) -> Path:
    """The file behind ``db`` (the download manager opens its own connection to it)."""
    for _seq, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file)
    raise RuntimeError("the database has no file")


def verdict_cell(estimate: Any) -> str:
    if estimate is None:
        return "?"
    verdict = VERDICT_TEXT.get(estimate.verdict, estimate.verdict)
    return f"{verdict} · {human_bytes(estimate.total_bytes)}"


def verdict_colour(estimate: Any) -> QColor | None:
    return None if estimate is None else VERDICT_COLOURS.get(estimate.verdict)


def _table(parent: QWidget, name: str,
           model: RowTableModel) -> tuple[QTableView, QSortFilterProxyModel]:
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    view = QTableView(parent)
    view.setObjectName(name)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.horizontalHeader().setStretchLastSection(True)
    view.setAlternatingRowColors(True)
    return view, proxy


class _Row:
    """A table row for an installed model: the record with its fit estimate."""

    def __init__(self, record: ModelRecord, estimate: Any, entry: Any) -> None:
        self.record, self.estimate, self.entry = record, estimate, entry


class LibraryView(QWidget):
    """Find, download, import, inspect, remove and pick models."""

    use_requested = Signal(str)  # model id: switch the chat to it
    models_changed = Signal()  # registered models were added or removed
    status_changed = Signal(str)  # a short line for the window's status bar

    def __init__(self, db: sqlite_utils.Database, parent: QWidget | None = None, *,
                 start_downloads: bool = True) -> None:
        super().__init__(parent)
        self.db = db
        self.repo = ModelRepository(db)
        self.tasks = BackgroundTasks(self)
        self.catalog: list[Any] = []
        self.catalog_error = ""
        self.loaded_model_id: str | None = None
        self._search_ticket = 0
        self._files_ticket = 0
        self._hub_files: list[Any] = []
        self._events = DownloadEvents(self)
        self._events.event_received.connect(self._on_download_event)
        self._speeds: dict[str, tuple[float | None, float | None]] = {}
        self.downloads: DownloadManager | None = None
        self._scanned = False
        self._populated = False  # the tables are filled when first needed, not at start-up
        self._build()
        self._start_downloads = start_downloads
        if start_downloads:
            self.start_downloads()

    # lifecycle ---------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._populated:
            self.refresh_installed()
        if not self._scanned:
            # Look for model files on disk the first time the tab is shown, not at start-up.
            self._scanned = True
            self.scan_folders()

    def models_dir(self) -> Path:
        settings = load_settings(self.db)
        return Path(settings.models_dir).expanduser() if settings.models_dir else (
            get_paths().default_models_dir)

    def start_downloads(self) -> None:
        """Create the download manager; it resumes what a previous run left queued."""
        if self.downloads is not None:
            return
        self.downloads = DownloadManager(
            database_path(self.db), self.models_dir(), listener=self._events.listener)
        self.downloads.start()
        self.refresh_downloads()

    def shutdown(self) -> None:
        """Stop the download threads; partial files stay for the next start."""
        if self.downloads is not None:
            self.downloads.shutdown()
            self.downloads = None

    # layout ------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.summary = QLabel("", self)
        self.summary.setObjectName("library_summary")
        top.addWidget(self.summary, 1)
        self.import_button = QPushButton("Import GGUF…", self)
        self.import_button.setObjectName("import_model_button")
        self.import_button.setToolTip("Register a .gguf file where it is (no copy). "
                                      "You can also drop .gguf files onto the window.")
        self.import_button.clicked.connect(self.import_dialog)
        top.addWidget(self.import_button)
        layout.addLayout(top)
        self.banner = error_banner(self, "library_banner")
        layout.addWidget(self.banner)
        self.notice = QLabel("", self)
        self.notice.setObjectName("library_notice")
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.PlainText)
        self.notice.hide()
        layout.addWidget(self.notice)

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("library_tabs")
        self.tabs.addTab(self._build_installed(), "Installed")
        self.tabs.addTab(self._build_catalog(), "Catalog")
        self.tabs.addTab(self._build_hub(), "Search the Hub")
        self.tabs.addTab(self._build_downloads(), "Downloads")
        self.tabs.addTab(self._build_settings(), "Folders && settings")
        layout.addWidget(self.tabs, 1)

    def _build_installed(self) -> QWidget:
        page = QWidget(self)
        outer = QVBoxLayout(page)
        split = QSplitter(Qt.Orientation.Horizontal, page)
        left = QWidget(split)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.installed = RowTableModel([
            Column("Name", lambda r: r.record.name + ("" if os.path.isfile(r.record.path)
                                                      else " (file missing)"),
                   tooltip=lambda r: r.record.path),
            Column("Quant", lambda r: r.record.quantization or ""),
            Column("Params", lambda r: _params(r.record.parameter_count),
                   sort=lambda r: r.record.parameter_count or 0),
            Column("Size", lambda r: human_bytes(r.record.size_bytes),
                   sort=lambda r: r.record.size_bytes),
            Column("Source", lambda r: _source_text(r.record)),
            Column("Fit", lambda r: verdict_cell(r.estimate), sort=lambda r: (
                r.estimate.total_bytes if r.estimate is not None else 0),
                tooltip=lambda r: r.estimate.sentence if r.estimate else "",
                colour=lambda r: verdict_colour(r.estimate)),
            Column("Measured", lambda r: _measured_text(r.record),
                   sort=lambda r: r.record.measured_memory_bytes or 0),
        ], self)
        self.installed_view, self.installed_proxy = _table(left, "installed_models",
                                                           self.installed)
        self.installed_view.selectionModel().currentRowChanged.connect(
            lambda *_: self._show_details())
        self.installed_view.doubleClicked.connect(lambda *_: self.use_selected())
        lv.addWidget(self.installed_view, 1)
        buttons = QHBoxLayout()
        self.use_button = QPushButton("Use in chat", left)
        self.use_button.setObjectName("use_model_button")
        self.use_button.clicked.connect(self.use_selected)
        self.remove_button = QPushButton("Remove…", left)
        self.remove_button.setObjectName("remove_model_button")
        self.remove_button.clicked.connect(self.remove_dialog)
        self.hash_button = QPushButton("Compute sha256", left)
        self.hash_button.setToolTip("Read the whole file and store its sha256")
        self.hash_button.clicked.connect(self.hash_selected)
        for b in (self.use_button, self.remove_button, self.hash_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lv.addLayout(buttons)

        found_box = QGroupBox("Found on this computer (not copied; added read-only)", left)
        fv = QVBoxLayout(found_box)
        self.found = RowTableModel([
            Column("File", lambda f: Path(f.path).name, tooltip=lambda f: str(f.path)),
            Column("Size", lambda f: human_bytes(f.size_bytes), sort=lambda f: f.size_bytes),
            Column("Where", lambda f: _found_where(f)),
        ], self)
        self.found_view, self.found_proxy = _table(found_box, "found_models", self.found)
        self.found_view.setMaximumHeight(160)
        fv.addWidget(self.found_view)
        fb = QHBoxLayout()
        self.scan_button = QPushButton("Look again", found_box)
        self.scan_button.clicked.connect(self.scan_folders)
        self.add_found_button = QPushButton("Add to library", found_box)
        self.add_found_button.setObjectName("add_found_button")
        self.add_found_button.clicked.connect(self.add_selected_found)
        fb.addWidget(self.scan_button)
        fb.addWidget(self.add_found_button)
        fb.addStretch(1)
        fv.addLayout(fb)
        lv.addWidget(found_box)

        self.details = QPlainTextEdit(split)
        self.details.setObjectName("model_details")
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("Select a model to see its details.")
        split.addWidget(left)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        outer.addWidget(split)
        return page

    def _build_catalog(self) -> QWidget:
        page = QWidget(self)
        v = QVBoxLayout(page)
        self.catalog_note = QLabel(
            "Curated small instruct models. Every download is checked against the Hub's "
            "sha256 before it is added.", page)
        self.catalog_note.setWordWrap(True)
        v.addWidget(self.catalog_note)
        self.catalog_model = RowTableModel([
            Column("Model", lambda e: e.name, tooltip=lambda e: getattr(e, "good_at", "")),
            Column("Quant", lambda e: e.quantization or ""),
            Column("Size", lambda e: human_bytes(e.size_bytes), sort=lambda e: e.size_bytes or 0),
            Column("Context", lambda e: str(e.context_length or ""),
                   sort=lambda e: e.context_length or 0),
            Column("Licence", lambda e: e.licence or ""),
            Column("Fit", lambda e: verdict_cell(self._entry_fit(e)),
                   sort=lambda e: getattr(self._entry_fit(e), "total_bytes", 0),
                   tooltip=lambda e: _sentence(self._entry_fit(e)) + "\n" + e.verification_note,
                   colour=lambda e: verdict_colour(self._entry_fit(e))),
            Column("Installed", lambda e: "✓" if self._entry_installed(e) else ""),
            Column("Good at", lambda e: getattr(e, "good_at", "") or ""),
        ], self)
        self.catalog_view, self.catalog_proxy = _table(page, "catalog_view", self.catalog_model)
        v.addWidget(self.catalog_view, 1)
        row = QHBoxLayout()
        self.catalog_download_button = QPushButton("Download", page)
        self.catalog_download_button.setObjectName("catalog_download_button")
        self.catalog_download_button.clicked.connect(self.download_selected_entry)
        row.addWidget(self.catalog_download_button)
        row.addStretch(1)
        v.addLayout(row)
        self._entry_fits: dict[str, Any] = {}
        self._budget: Any = None
        return page

    def _build_hub(self) -> QWidget:
        page = QWidget(self)
        v = QVBoxLayout(page)
        note = QLabel("Searching and downloading are the only things that use the network.",
                      page)
        note.setWordWrap(True)
        v.addWidget(note)
        row = QHBoxLayout()
        self.search_box = QLineEdit(page)
        self.search_box.setObjectName("hub_search_box")
        self.search_box.setPlaceholderText("Search GGUF models on the Hugging Face Hub "
                                           "(e.g. qwen2.5 0.5b instruct)")
        self.search_box.returnPressed.connect(self.search_hub)
        self.sort_box = QComboBox(page)
        self.sort_box.setObjectName("hub_sort")
        for label, key in (("Most downloaded", "downloads"), ("Most liked", "likes"),
                           ("Recently updated", "recent")):
            self.sort_box.addItem(label, key)
        self.search_button = QPushButton("Search", page)
        self.search_button.setObjectName("hub_search_button")
        self.search_button.clicked.connect(self.search_hub)
        row.addWidget(self.search_box, 1)
        row.addWidget(self.sort_box)
        row.addWidget(self.search_button)
        v.addLayout(row)
        self.hub_status = QLabel("", page)
        self.hub_status.setObjectName("hub_status")
        self.hub_status.setWordWrap(True)
        v.addWidget(self.hub_status)
        split = QSplitter(Qt.Orientation.Vertical, page)
        self.repos = RowTableModel([
            Column("Repository", lambda r: r.repo_id + (" (gated)" if r.gated else "")),
            Column("Downloads", lambda r: f"{r.downloads:,}", sort=lambda r: r.downloads),
            Column("Likes", lambda r: f"{r.likes:,}", sort=lambda r: r.likes),
            Column("Updated", lambda r: (r.last_modified or "")[:10]),
        ], self)
        self.repos_view, self.repos_proxy = _table(split, "hub_repos", self.repos)
        self.repos_view.selectionModel().currentRowChanged.connect(
            lambda *_: self.list_selected_repo())
        self.files = RowTableModel([
            Column("File", lambda f: f.filename),
            Column("Quant", lambda f: f.quantization or ""),
            Column("Size", lambda f: human_bytes(f.size_bytes), sort=lambda f: f.size_bytes or 0),
            Column("Fit", lambda f: verdict_cell(self._file_fit(f)),
                   tooltip=lambda f: _sentence(self._file_fit(f)),
                   colour=lambda f: verdict_colour(self._file_fit(f))),
            Column("Engine", lambda f: _arch_text(f),
                   colour=lambda f: VERDICT_COLOURS["wont_fit"] if _arch_bad(f) else None),
        ], self)
        self.files_view, self.files_proxy = _table(split, "hub_files", self.files)
        split.addWidget(self.repos_view)
        split.addWidget(self.files_view)
        v.addWidget(split, 1)
        row2 = QHBoxLayout()
        self.hub_download_button = QPushButton("Download", page)
        self.hub_download_button.setObjectName("hub_download_button")
        self.hub_download_button.clicked.connect(self.download_selected_file)
        row2.addWidget(self.hub_download_button)
        row2.addStretch(1)
        v.addLayout(row2)
        self._file_fits: dict[str, Any] = {}
        return page

    def _build_downloads(self) -> QWidget:
        page = QWidget(self)
        v = QVBoxLayout(page)
        self.download_rows = RowTableModel([
            Column("Model", lambda d: d.display_name or d.filename,
                   tooltip=lambda d: f"{d.repo_id} @ {d.revision[:12]}\n{d.dest_path}"),
            Column("State", lambda d: _state_text(d),
                   tooltip=lambda d: d.error or "",
                   colour=lambda d: VERDICT_COLOURS["wont_fit"] if d.state == "failed" else None),
            Column("Progress", lambda d: _progress_text(d), sort=lambda d: _fraction(d)),
            Column("Speed", lambda d: self._speed_text(d.id)),
            Column("Time left", lambda d: self._eta_text(d.id)),
        ], self)
        self.downloads_view, self.downloads_proxy = _table(page, "downloads_view",
                                                           self.download_rows)
        header = self.downloads_view.horizontalHeader()
        for column in range(1, 4):  # state, progress, speed: always readable
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(0, 320)
        v.addWidget(self.downloads_view, 1)
        row = QHBoxLayout()
        self.pause_button = QPushButton("Pause", page)
        self.pause_button.setObjectName("pause_download_button")
        self.pause_button.clicked.connect(lambda: self._download_action("pause"))
        self.resume_button = QPushButton("Resume", page)
        self.resume_button.setObjectName("resume_download_button")
        self.resume_button.clicked.connect(lambda: self._download_action("resume"))
        self.cancel_button = QPushButton("Cancel", page)
        self.cancel_button.setObjectName("cancel_download_button")
        self.cancel_button.setToolTip("Stop and delete the partial file")
        self.cancel_button.clicked.connect(lambda: self._download_action("cancel"))
        for b in (self.pause_button, self.resume_button, self.cancel_button):
            row.addWidget(b)
        row.addStretch(1)
        v.addLayout(row)
        return page

    def _build_settings(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        settings = load_settings(self.db)
        dir_row = QHBoxLayout()
        self.models_dir_edit = QLineEdit(str(self.models_dir()), page)
        self.models_dir_edit.setObjectName("models_dir_edit")
        self.models_dir_edit.editingFinished.connect(self._models_dir_edited)
        browse = QPushButton("Choose…", page)
        browse.clicked.connect(self._choose_models_dir)
        dir_row.addWidget(self.models_dir_edit, 1)
        dir_row.addWidget(browse)
        form.addRow("Downloads go to:", dir_row)
        self.folders_edit = QPlainTextEdit("\n".join(settings.library_folders), page)
        self.folders_edit.setObjectName("library_folders_edit")
        self.folders_edit.setPlaceholderText(
            "One folder per line, e.g. ~/.lmstudio/models — its GGUF files are offered, "
            "read-only, under Installed.")
        self.folders_edit.setMaximumHeight(90)
        form.addRow("Other model folders:", self.folders_edit)
        folder_buttons = QHBoxLayout()
        add_folder = QPushButton("Add folder…", page)
        add_folder.clicked.connect(self._add_folder_dialog)
        save_folders = QPushButton("Save and look again", page)
        save_folders.setObjectName("save_folders_button")
        save_folders.clicked.connect(self.save_folders)
        folder_buttons.addWidget(add_folder)
        folder_buttons.addWidget(save_folders)
        folder_buttons.addStretch(1)
        form.addRow("", folder_buttons)
        self.hf_cache_box = QCheckBox("Offer GGUF files from the Hugging Face cache", page)
        self.hf_cache_box.setChecked(settings.discover_hf_cache)
        self.hf_cache_box.toggled.connect(self._hf_cache_toggled)
        form.addRow("", self.hf_cache_box)
        self.idle_box = QSpinBox(page)
        self.idle_box.setObjectName("idle_unload_box")
        self.idle_box.setRange(0, 24 * 60)
        self.idle_box.setSuffix(" min")
        self.idle_box.setSpecialValueText("never")
        self.idle_box.setValue(settings.idle_unload_minutes)
        self.idle_box.setToolTip("Free the model's memory after this long without use; "
                                 "it loads again when you send a message.")
        self.idle_box.valueChanged.connect(self._idle_changed)
        form.addRow("Unload the model when idle for:", self.idle_box)
        self.context_box = QSpinBox(page)
        self.context_box.setObjectName("fit_context_box")
        self.context_box.setRange(256, 131072)
        self.context_box.setSingleStep(1024)
        self.context_box.setValue(settings.max_context)
        self.context_box.setToolTip("Context size used for fit estimates and model loads")
        self.context_box.valueChanged.connect(self._context_changed)
        form.addRow("Context size (tokens):", self.context_box)
        return page

    # helpers -----------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def clear_error(self) -> None:
        self.banner.clear()
        self.banner.hide()

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.show()

    def context(self) -> int:
        return int(load_settings(self.db).max_context)

    def _selected(self, view: QTableView, proxy: QSortFilterProxyModel,
                  model: RowTableModel) -> Any:
        index = view.currentIndex()
        if not index.isValid():
            rows = view.selectionModel().selectedRows()
            if not rows:
                return None
            index = rows[0]
        source = proxy.mapToSource(index)
        return model.row_at(source.row()) if source.isValid() else None

    def select_row(self, view: QTableView, proxy: QSortFilterProxyModel, row: int) -> None:
        """Select a source row in a table (used by tests and after refreshes)."""
        index = proxy.mapFromSource(proxy.sourceModel().index(row, 0))
        view.setCurrentIndex(index)
        view.selectRow(index.row())

    # installed ---------------------------------------------------------------------
    def refresh_installed(self, *, only_if_shown_before: bool = False) -> None:
        """Fill (or refill) the installed models with their fit estimates.

        The window's start does not pay for this (catalog, estimates, GGUF headers): the
        tab fills itself when it is first shown or asked for its rows.
        """
        if not self._populated:
            if only_if_shown_before:
                return
            self._populated = True
            self.reload_catalog()
        selected = self.selected_model()
        budget = fit_mod.system_memory()
        self._budget = budget
        self._entry_fits = {}
        rows = []
        for record in self.repo.list():
            try:
                estimate = fit_mod.estimate_for_record(record, self.context(), budget=budget)
            except Exception:  # noqa: BLE001 - a record without numbers has no estimate
                estimate = None
            rows.append(_Row(record, estimate, catalog_mod.match_entry(record, self.catalog)))
        self.installed.set_rows(rows)
        self.installed_view.resizeColumnsToContents()
        if selected is not None:
            for i, r in enumerate(rows):
                if r.record.id == selected.id:
                    self.select_row(self.installed_view, self.installed_proxy, i)
        self._update_summary()
        self.catalog_model.set_rows(self.catalog)

    def _update_summary(self) -> None:
        try:
            usage = library_mod.disk_usage(self.db, self.models_dir())
            disk = f" · {human_bytes(usage.total_bytes)} on disk"
        except Exception:
            log.exception("disk usage")
            disk = ""
        budget = fit_mod.system_memory()
        self.summary.setText(
            f"{len(self.installed.rows)} model(s){disk} · "
            f"{human_bytes(budget.available_ram)} of {human_bytes(budget.total_ram)} RAM free")

    def selected_model(self) -> ModelRecord | None:
        row = self._selected(self.installed_view, self.installed_proxy, self.installed)
        return None if row is None else row.record

    def select_model_row(self, model_id: str) -> None:
        for i, r in enumerate(self.installed.rows):
            if r.record.id == model_id:
                self.select_row(self.installed_view, self.installed_proxy, i)
                return

    def _show_details(self) -> None:
        record = self.selected_model()
        if record is None:
            self.details.clear()
            return
        try:
            details = library_mod.model_details(self.repo.get(record.id), context=self.context(),
                                                catalog=self.catalog)
        except UserFacingError as exc:
            self.details.setPlainText(exc.message)
            return
        self.details.setPlainText(library_mod.format_details(details))

    def use_selected(self) -> None:
        record = self.selected_model()
        if record is not None:
            self.use_requested.emit(record.id)

    def remove_dialog(self) -> None:
        record = self.selected_model()
        if record is None:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Remove model")
        check: QCheckBox | None = None
        if record.owns_file:
            box.setText(f"Remove {record.name} and delete its downloaded file "
                        f"({human_bytes(record.size_bytes)})?")
        else:
            box.setText(f"Remove {record.name} from the library? Your file stays where it is:"
                        f"\n{record.path}")
            if record.source != "starter":
                check = QCheckBox("Also delete the file from disk", box)
                box.setCheckBox(check)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def finished(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self.remove_model(record.id, delete_file=bool(check and check.isChecked()))

        box.finished.connect(finished)
        box.open()

    def remove_model(self, model_id: str, *, delete_file: bool = False) -> None:
        if model_id == self.loaded_model_id:
            self.show_error("This model is in use; switch the chat to another model first.")
            return
        try:
            removal = library_mod.remove_model(self.db, model_id, delete_file=delete_file,
                                               models_dir=self.models_dir())
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.clear_error()
        freed = getattr(removal, "freed_bytes", 0)
        self.show_notice(f"Removed. {human_bytes(freed)} freed." if freed else
                         "Removed from the library; the file was left where it is.")
        self.refresh_installed()
        self.models_changed.emit()

    def hash_selected(self) -> None:
        record = self.selected_model()
        if record is None:
            return
        path = record.path
        self.hash_button.setEnabled(False)
        self.show_notice(f"Computing the sha256 of {Path(path).name}…")

        def then(digest: Any, error: str) -> None:
            self.hash_button.setEnabled(True)
            if error:
                self.show_error(error)
                return
            library_mod.record_sha256(self.db, record.id, str(digest))
            self.show_notice(f"sha256 {digest}")
            self.refresh_installed()

        self.tasks.start(lambda: library_mod.hash_file(path), f"read {Path(path).name}", then)

    # import and discovery ----------------------------------------------------------------
    def import_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import GGUF models", "",
                                                "GGUF models (*.gguf);;All files (*)")
        if paths:
            self.import_paths(paths)

    def import_paths(self, paths: Sequence[str]) -> None:
        """Validate files off the GUI thread, then register them in place (no copy)."""
        from slmdesk.engine.llama_engine import validate_model_file

        paths = list(paths)

        def work() -> dict[str, Any]:
            # Each path's checked header, or the message saying why it was refused.
            results: dict[str, Any] = {}
            for p in paths:
                try:
                    results[p] = validate_model_file(p)
                except UserFacingError as exc:
                    results[p] = exc.message
            return results

        def then(results: Any, error: str) -> None:
            if error:
                self.show_error(error)
                return
            bad = {p: r for p, r in results.items() if isinstance(r, str)}
            added: list[ModelRecord] = []
            for p in paths:
                if p in bad:
                    continue
                try:
                    added.append(import_model(self.db, p, checked=results[p]))
                except UserFacingError as exc:
                    bad[p] = exc.message
            if bad:
                self.show_error("\n".join(msg for msg in bad.values()))
            else:
                self.clear_error()
            if added:
                self.show_notice("Added " + ", ".join(m.name for m in added) +
                                 " (registered where it is; not copied).")
                self.refresh_installed()
                self.select_model_row(added[-1].id)
                self.models_changed.emit()
            self.imports_finished.emit(len(added), len(bad))

        self.tasks.start(work, "read the model file", then)

    imports_finished = Signal(int, int)  # added, refused

    def scan_folders(self) -> None:
        settings = load_settings(self.db)
        folders = [Path(f).expanduser() for f in settings.library_folders]
        known = {m.path for m in self.repo.list()}
        self.scan_button.setEnabled(False)

        def then(found: Any, error: str) -> None:
            self.scan_button.setEnabled(True)
            if error:
                self.show_error(error)
                return
            self.found.set_rows(found)
            self.found_view.resizeColumnsToContents()
            self.scan_finished.emit(len(found))

        self.tasks.start(
            lambda: discover_mod.discover(folders, hf_cache=settings.discover_hf_cache,
                                          known_paths=known),
            "look for model files", then)

    scan_finished = Signal(int)

    def add_selected_found(self) -> None:
        found = self._selected(self.found_view, self.found_proxy, self.found)
        if found is None:
            return
        try:
            record = discover_mod.register_discovered(self.db, found)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.found.set_rows([f for f in self.found.rows if f is not found])
        self.refresh_installed()
        self.select_model_row(record.id)
        self.models_changed.emit()

    # catalog ---------------------------------------------------------------------------
    def reload_catalog(self) -> None:
        try:
            self.catalog = catalog_mod.load_catalog()
        except UserFacingError as exc:
            self.catalog = []
            self.catalog_error = exc.message
            self.show_error(exc.message)
        self._entry_fits = {}
        self._budget = None
        self.catalog_model.set_rows(self.catalog)
        self.catalog_view.resizeColumnsToContents()

    def _entry_fit(self, entry: Any) -> Any:
        key = entry.id
        if key not in self._entry_fits:
            try:
                if self._budget is None:
                    self._budget = fit_mod.system_memory()
                self._entry_fits[key] = fit_mod.estimate_for_entry(
                    entry, self.context(), budget=self._budget)
            except Exception:  # noqa: BLE001
                self._entry_fits[key] = None
        return self._entry_fits[key]

    def _entry_installed(self, entry: Any) -> bool:
        return any(r.entry is not None and r.entry.id == entry.id for r in self.installed.rows)

    def download_selected_entry(self) -> None:
        entry = self._selected(self.catalog_view, self.catalog_proxy, self.catalog_model)
        if entry is None:
            self.show_error("Pick a model in the catalog first.")
            return
        self.start_download(entry.repo_id, entry.filename, revision=entry.revision,
                            display_name=f"{entry.name}", licence=entry.licence,
                            expected_sha256=entry.sha256)

    # hub -------------------------------------------------------------------------------
    def search_hub(self) -> None:
        query = self.search_box.text().strip()
        if not query:
            return
        sort = self.sort_box.currentData()
        self.hub_status.setText(f"Searching the Hub for “{query}”…")
        self.search_button.setEnabled(False)
        self._search_ticket += 1
        ticket = self._search_ticket

        def then(repos: Any, error: str) -> None:
            if ticket != self._search_ticket:
                return
            self.search_button.setEnabled(True)
            if error:
                self.hub_status.setText(error)
                self.search_finished.emit(-1)
                return
            self.repos.set_rows(repos)
            self.files.set_rows([])
            self.repos_view.resizeColumnsToContents()
            self.hub_status.setText(f"{len(repos)} GGUF repositories. Pick one to see its files."
                                    if repos else "Nothing found.")
            self.search_finished.emit(len(repos))

        self.tasks.start(lambda: hub_mod.search_models(query, sort=sort), "search the Hub", then)

    search_finished = Signal(int)  # number of repositories, -1 on error
    files_listed = Signal(int)

    def list_selected_repo(self) -> None:
        repo = self._selected(self.repos_view, self.repos_proxy, self.repos)
        if repo is None:
            return
        self.hub_status.setText(f"Listing the GGUF files of {repo.repo_id}…")
        self._files_ticket += 1
        ticket = self._files_ticket
        context = self.context()

        def work() -> Any:
            revision, files = hub_mod.list_gguf_files(repo.repo_id)
            checked = []
            for f in files:
                try:
                    ok, message = hub_mod.check_architecture(f)
                except UserFacingError as exc:
                    ok, message = True, exc.message
                estimate = None
                if f.size_bytes:
                    try:
                        estimate = fit_mod.estimate_for_file(cast(Any, f), context)
                    except Exception:  # noqa: BLE001
                        estimate = None
                checked.append((f, ok, message, estimate))
            return revision, checked

        def then(result: Any, error: str) -> None:
            if ticket != self._files_ticket:
                return
            if error:
                self.hub_status.setText(error)
                self.files_listed.emit(-1)
                return
            revision, checked = result
            self._file_fits = {}
            rows = []
            for f, ok, message, estimate in checked:
                f_row = _HubFileRow(f, ok, message)
                self._file_fits[f_row.key] = estimate
                rows.append(f_row)
            self.files.set_rows(rows)
            self.files_view.resizeColumnsToContents()
            self.hub_status.setText(
                f"{repo.repo_id} at {revision[:12]}: {len(rows)} GGUF file(s).")
            self.files_listed.emit(len(rows))

        self.tasks.start(work, f"list the files of {repo.repo_id}", then)

    def _file_fit(self, f: Any) -> Any:
        return self._file_fits.get(f.key)

    def download_selected_file(self) -> None:
        row = self._selected(self.files_view, self.files_proxy, self.files)
        if row is None:
            self.show_error("Pick a file of a repository first.")
            return
        if not row.supported:
            self.show_error(row.message)
            return
        f = row.file
        name = f"{f.repo_id.split('/')[-1]} ({f.quantization or f.filename})"
        self.start_download(f.repo_id, f.filename, revision=f.revision, display_name=name,
                            licence=None, expected_sha256=f.sha256)

    # downloads ---------------------------------------------------------------------------
    def start_download(self, repo_id: str, filename: str, *, revision: str | None,
                       display_name: str, licence: str | None,
                       expected_sha256: str | None) -> None:
        if self.downloads is None:
            self.start_downloads()
        assert self.downloads is not None
        try:
            record = self.downloads.enqueue(
                repo_id, filename, revision=revision, display_name=display_name,
                licence=licence, expected_sha256=expected_sha256)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.clear_error()
        self.refresh_downloads()
        self.tabs.setCurrentIndex(3)
        for i, d in enumerate(self.download_rows.rows):
            if d.id == record.id:
                self.select_row(self.downloads_view, self.downloads_proxy, i)

    def refresh_downloads(self) -> None:
        if self.downloads is None:
            return
        selected = self._selected(self.downloads_view, self.downloads_proxy, self.download_rows)
        rows = [d for d in self.downloads.list() if d.state != "cancelled"]
        self.download_rows.set_rows(rows)
        if selected is not None:
            for i, d in enumerate(rows):
                if d.id == selected.id:
                    self.select_row(self.downloads_view, self.downloads_proxy, i)
        self._update_downloads_tab()

    def _update_downloads_tab(self) -> None:
        active = sum(1 for d in self.download_rows.rows if d.state in ACTIVE_STATES)
        self.tabs.setTabText(3, f"Downloads ({active})" if active else "Downloads")

    def _on_download_event(self, event: Any) -> None:
        record = event.record
        self._speeds[record.id] = (event.speed_bps, event.eta_s)
        for i, d in enumerate(self.download_rows.rows):
            if d.id == record.id:
                self.download_rows.replace_row(i, record)
                break
        else:
            if record.state != "cancelled":
                self.download_rows.append_row(record)
        if event.kind == "state":
            self._update_downloads_tab()
            if record.state == "done":
                self.show_notice(f"{record.display_name or record.filename} is downloaded, "
                                 "verified (sha256) and ready to use.")
                self.refresh_installed()
                self.models_changed.emit()
                self.download_finished.emit(record.id, record.model_id or "")
            elif record.state == "failed":
                self.show_error(f"Download of {record.filename} failed: {record.error}")
            elif record.state == "cancelled":
                self.refresh_downloads()

    download_finished = Signal(str, str)  # download id, model id

    def _speed_text(self, download_id: str) -> str:
        speed, _eta = self._speeds.get(download_id, (None, None))
        return f"{human_bytes(speed)}/s" if speed else ""

    def _eta_text(self, download_id: str) -> str:
        _speed, eta = self._speeds.get(download_id, (None, None))
        return human_duration(eta)

    def selected_download(self) -> Any:
        return self._selected(self.downloads_view, self.downloads_proxy, self.download_rows)

    def _download_action(self, action: str) -> None:
        d = self.selected_download()
        if d is None or self.downloads is None:
            return
        try:
            getattr(self.downloads, action)(d.id)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.refresh_downloads()

    # settings --------------------------------------------------------------------------
    def _models_dir_edited(self) -> None:
        text = self.models_dir_edit.text().strip()
        settings = load_settings(self.db)
        settings.models_dir = text or None
        save_settings(self.db, settings)
        if self.downloads is not None:
            self.show_notice("New downloads go to the new folder after the next start; "
                             "files already downloaded stay where they are.")

    def _choose_models_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for downloaded models",
                                                self.models_dir_edit.text())
        if path:
            self.models_dir_edit.setText(path)
            self._models_dir_edited()

    def _add_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A folder with GGUF models")
        if path:
            text = self.folders_edit.toPlainText().rstrip()
            self.folders_edit.setPlainText(f"{text}\n{path}" if text else path)
            self.save_folders()

    def save_folders(self) -> None:
        settings = load_settings(self.db)
        settings.library_folders = [
            line.strip() for line in self.folders_edit.toPlainText().splitlines()
            if line.strip()]
        save_settings(self.db, settings)
        self.scan_folders()

    def _hf_cache_toggled(self, on: bool) -> None:
        settings = load_settings(self.db)
        settings.discover_hf_cache = on
        save_settings(self.db, settings)
        self.scan_folders()

    idle_minutes_changed = Signal(int)

    def _idle_changed(self, minutes: int) -> None:
        settings = load_settings(self.db)
        settings.idle_unload_minutes = minutes
        save_settings(self.db, settings)
        self.idle_minutes_changed.emit(minutes)

    def _context_changed(self, value: int) -> None:
        settings = load_settings(self.db)
        settings.max_context = value
        save_settings(self.db, settings)
        self._entry_fits = {}
        QTimer.singleShot(0, self, self.refresh_installed)


class _HubFileRow:
    """A hub file with the engine's verdict on its architecture."""

    def __init__(self, file: Any, supported: bool, message: str) -> None:
        self.file, self.supported, self.message = file, supported, message
        self.key = f"{file.repo_id}/{file.filename}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def _sentence(estimate: Any) -> str:
    return "" if estimate is None else str(estimate.sentence)


def _params(n: int | None) -> str:
    if not n:
        return ""
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def _source_text(record: ModelRecord) -> str:
    return {"download": "downloaded", "import": "imported", "starter": "bundled",
            "discovered": "found"}.get(record.source, record.source)


def _measured_text(record: ModelRecord) -> str:
    if not record.measured_memory_bytes:
        # Loaded, but the measurement was not meaningful
        # (slmdesk.engine.llama_engine.meaningful_growth).
        return "not measured" if record.last_loaded_at else ""
    text = f"{human_bytes(record.measured_memory_bytes)} @ {record.measured_context or '?'}"
    if record.estimated_memory_bytes:
        ratio = record.estimated_memory_bytes / record.measured_memory_bytes
        text += f" (estimate ×{ratio:.2f})"
    return text


def _found_where(f: Any) -> str:
    if getattr(f, "repo_id", None):
        return f"Hugging Face cache · {f.repo_id}"
    return str(Path(f.path).parent)


def _arch_text(f: Any) -> str:
    arch = getattr(f, "architecture", None) or "?"
    return arch if f.supported else f"{arch}: needs a newer engine"


def _arch_bad(f: Any) -> bool:
    return not f.supported


def _fraction(d: Any) -> float:
    return d.downloaded_bytes / d.size_bytes if d.size_bytes else 0.0


def _progress_text(d: Any) -> str:
    if d.size_bytes:
        return (f"{100 * _fraction(d):.0f} % · {human_bytes(d.downloaded_bytes)} of "
                f"{human_bytes(d.size_bytes)}")
    return human_bytes(d.downloaded_bytes)


def _state_text(d: Any) -> str:
    return str({"queued": "waiting", "running": "downloading", "paused": "paused",
            "verifying": "checking sha256", "done": "done ✓", "failed": "failed",
            "cancelled": "cancelled"}.get(d.state, d.state)) + (
        f" (try {d.attempts})" if d.state == "running" and d.attempts > 1 else "")


__all__ = ["LibraryView", "QModelIndex"]
