"""Small widgets shared by the window's tabs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


def error_banner(parent: QWidget, object_name: str) -> QLabel:
    """A hidden, word-wrapped plain-text label for messages the person must see."""
    banner = QLabel("", parent)
    banner.setObjectName(object_name)
    banner.setWordWrap(True)
    banner.setTextFormat(Qt.TextFormat.PlainText)  # messages may quote file names or model text
    banner.setStyleSheet("QLabel { color: #b00020; padding: 4px; }")
    banner.hide()
    return banner
