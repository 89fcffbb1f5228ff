"""The Models tab: installed models with details and fit, models found on this computer,
the curated catalog, hub search, and the download queue (one page per module here).

Network, hashing and folder walks run on the thread pool (BackgroundTasks); the download
manager runs its own threads and writes through its own database connection. This view
reads and writes the database only on the GUI thread.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from slmdesk.catalog.downloads import DownloadManager
from slmdesk.store.models import ModelRepository
from slmdesk.ui.common.tab_frame import push_button
from slmdesk.ui.common.tasks import BackgroundTasks
from slmdesk.ui.common.widgets import error_banner
from slmdesk.ui.library.catalog import CatalogSection
from slmdesk.ui.library.downloads import DownloadsSection
from slmdesk.ui.library.hub import HubSection
from slmdesk.ui.library.installed import InstalledSection
from slmdesk.ui.library.settings import SettingsSection
from slmdesk.ui.library.table_models import DownloadEvents


class LibraryView(InstalledSection, CatalogSection, HubSection, DownloadsSection,
                  SettingsSection):
    """Find, download, import, inspect, remove and pick models."""

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

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._populated:
            self.refresh_installed()
        if not self._scanned:
            # Look for model files on disk the first time the tab is shown, not at start-up.
            self._scanned = True
            self.scan_folders()

    def look_for_models(self) -> None:
        """Scan the folders now ("Find on this computer"): the tab's first showing, which
        usually follows, does not scan them a second time."""
        self._scanned = True
        self.scan_folders()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.summary = QLabel("", self)
        self.summary.setObjectName("library_summary")
        top.addWidget(self.summary, 1)
        self.import_button = push_button(
            "Import GGUF…",
            "Register a .gguf file where it is (no copy). "
            "You can also drop .gguf files onto the window.",
            self, name="import_model_button", clicked=self.import_dialog)
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
