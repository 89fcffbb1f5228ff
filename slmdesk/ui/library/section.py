"""What the Models tab's pages share: the database, the task runner, the banner, the
selection helpers, and the signals the window listens to (LibraryView joins the pages)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils
from PySide6.QtCore import QSortFilterProxyModel, Signal, SignalInstance
from PySide6.QtWidgets import QLabel, QTableView, QTabWidget, QWidget

from slmdesk.catalog.downloads import DownloadManager
from slmdesk.paths import get_paths
from slmdesk.settings import load_settings
from slmdesk.store.models import ModelRepository
from slmdesk.ui.common.table_model import RowTableModel
from slmdesk.ui.common.tasks import BackgroundTasks
from slmdesk.ui.common.widgets import ErrorBanner
from slmdesk.ui.library.table_models import DownloadEvents


class LibrarySection(QWidget):
    """The state and helpers every page of the Models tab uses; one object holds them all."""

    use_requested = Signal(str)  # model id: switch the chat to it
    models_changed = Signal()  # registered models were added or removed
    status_changed = Signal(str)  # a short line for the window's status bar
    download_finished = Signal(str, str)  # download id, model id
    search_finished = Signal(int)  # number of repositories, -1 on error
    files_listed = Signal(int)
    imports_finished = Signal(int, int)  # added, refused
    scan_finished = Signal(int)
    idle_minutes_changed = Signal(int)

    db: sqlite_utils.Database
    repo: ModelRepository
    tasks: BackgroundTasks
    banner: ErrorBanner
    notice: QLabel
    summary: QLabel
    tabs: QTabWidget
    catalog: list[Any]
    catalog_error: str
    loaded_model_id: str | None
    downloads: DownloadManager | None
    installed: RowTableModel
    catalog_model: RowTableModel
    _populated: bool
    _entry_fits: dict[str, Any]
    _search_ticket: int
    _files_ticket: int
    _events: DownloadEvents
    _speeds: dict[str, tuple[float | None, float | None]]

    if TYPE_CHECKING:  # each page's own, used by the others (LibraryView has them all)
        def refresh_installed(self, *, only_if_shown_before: bool = False) -> None: ...
        def scan_folders(self) -> None: ...
        def reload_catalog(self) -> None: ...
        def start_download(self, repo_id: str, filename: str, *, revision: str | None,
                           display_name: str, licence: str | None,
                           expected_sha256: str | None) -> None: ...

    def models_dir(self) -> Path:
        settings = load_settings(self.db)
        return Path(settings.models_dir).expanduser() if settings.models_dir else (
            get_paths().default_models_dir)

    # One message at a time under the tab's top row: an error or a notice replaces the one
    # before (they never stack), and one shown with a ``cause`` ("download:<id>",
    # "model:<id>") is cleared by ``clear_message`` once that cause is gone.
    _message_cause: str | None = None

    def show_error(self, text: str, *, cause: str | None = None,
                   until: SignalInstance | None = None) -> None:
        self.notice.hide()
        self.banner.show_error(text, until=until)
        self._message_cause = cause

    def clear_error(self) -> None:
        self.banner.clear_error()

    def show_notice(self, text: str, *, cause: str | None = None) -> None:
        self.banner.clear_error()
        self.notice.setText(text)
        self.notice.show()
        self._message_cause = cause

    def clear_message(self, cause: str) -> None:
        """Hide the message if ``cause`` (or a cause starting with it) is what it is about."""
        current = self._message_cause
        if current is not None and (current == cause or current.startswith(cause)):
            self.banner.clear_error()
            self.notice.hide()
            self._message_cause = None

    def message_cause(self) -> str | None:
        """What the message shown now is about (None: nothing, or a message for good)."""
        return self._message_cause if (self.banner.isVisibleTo(self) or
                                       self.notice.isVisibleTo(self)) else None

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

    def _selected_or_ask(self, view: QTableView, proxy: QSortFilterProxyModel,
                         model: RowTableModel, ask: str) -> Any:
        """The selected row; with none, show ``ask`` until the selection changes."""
        row = self._selected(view, proxy, model)
        if row is None:
            self.show_error(ask, until=view.selectionModel().selectionChanged)
        return row

    def select_row(self, view: QTableView, proxy: QSortFilterProxyModel, row: int) -> None:
        """Select a source row in a table (used by tests and after refreshes)."""
        index = proxy.mapFromSource(proxy.sourceModel().index(row, 0))
        view.setCurrentIndex(index)
        view.selectRow(index.row())
