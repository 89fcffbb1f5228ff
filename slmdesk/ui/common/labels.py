"""Labels that never dictate their window's width: one line that elides (the whole text in
its tooltip), or wrapped text whose width the layout decides."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MIN_CHARS = 6  # an elided label is never narrower than this many average characters


class ElidedLabel(QLabel):
    """A one-line plain-text label that shortens its text with "…" to the width it gets;
    ``text()`` stays whole, and the tooltip shows the whole text when it is cut (unless the
    label was given a tooltip of its own)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *,
                 elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._elide = elide
        self._own_tip = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(" ".join(text.split("\n")))
        self._update_tip()

    def setToolTip(self, tip: str) -> None:
        self._own_tip = tip
        self._update_tip()

    def is_elided(self) -> bool:
        """Whether the text is wider than the label, so it shows cut."""
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        floor = self.fontMetrics().averageCharWidth() * MIN_CHARS
        return QSize(min(hint.width(), floor), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_tip()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._update_tip()

    def paintEvent(self, event: QPaintEvent) -> None:
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(self.text(), self._elide, rect.width())
        painter = QPainter(self)
        self.style().drawItemText(painter, rect, int(self.alignment()), self.palette(),
                                  self.isEnabled(), shown, self.foregroundRole())
        painter.end()

    def _update_tip(self) -> None:
        # A tooltip of the label's own (which says more than the text) wins.
        super().setToolTip(self._own_tip or (self.text() if self.is_elided() else ""))


def let_layout_decide_width(label: QLabel) -> QLabel:
    """Word-wrap ``label`` and make its layout ignore the width of its text, so a long
    message wraps instead of widening the window. Returns the label."""
    label.setWordWrap(True)
    policy = label.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    policy.setHeightForWidth(True)
    label.setSizePolicy(policy)
    return label


def wrapping_label(text: str, parent: QWidget | None = None, *, name: str = "") -> QLabel:
    """A word-wrapped label whose text never sets the window's width."""
    label = QLabel(text, parent)
    if name:
        label.setObjectName(name)
    return let_layout_decide_width(label)

