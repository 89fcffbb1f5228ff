"""Qt adapters for the model library: table rows and cell texts, the fit verdict colours and
the Fit column, the sortable table views, and the bridge that carries the download manager's events
(from its threads) to the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils
from PySide6.QtCore import QObject, QSortFilterProxyModel, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from slmdesk.store.models import ModelRecord
from slmdesk.ui.common.table_model import SORT_ROLE, Column, RowTableModel, human_bytes
from slmdesk.ui.common.tones import ToneColours

VERDICT_COLOURS = ToneColours({"fits": "ok", "tight": "warn", "wont_fit": "error"})


class DownloadEvents(QObject):
    """Re-emits the download manager's events on the GUI thread.

    The manager calls ``listener`` from its own threads; a signal emitted there reaches
    slots of objects living on the GUI thread through Qt's queued connection.
    """

    event_received = Signal(object)  # DownloadEvent

    def listener(self, event: Any) -> None:
        self.event_received.emit(event)


ACTIVE_STATES = ("queued", "running", "verifying")


def database_path(db: sqlite_utils.Database) -> Path:
    """The file behind ``db`` (the download manager opens its own connection to it)."""
    for _seq, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file)
    raise RuntimeError("the database has no file")


def verdict_cell(estimate: Any) -> str:
    return "?" if estimate is None else str(estimate.cell)


def verdict_colour(estimate: Any) -> QColor | None:
    return None if estimate is None else VERDICT_COLOURS.get(estimate.verdict)


def fit_column(estimate_of: Callable[[Any], Any], *, sorted_by_bytes: bool = True,
               note: Callable[[Any], str] | None = None) -> Column:
    """The Fit column of rows whose fit estimate ``estimate_of`` gives (None: not known): the
    verdict in its colour, the estimate's sentence (and the row's ``note``) as tooltip, sorted
    by the bytes the model needs (by the verdict's text when not ``sorted_by_bytes``)."""

    def tooltip(row: Any) -> str:
        sentence = fit_sentence(estimate_of(row))
        extra = "" if note is None else note(row)
        return sentence + "\n" + extra if extra else sentence

    return Column(
        "Fit", lambda row: verdict_cell(estimate_of(row)),
        sort=(lambda row: getattr(estimate_of(row), "total_bytes", 0)) if sorted_by_bytes
        else None,
        tooltip=tooltip, colour=lambda row: verdict_colour(estimate_of(row)))


def sortable_table(parent: QWidget, name: str,
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


class InstalledRow:
    """A table row for an installed model: the record with its fit estimate."""

    def __init__(self, record: ModelRecord, estimate: Any, entry: Any) -> None:
        self.record, self.estimate, self.entry = record, estimate, entry


class HubFileRow:
    """A hub file with the engine's verdict on its architecture."""

    def __init__(self, file: Any, supported: bool, message: str) -> None:
        self.file, self.supported, self.message = file, supported, message
        self.key = f"{file.repo_id}/{file.filename}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def fit_sentence(estimate: Any) -> str:
    return "" if estimate is None else str(estimate.sentence)


def params_text(n: int | None) -> str:
    if not n:
        return ""
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def source_text(record: ModelRecord) -> str:
    return {"download": "downloaded", "import": "imported", "starter": "bundled",
            "discovered": "found"}.get(record.source, record.source)


def load_note(record: ModelRecord) -> str:
    """Why the figure is an estimate although the model was loaded: the last load's memory
    could not be told apart from other memory use
    (slmdesk.engine.llama_engine.meaningful_growth)."""
    if record.last_loaded_at and not record.measured_memory_bytes:
        return "The last load could not be measured (other memory use changed meanwhile)."
    return ""


def found_where(f: Any) -> str:
    if getattr(f, "repo_id", None):
        return f"Hugging Face cache · {f.repo_id}"
    return str(Path(f.path).parent)


def arch_text(f: Any) -> str:
    arch = getattr(f, "architecture", None) or "?"
    return arch if f.supported else f"{arch}: needs a newer engine"


def arch_bad(f: Any) -> bool:
    return not f.supported


def download_fraction(d: Any) -> float:
    return d.downloaded_bytes / d.size_bytes if d.size_bytes else 0.0


def progress_text(d: Any) -> str:
    if d.size_bytes:
        return (f"{100 * download_fraction(d):.0f} % · {human_bytes(d.downloaded_bytes)} of "
                f"{human_bytes(d.size_bytes)}")
    return human_bytes(d.downloaded_bytes)


def state_text(d: Any) -> str:
    return str({"queued": "waiting", "running": "downloading", "paused": "paused",
            "verifying": "checking sha256", "done": "done ✓", "failed": "failed",
            "cancelled": "cancelled"}.get(d.state, d.state)) + (
        f" (try {d.attempts})" if d.state == "running" and d.attempts > 1 else "")


