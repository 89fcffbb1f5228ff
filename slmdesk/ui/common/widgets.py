"""Small widgets shared by the window's tabs: the error banner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtWidgets import QLabel, QWidget

from slmdesk.ui.common.labels import let_layout_decide_width
from slmdesk.ui.common.tones import tone_style


class ErrorBanner(QLabel):
    """A hidden, word-wrapped plain-text label for messages the person must see; ``shown``
    tells whoever listens (a tab's ``error_shown``, a dialog's ``failed``) what it showed."""

    shown = Signal(str)
    _cause: tuple[SignalInstance, Callable[..., None]] | None = None

    def show_error(self, text: str, *, until: SignalInstance | None = None) -> None:
        """Show ``text`` (in place of any message before it); with ``until``, a signal that
        says its cause is gone (a reply ended, the selection changed), only until that signal
        comes, so the message never outlives its cause."""
        self._forget_cause()
        self.setText(text)
        self.show()
        if until is not None:
            def cause_gone(*_args: Any) -> None:
                self.clear_error()

            until.connect(cause_gone)
            self._cause = (until, cause_gone)
        self.shown.emit(text)

    def clear_error(self) -> None:
        self._forget_cause()
        self.clear()
        self.hide()

    def _forget_cause(self) -> None:
        if self._cause is not None:
            signal, slot = self._cause
            self._cause = None
            signal.disconnect(slot)


def error_banner(parent: QWidget, object_name: str, *, padded: bool = True) -> ErrorBanner:
    """A hidden error banner named ``object_name`` (shown by ``show_error``), in the
    palette's readable error colour, wrapped to the width its layout gives it."""
    banner = ErrorBanner("", parent)
    banner.setObjectName(object_name)
    let_layout_decide_width(banner)
    style = tone_style("error", "padding: 4px; " if padded else "")
    banner.setTextFormat(Qt.TextFormat.PlainText)  # messages may quote file names or model text
    banner.setStyleSheet(style)
    banner.hide()
    return banner
