"""The download queue's rows: the ``DownloadRecord`` dataclass, its states and its repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlite_utils

from slmdesk.ids import new_id, utc_now
from slmdesk.json_data import JsonFields
from slmdesk.store.rows import from_row, one_row, placeholders

# Persisted states: lowercase, never reused.
QUEUED: Final = "queued"
RUNNING: Final = "running"
PAUSED: Final = "paused"
VERIFYING: Final = "verifying"
DONE: Final = "done"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATES: Final = (QUEUED, RUNNING, PAUSED, VERIFYING, DONE, FAILED, CANCELLED)
FINAL_STATES: Final = frozenset({DONE, FAILED, CANCELLED})


@dataclass(frozen=True)
class DownloadRecord(JsonFields):
    """One row of the ``downloads`` table."""

    id: str
    repo_id: str
    filename: str
    revision: str
    dest_path: str
    part_path: str
    size_bytes: int | None
    sha256: str | None
    etag: str | None
    downloaded_bytes: int
    state: str
    error: str | None
    attempts: int
    display_name: str | None
    licence: str | None
    model_id: str | None
    created_at: str
    updated_at: str

    @property
    def fraction(self) -> float | None:
        """Share of the file on disk (0..1), or None while the size is unknown."""
        if not self.size_bytes:
            return None
        return min(1.0, self.downloaded_bytes / self.size_bytes)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def label(self) -> str:
        return self.display_name or f"{self.repo_id}/{self.filename}"

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "fraction": self.fraction}


class DownloadRepository:
    """The rows of the ``downloads`` table; each write is its own small transaction."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def _exists(self) -> bool:
        # A database opened without migrating (a CLI reading an old file) may lack it.
        return "downloads" in self.db.table_names()

    def get(self, download_id: str) -> DownloadRecord:
        return from_row(DownloadRecord, one_row(
            self.db, "downloads", "id = ?", [download_id], f"No download with id {download_id}."
        ))

    def update(self, download_id: str, **values: Any) -> DownloadRecord:
        """Change some columns of a download (its ``updated_at`` too) and return it."""
        values["updated_at"] = utc_now()
        self.db.table("downloads").update(download_id, values)
        return self.get(download_id)

    def add(
        self, *, repo_id: str, filename: str, revision: str, dest_path: str, part_path: str,
        size_bytes: int | None, sha256: str | None, display_name: str | None,
        licence: str | None,
    ) -> DownloadRecord:
        """A new queued download, nothing fetched yet."""
        now = utc_now()
        download_id = new_id()
        self.db.table("downloads").insert({
            "id": download_id, "repo_id": repo_id, "filename": filename,
            "revision": revision, "dest_path": dest_path, "part_path": part_path,
            "size_bytes": size_bytes, "sha256": sha256, "etag": None,
            "downloaded_bytes": 0, "state": QUEUED, "error": None, "attempts": 0,
            "display_name": display_name, "licence": licence, "model_id": None,
            "created_at": now, "updated_at": now,
        })
        return self.get(download_id)

    def latest_for_file(self, repo_id: str, filename: str) -> DownloadRecord | None:
        """The newest download of a hub file that was not cancelled."""
        rows = self.db.table("downloads").rows_where(
            "repo_id = ? AND filename = ? AND state != ?", [repo_id, filename, CANCELLED],
            order_by="created_at DESC", limit=1,
        )
        return next((from_row(DownloadRecord, r) for r in rows), None)

    def all(self) -> list[DownloadRecord]:
        """Every download, oldest first."""
        return [from_row(DownloadRecord, r)
                for r in self.db.table("downloads").rows_where(order_by="created_at, id")]

    def in_states(self, states: Sequence[str]) -> list[DownloadRecord]:
        """The downloads in any of ``states``, oldest first."""
        return [
            from_row(DownloadRecord, r)
            for r in self.db.table("downloads").rows_where(
                f"state IN ({placeholders(states)})", list(states), order_by="created_at, id"
            )
        ]

    def for_model(self, model_id: str, dest_path: str) -> list[DownloadRecord]:
        """The downloads that registered this model or fetch to its file."""
        if not self._exists():
            return []
        return [from_row(DownloadRecord, r) for r in self.db.table("downloads").rows_where(
            "model_id = ? OR dest_path = ?", [model_id, dest_path])]

    def part_paths(self) -> list[str]:
        """The partial-file path of every download (set or not)."""
        if not self._exists():
            return []
        return [str(p) for (p,) in self.db.execute("SELECT part_path FROM downloads") if p]

    def delete(self, download_ids: Sequence[str]) -> None:
        with self.db.atomic():
            for download_id in download_ids:
                self.db.table("downloads").delete(download_id)

