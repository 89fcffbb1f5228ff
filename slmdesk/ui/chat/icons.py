"""Icons the Chat tab draws itself with QPainter, so they show without any emoji font."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPalette, QPixmap

ICON_SIZES = (16, 24, 32, 48)


def _thumb_path() -> QPainterPath:
    """A thumbs-up hand on a 16×16 grid: cuff on the left, palm, thumb raised."""
    path = QPainterPath()
    path.addRoundedRect(QRectF(1.0, 7.0, 3.0, 8.0), 0.8, 0.8)  # the cuff
    hand = QPainterPath()
    hand.moveTo(5.0, 7.5)
    hand.lineTo(7.6, 1.6)
    hand.quadTo(9.8, 1.2, 9.6, 3.6)
    hand.lineTo(9.0, 6.4)
    hand.lineTo(13.4, 6.4)
    hand.quadTo(15.2, 6.6, 14.8, 8.4)
    hand.lineTo(13.6, 13.6)
    hand.quadTo(13.2, 15.0, 11.8, 15.0)
    hand.lineTo(5.0, 15.0)
    hand.closeSubpath()
    return path.united(hand)


def _draw(size: int, colour: QColor, *, down: bool) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 16.0, size / 16.0)
    if down:  # the same hand, upside down
        painter.translate(QPointF(0.0, 16.0))
        painter.scale(1.0, -1.0)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawPath(_thumb_path())
    painter.end()
    return pixmap


def thumb_icon(palette: QPalette, *, down: bool = False) -> QIcon:
    """👍 (or 👎 with ``down``) in the palette's text colour; dimmed when disabled."""
    icon = QIcon()
    normal = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
    for size in ICON_SIZES:
        icon.addPixmap(_draw(size, normal, down=down), QIcon.Mode.Normal)
        icon.addPixmap(_draw(size, disabled, down=down), QIcon.Mode.Disabled)
    return icon
