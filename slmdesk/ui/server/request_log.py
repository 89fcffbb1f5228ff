"""The Server tab's request log: one row per answered request, with its status and timing."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor

from slmdesk.ui.common.table_model import Column, RowTableModel
from slmdesk.ui.common.tones import tone_colour

if TYPE_CHECKING:
    from slmdesk.server.security import RequestRecord


def _status_colour(record: RequestRecord) -> QColor | None:
    return tone_colour("error") if record.status >= 400 else None


def _took(record: RequestRecord) -> str:
    return f"{record.seconds * 1000:.0f} ms" if record.seconds < 10 else f"{record.seconds:.1f} s"


COLUMNS = (
    Column("Time", lambda r: time.strftime("%H:%M:%S", time.localtime(r.at)),
           sort=lambda r: r.at),
    Column("Method", lambda r: r.method),
    Column("Path", lambda r: r.path),
    Column("Status", lambda r: str(r.status), sort=lambda r: r.status, colour=_status_colour),
    Column("Took", _took, sort=lambda r: r.seconds),
)


class RequestLogModel(RowTableModel):
    """The requests the server answered, oldest first; ``show`` adds only what is new."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(COLUMNS, parent)

    def show(self, records: list[RequestRecord]) -> None:
        """Show ``records``: appends the new ones, or resets when the log was cleared."""
        n = len(self.rows)
        if len(records) >= n and records[:n] == self.rows:
            for record in records[n:]:
                self.append_row(record)
        else:
            self.set_rows(records)
