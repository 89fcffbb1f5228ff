"""Small widgets shared by the window's tabs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


class ErrorBanner(QLabel):
    """A hidden, word-wrapped plain-text label for messages the person must see."""

    def show_error(self, text: str) -> None:
        self.setText(text)
        self.show()

    def clear_error(self) -> None:
        self.clear()
        self.hide()


def error_banner(parent: QWidget, object_name: str) -> ErrorBanner:
    """A hidden error banner named ``object_name`` (shown by ``show_error``)."""
    banner = ErrorBanner("", parent)
    banner.setObjectName(object_name)
    banner.setWordWrap(True)
    banner.setTextFormat(Qt.TextFormat.PlainText)  # messages may quote file names or model text
    banner.setStyleSheet("QLabel { color: #b00020; padding: 4px; }")
    banner.hide()
    return banner
