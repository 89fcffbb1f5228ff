"""A conversation view that shows model output as text and never loads any resource."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextBrowser, QWidget

from slmdesk.store.repositories import Message

_ROLE_LABEL = {"user": "You", "assistant": "Assistant", "system": "System"}


class SafeTextBrowser(QTextBrowser):
    """A QTextBrowser that refuses every resource (images, style sheets, files, URLs)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        return None


class TranscriptView(SafeTextBrowser):
    """Shows a conversation; the last reply can grow as text streams in."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self._follow = True
        self.verticalScrollBar().valueChanged.connect(self._on_scroll)

    def _on_scroll(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 4

    def show_messages(self, messages: list[Message]) -> None:
        self.clear()
        for m in messages:
            self.add_message(m.role, m.content, finish_reason=m.finish_reason)
        self._scroll_to_end()

    def add_message(self, role: str, text: str, *, finish_reason: str | None = None) -> None:
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not self.document().isEmpty():
            cursor.insertBlock()
        label = _ROLE_LABEL.get(role, role)
        cursor.insertHtml(f"<p><b>{html.escape(label)}</b></p>")
        cursor.insertBlock()
        # insertText never interprets markup: model output stays plain text.
        cursor.insertText(text, QTextCharFormat())
        if finish_reason and finish_reason not in ("stop",):
            cursor.insertBlock()
            cursor.insertHtml(f"<p><i>({html.escape(finish_reason)})</i></p>")
        self._scroll_to_end()

    def append_text(self, text: str) -> None:
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text, QTextCharFormat())
        self._scroll_to_end()

    def append_note(self, note: str) -> None:
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertBlock()
        cursor.insertHtml(f"<p><i>({html.escape(note)})</i></p>")
        self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        if self._follow:
            bar = self.verticalScrollBar()
            bar.setValue(bar.maximum())
