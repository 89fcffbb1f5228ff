"""Export a conversation to Markdown or JSON and import one from JSON, from the File menu."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import sqlite_utils
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from slmdesk.errors import UserFacingError
from slmdesk.store.chats import Conversation
from slmdesk.transfer import export_json, export_markdown, import_json
from slmdesk.ui.common.tasks import BackgroundTasks


class ConversationFiles(QObject):
    """Builds an export on the GUI thread (it owns the database) and writes it on the
    thread pool; reads an import file and stores the conversation it holds."""

    failed = Signal(str)  # a message the person must see
    imported = Signal(str)  # the new conversation's id
    exported = Signal(str)  # the path written

    def __init__(self, db: sqlite_utils.Database,
                 current: Callable[[], Conversation | None], parent: QObject | None = None
                 ) -> None:
        super().__init__(parent)
        self.db = db
        self._current = current
        self.tasks = BackgroundTasks(self)

    def export_text(self, fmt: str) -> str:
        conversation = self._current()
        assert conversation is not None
        if fmt == "json":
            return json.dumps(export_json(self.db, conversation.id), indent=2,
                              ensure_ascii=False) + "\n"
        return export_markdown(self.db, conversation.id) + "\n"

    def export_to(self, path: str, fmt: str) -> None:
        """Build the export here (the GUI thread owns the database), write it elsewhere."""
        text = self.export_text(fmt)

        def then(_result: object, error: str) -> None:
            if error:
                self.failed.emit(error)
            else:
                self.exported.emit(path)

        self.tasks.start(lambda: Path(path).write_text(text, encoding="utf-8"),
                         f"write {path}", then)

    def export_dialog(self, fmt: str, parent: QWidget) -> None:
        conversation = self._current()
        if conversation is None:
            self.failed.emit("Open a conversation to export it.")
            return
        suffix = "json" if fmt == "json" else "md"
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in conversation.title)
        path, _ = QFileDialog.getSaveFileName(
            parent, "Export conversation", f"{safe.strip() or 'conversation'}.{suffix}",
            "JSON (*.json)" if fmt == "json" else "Markdown (*.md)")
        if path:
            self.export_to(path, fmt)

    def import_file(self, path: str) -> None:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            conv = import_json(self.db, data)
        except (OSError, ValueError) as exc:
            self.failed.emit(f"Cannot import {Path(path).name}: {exc}")
            return
        except UserFacingError as exc:
            self.failed.emit(exc.message)
            return
        self.imported.emit(conv.id)

    def import_dialog(self, parent: QWidget) -> None:
        path, _ = QFileDialog.getOpenFileName(parent, "Import conversation", "", "JSON (*.json)")
        if path:
            self.import_file(path)
