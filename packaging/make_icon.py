"""Draw resources/icons/slmdesk.png (256 px), the raster twin of slmdesk.svg.

Run once after changing the design: ``QT_QPA_PLATFORM=offscreen python packaging/make_icon.py``.
"""

from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPainterPath

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons" / "slmdesk.png"


def main() -> None:
    app = QGuiApplication([])  # noqa: F841 - QPainter needs a GUI application
    img = QImage(256, 256, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#2f5d8a"))
    p.drawRoundedRect(QRectF(8, 8, 240, 240), 48, 48)
    bubble = QPainterPath()
    bubble.addRoundedRect(QRectF(40, 64, 176, 112), 16, 16)
    tail = QPainterPath()
    tail.moveTo(76, 170)
    tail.lineTo(116, 170)
    tail.lineTo(76, 212)
    tail.closeSubpath()
    p.setBrush(QColor("#ffffff"))
    p.drawPath(bubble.united(tail))
    for y, w, colour in ((90, 112, "#2f5d8a"), (114, 80, "#4f9bd9"), (138, 96, "#2f5d8a")):
        p.setBrush(QColor(colour))
        p.drawRoundedRect(QRectF(72, y, w, 14), 7, 7)
    p.end()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.save(str(OUT))
    print(OUT)


if __name__ == "__main__":
    main()
