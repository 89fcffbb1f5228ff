"""The Models tab's Catalog page: the curated models with their fit, ready to download."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from slmdesk.catalog import curated as catalog_mod
from slmdesk.catalog import fit as fit_mod
from slmdesk.errors import UserFacingError
from slmdesk.ui.common.table_model import Column, RowTableModel, human_bytes
from slmdesk.ui.library.section import LibrarySection
from slmdesk.ui.library.table_models import fit_column, sortable_table


class CatalogSection(LibrarySection):
    """The Catalog page."""

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
            fit_column(self._entry_fit, note=lambda e: e.verification_note),
            Column("Installed", lambda e: "✓" if self._entry_installed(e) else ""),
            Column("Good at", lambda e: getattr(e, "good_at", "") or ""),
        ], self)
        self.catalog_view, self.catalog_proxy = sortable_table(page, "catalog_view",
                                                               self.catalog_model)
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
        """The installed model's estimate when this entry is installed (the same figure as
        its Installed row, measured once it was loaded), else the entry's own."""
        for row in self.installed.rows:
            if row.entry is not None and row.entry.id == entry.id and row.estimate is not None:
                return row.estimate
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
        entry = self._selected_or_ask(self.catalog_view, self.catalog_proxy, self.catalog_model,
                                      "Pick a model in the catalog first.")
        if entry is None:
            return
        self.start_download(entry.repo_id, entry.filename, revision=entry.revision,
                            display_name=f"{entry.name}", licence=entry.licence,
                            expected_sha256=entry.sha256)
