"""The message box under the transcript: Enter sends, a dropped text file inserts its text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QPlainTextEdit, QWidget

DROP_LIMIT_BYTES = 5_000_000
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".csv", ".json", ".log", ".py"}


class Composer(QPlainTextEdit):
    """Enter sends, Shift+Enter starts a new line; a dropped text file inserts its text,
    a dropped .gguf file is handed on (``model_files_dropped``) to be imported."""

    send_requested = Signal()
    model_files_dropped = Signal(list)  # paths of .gguf files
    drop_refused = Signal(str)  # why a dropped file was not inserted

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.setPlaceholderText("Message the model…  (Enter sends, Shift+Enter for a new line)")
        self.setAcceptDrops(True)

    def keyPressEvent(self, event: Any) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.send_requested.emit()
            return
        super().keyPressEvent(event)

    def canInsertFromMimeData(self, source: Any) -> bool:
        return bool(source.hasUrls()) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: Any) -> None:
        files = [u.toLocalFile() for u in source.urls() if u.isLocalFile()] if (
            source.hasUrls()) else []
        if not files:
            super().insertFromMimeData(source)
            return
        models = [f for f in files if f.lower().endswith(".gguf")]
        if models:
            self.model_files_dropped.emit(models)
        for name in files:
            if name not in models:
                self.insert_file(name)

    def insert_file(self, name: str) -> None:
        path = Path(name)
        if path.suffix.lower() not in TEXT_SUFFIXES:
            self.drop_refused.emit(f"{path.name}: only text files (.txt, .md, …) can be dropped.")
            return
        try:
            if path.stat().st_size > DROP_LIMIT_BYTES:
                self.drop_refused.emit(f"{path.name} is larger than 5 MB.")
                return
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            self.drop_refused.emit(f"Cannot read {path.name}: {exc.strerror or exc}")
            return
        self.insertPlainText(text)
