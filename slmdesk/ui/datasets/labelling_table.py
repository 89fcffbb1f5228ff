"""The examples table of the Data sets tab, which turns keys into labelling actions."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QTableView


class LabellingTable(QTableView):
    """The examples table: number keys label, 0 clears, A accepts the model's suggestion,
    Delete deletes and Ctrl+Z undoes; arrow keys move as in any table."""

    label_key_pressed = Signal(int)  # 1-9, or 0 to clear
    accept_key_pressed = Signal()
    delete_key_pressed = Signal()
    undo_key_pressed = Signal()

    def _action(self, event: QKeyEvent) -> tuple[str, int] | None:
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        key = event.key()
        if mods == Qt.KeyboardModifier.ControlModifier and key == Qt.Key.Key_Z:
            return ("undo", 0)
        if mods not in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier):
            return None
        if mods == Qt.KeyboardModifier.NoModifier and Qt.Key.Key_0 <= key <= Qt.Key.Key_9:
            return ("label", int(key) - int(Qt.Key.Key_0))
        if mods == Qt.KeyboardModifier.NoModifier and key == Qt.Key.Key_A:
            return ("accept", 0)
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            return ("delete", 0)
        return None

    def event(self, event: QEvent) -> bool:
        # Claim our keys before a window-wide shortcut (an Undo action) takes them.
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and self._action(event) is not None:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        action = self._action(event)
        if action is None:
            super().keyPressEvent(event)
            return
        kind, n = action
        if kind == "label":
            self.label_key_pressed.emit(n)
        elif kind == "accept":
            self.accept_key_pressed.emit()
        elif kind == "delete":
            self.delete_key_pressed.emit()
        else:
            self.undo_key_pressed.emit()
        event.accept()
