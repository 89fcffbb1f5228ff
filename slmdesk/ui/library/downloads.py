"""The Models tab's download queue: the manager's threads, their progress and controls."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QVBoxLayout, QWidget

from slmdesk.catalog.downloads import DownloadManager
from slmdesk.errors import UserFacingError
from slmdesk.ui.common.tab_frame import ButtonSpec, add_push_buttons
from slmdesk.ui.common.table_model import Column, RowTableModel, human_bytes, human_duration
from slmdesk.ui.library.section import LibrarySection
from slmdesk.ui.library.table_models import (
    ACTIVE_STATES,
    VERDICT_COLOURS,
    database_path,
    download_fraction,
    progress_text,
    sortable_table,
    state_text,
)


class DownloadsSection(LibrarySection):
    """The Downloads page and the download manager it drives."""

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

    def _build_downloads(self) -> QWidget:
        page = QWidget(self)
        v = QVBoxLayout(page)
        self.download_rows = RowTableModel([
            Column("Model", lambda d: d.display_name or d.filename,
                   tooltip=lambda d: f"{d.repo_id} @ {d.revision[:12]}\n{d.dest_path}"),
            Column("State", lambda d: state_text(d),
                   tooltip=lambda d: d.error or "",
                   colour=lambda d: VERDICT_COLOURS["wont_fit"] if d.state == "failed" else None),
            Column("Progress", lambda d: progress_text(d), sort=lambda d: download_fraction(d)),
            Column("Speed", lambda d: self._speed_text(d.id)),
            Column("Time left", lambda d: self._eta_text(d.id)),
            Column("Details", lambda d: d.error or "", tooltip=lambda d: d.error or "",
                   colour=lambda d: VERDICT_COLOURS["wont_fit"] if d.state == "failed" else None),
        ], self)
        self.downloads_view, self.downloads_proxy = sortable_table(page, "downloads_view",
                                                           self.download_rows)
        header = self.downloads_view.horizontalHeader()
        for column in range(1, 4):  # state, progress, speed: always readable
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(0, 320)
        v.addWidget(self.downloads_view, 1)
        row = QHBoxLayout()
        self.pause_button, self.resume_button, self.cancel_button = add_push_buttons(
            row, page,
            ButtonSpec("Pause", name="pause_download_button",
                       clicked=lambda: self._download_action("pause")),
            ButtonSpec("Resume", name="resume_download_button",
                       clicked=lambda: self._download_action("resume")),
            ButtonSpec("Cancel", "Stop and delete the partial file", "cancel_download_button",
                       lambda: self._download_action("cancel")))
        row.addStretch(1)
        v.addLayout(row)
        return page

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
            if record.state != "failed":
                self.clear_message(f"download:{record.id}")  # its failure is over
            if record.state == "done":
                self.show_notice(f"{record.display_name or record.filename} is downloaded, "
                                 "verified (sha256) and ready to use.")
                self.refresh_installed()
                self.models_changed.emit()
                self.download_finished.emit(record.id, record.model_id or "")
            elif record.state == "failed":
                self.show_error(f"Download of {record.filename} failed: {record.error}",
                                cause=f"download:{record.id}")
            elif record.state == "cancelled":
                self.refresh_downloads()

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
