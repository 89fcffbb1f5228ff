"""The Models tab's hub search: repositories matching a query, their GGUF files and fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from slmdesk.catalog import fit as fit_mod
from slmdesk.catalog import hub as hub_mod
from slmdesk.errors import UserFacingError
from slmdesk.ui.common.tab_frame import line_edit, push_button, status_label
from slmdesk.ui.common.table_model import Column, RowTableModel, human_bytes
from slmdesk.ui.library.section import LibrarySection
from slmdesk.ui.library.table_models import (
    VERDICT_COLOURS,
    HubFileRow,
    arch_bad,
    arch_text,
    fit_column,
    sortable_table,
)


class HubSection(LibrarySection):
    """The Search the Hub page."""

    def _build_hub(self) -> QWidget:
        page = QWidget(self)
        v = QVBoxLayout(page)
        note = QLabel("Searching and downloading are the only things that use the network.",
                      page)
        note.setWordWrap(True)
        v.addWidget(note)
        row = QHBoxLayout()
        self.search_box = line_edit(page, "hub_search_box",
                                    placeholder="Search GGUF models on the Hugging Face Hub "
                                    "(e.g. qwen2.5 0.5b instruct)")
        self.search_box.returnPressed.connect(self.search_hub)
        self.sort_box = QComboBox(page)
        self.sort_box.setObjectName("hub_sort")
        for label, key in (("Most downloaded", "downloads"), ("Most liked", "likes"),
                           ("Recently updated", "recent")):
            self.sort_box.addItem(label, key)
        self.search_button = push_button(
            "Search", "", page, name="hub_search_button", clicked=self.search_hub)
        self.search_cancel_button = push_button(
            "Cancel", "Stop waiting for the Hub", page, name="hub_search_cancel_button",
            clicked=self.cancel_hub_request)
        self.search_cancel_button.hide()
        row.addWidget(self.search_box, 1)
        row.addWidget(self.sort_box)
        row.addWidget(self.search_button)
        row.addWidget(self.search_cancel_button)
        v.addLayout(row)
        self.hub_status = status_label(page, "hub_status")
        v.addWidget(self.hub_status)
        split = QSplitter(Qt.Orientation.Vertical, page)
        self.repos = RowTableModel([
            Column("Repository", lambda r: r.repo_id + (" (gated)" if r.gated else "")),
            Column("Downloads", lambda r: f"{r.downloads:,}", sort=lambda r: r.downloads),
            Column("Likes", lambda r: f"{r.likes:,}", sort=lambda r: r.likes),
            Column("Updated", lambda r: (r.last_modified or "")[:10]),
        ], self)
        self.repos_view, self.repos_proxy = sortable_table(split, "hub_repos", self.repos)
        self.repos_view.selectionModel().currentRowChanged.connect(
            lambda *_: self.list_selected_repo())
        self.files = RowTableModel([
            Column("File", lambda f: f.filename),
            Column("Quant", lambda f: f.quantization or ""),
            Column("Size", lambda f: human_bytes(f.size_bytes), sort=lambda f: f.size_bytes or 0),
            fit_column(self._file_fit, sorted_by_bytes=False),
            Column("Engine", lambda f: arch_text(f),
                   colour=lambda f: VERDICT_COLOURS["wont_fit"] if arch_bad(f) else None),
        ], self)
        self.files_view, self.files_proxy = sortable_table(split, "hub_files", self.files)
        split.addWidget(self.repos_view)
        split.addWidget(self.files_view)
        v.addWidget(split, 1)
        row2 = QHBoxLayout()
        self.hub_download_button = push_button(
            "Download", "", page, name="hub_download_button", clicked=self.download_selected_file)
        row2.addWidget(self.hub_download_button)
        row2.addStretch(1)
        v.addLayout(row2)
        self._file_fits: dict[str, Any] = {}
        return page

    def search_hub(self) -> None:
        query = self.search_box.text().strip()
        if not query:
            return
        sort = self.sort_box.currentData()
        then = self._hub_request("_search_ticket", f"Searching the Hub for “{query}”…",
                                 self.search_finished, self._show_repos)
        self.tasks.start(lambda: hub_mod.search_models(query, sort=sort), "search the Hub", then)

    def _show_repos(self, repos: Any) -> None:
        self.repos.set_rows(repos)
        self.files.set_rows([])
        self.repos_view.resizeColumnsToContents()
        self.hub_status.setText(f"{len(repos)} GGUF repositories. Pick one to see its files."
                                if repos else "Nothing found.")
        self.search_finished.emit(len(repos))

    def list_selected_repo(self) -> None:
        repo = self._selected(self.repos_view, self.repos_proxy, self.repos)
        if repo is None:
            return
        then = self._hub_request("_files_ticket", f"Listing the GGUF files of {repo.repo_id}…",
                                 self.files_listed, lambda result: self._show_files(repo, *result))
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

        self.tasks.start(work, f"list the files of {repo.repo_id}", then)

    def _show_files(self, repo: Any, revision: str, checked: Any) -> None:
        self._file_fits = {}
        rows = []
        for f, ok, message, estimate in checked:
            f_row = HubFileRow(f, ok, message)
            self._file_fits[f_row.key] = estimate
            rows.append(f_row)
        self.files.set_rows(rows)
        self.files_view.resizeColumnsToContents()
        self.hub_status.setText(
            f"{repo.repo_id} at {revision[:12]}: {len(rows)} GGUF file(s).")
        self.files_listed.emit(len(rows))

    def _hub_request(self, ticket_name: str, status: str, failed: Any,
                     use: Callable[[Any], None]) -> Callable[[Any, str], None]:
        """Wait for a new Hub answer (``status`` shown, busy, a new ticket in ``ticket_name``);
        the callback drops a stale answer (a later request or a cancel), shows an error
        (``failed`` emits -1), or hands the result to ``use``."""
        self.hub_status.setText(status)
        self._set_hub_busy(True)
        ticket = getattr(self, ticket_name) + 1
        setattr(self, ticket_name, ticket)

        def then(result: Any, error: str) -> None:
            if ticket != getattr(self, ticket_name):
                return
            self._set_hub_busy(False)
            if error:
                self.hub_status.setText(error)
                failed.emit(-1)
                return
            use(result)

        return then

    def _set_hub_busy(self, busy: bool) -> None:
        self.search_button.setEnabled(not busy)
        self.search_cancel_button.setVisible(busy)

    def cancel_hub_request(self) -> None:
        """Stop waiting for the search or file listing under way; its answer is dropped."""
        self._search_ticket += 1
        self._files_ticket += 1
        self._set_hub_busy(False)
        self.hub_status.setText("Cancelled.")
        self.search_finished.emit(-1)

    def _file_fit(self, f: Any) -> Any:
        return self._file_fits.get(f.key)

    def download_selected_file(self) -> None:
        row = self._selected_or_ask(self.files_view, self.files_proxy, self.files,
                                    "Pick a file of a repository first.")
        if row is None:
            return
        if not row.supported:
            self.show_error(row.message)
            return
        f = row.file
        name = f"{f.repo_id.split('/')[-1]} ({f.quantization or f.filename})"
        self.start_download(f.repo_id, f.filename, revision=f.revision, display_name=name,
                            licence=None, expected_sha256=f.sha256)
