"""Qt adapters for the model library: the fit verdict colours, and the bridge that
carries the download manager's events (from its threads) to the GUI thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor

VERDICT_COLOURS = {"fits": QColor("#2e7d32"), "tight": QColor("#b26a00"),
                   "wont_fit": QColor("#b00020")}


class DownloadEvents(QObject):
    """Re-emits the download manager's events on the GUI thread.

    The manager calls ``listener`` from its own threads; a signal emitted there reaches
    slots of objects living on the GUI thread through Qt's queued connection.
    """

    event_received = Signal(object)  # DownloadEvent

    def listener(self, event: Any) -> None:
        self.event_received.emit(event)
