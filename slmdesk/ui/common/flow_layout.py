"""A layout that lines its widgets up left to right and wraps them onto the next line when
the width runs out (Qt's flow layout example), so a row of buttons never sets the window's
minimum width."""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLayout, QLayoutItem, QWidget, QWidgetItem


class FlowLayout(QLayout):
    """Widgets in reading order, wrapped to the width the layout gets; a widget wider than a
    whole line gets the line (an ElidedLabel then elides), and the widgets added with
    ``add_stretching`` share their line's spare width."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._stretching: set[int] = set()  # ids of the items that take a line's spare width
        self._spacing = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def add_widgets(self, *widgets: QWidget) -> FlowLayout:
        """Add these widgets in this order; returns the layout."""
        for widget in widgets:
            self.addWidget(widget)
        return self

    def add_stretching(self, widget: QWidget) -> None:
        """Add ``widget`` so that it takes the spare width of the line it lands on."""
        self.addWidget(widget)
        self._stretching.add(id(self._items[-1]))

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        if not 0 <= index < len(self._items):
            return None
        item = self._items.pop(index)
        self._stretching.discard(id(item))
        return item

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:
        """One line of everything."""
        width = sum(i.sizeHint().width() for i in self._visible()) + self._spacing * max(
            0, len(self._visible()) - 1)
        height = max((i.sizeHint().height() for i in self._visible()), default=0)
        return QSize(width, height) + self._margin_size()

    def minimumSize(self) -> QSize:
        """As wide as the widest single widget's minimum."""
        size = QSize()
        for item in self._visible():
            size = size.expandedTo(item.minimumSize())
        return size + self._margin_size()

    def _margin_size(self) -> QSize:
        m: QMargins = self.contentsMargins()
        return QSize(m.left() + m.right(), m.top() + m.bottom())

    def _visible(self) -> list[QLayoutItem]:
        return [i for i in self._items if not (isinstance(i, QWidgetItem) and i.isEmpty())]

    def _arrange(self, rect: QRect, *, move: bool) -> int:
        """Place (or only measure) the items in ``rect``; returns the height they take."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line_height = area.x(), area.y(), 0
        line: list[tuple[QLayoutItem, int]] = []

        def finish_line() -> None:
            if move:
                offset = area.x()
                used = sum(w for _i, w in line) + self._spacing * (len(line) - 1)
                takers = [i for i, _w in line if id(i) in self._stretching]
                spare = max(0, area.width() - used) // len(takers) if takers else 0
                for item, width in line:
                    width += spare if id(item) in self._stretching else 0
                    height = min(item.sizeHint().height(), line_height)
                    top = y + (line_height - height) // 2
                    item.setGeometry(QRect(QPoint(offset, top), QSize(width, height)))
                    offset += width + self._spacing
            line.clear()

        for item in self._visible():
            hint = item.sizeHint()
            width = max(min(hint.width(), area.width()), item.minimumSize().width())
            if line and x + width > area.right() + 1:
                finish_line()
                x, y, line_height = area.x(), y + line_height + self._spacing, 0
            line.append((item, width))
            x += width + self._spacing
            line_height = max(line_height, hint.height())
        finish_line()
        return y + line_height - rect.y() + m.bottom()


def captioned(caption: str, field: QWidget, parent: QWidget) -> QWidget:
    """``field`` after its caption, as one widget, so that a flow keeps them on one line."""
    pair = QWidget(parent)
    row = QHBoxLayout(pair)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(QLabel(caption, pair))
    row.addWidget(field, 1)
    return pair
