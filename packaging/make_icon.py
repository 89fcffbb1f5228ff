"""Draw slmdesk's raster icons from one design: the Linux PNG, the Windows ICO, the macOS ICNS.

Run once after changing the design, and commit the results (they are small):
``QT_QPA_PLATFORM=offscreen python packaging/make_icon.py`` writes, in ``resources/icons/``,
``slmdesk.png`` (256 px, the raster twin of ``slmdesk.svg``), ``slmdesk.ico`` (16, 24, 32, 48,
64 and 256 px) and ``slmdesk.icns`` (16 to 1024 px). The containers are written here rather
than by Qt's image plugins: Qt's ICO writer is an optional plugin, and it has no ICNS writer.
"""

from __future__ import annotations

import struct
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPainterPath

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
ICO_SIZES = (16, 24, 32, 48, 64, 256)
# ICNS chunk types and their pixel sizes; every one holds a PNG (macOS 10.7 and later).
ICNS_CHUNKS = (
    (b"icp4", 16), (b"icp5", 32), (b"ic11", 32), (b"icp6", 64), (b"ic12", 64),
    (b"ic07", 128), (b"ic08", 256), (b"ic13", 256), (b"ic09", 512), (b"ic14", 512),
    (b"ic10", 1024),
)


def draw(size: int) -> QImage:
    """The icon at ``size`` pixels square (the design is drawn on a 256-unit grid)."""
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 256, size / 256)
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
    return img


def png_bytes(img: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not img.save(buf, "PNG"):
        raise RuntimeError("Qt could not encode a PNG")
    buf.close()
    return bytes(data.data())


def _dib(img: QImage) -> bytes:
    """A 32-bit BMP icon image: header, BGRA rows bottom-up, then the 1-bit AND mask."""
    w, h = img.width(), img.height()
    img = img.convertToFormat(QImage.Format.Format_ARGB32)
    # ARGB32 is stored as B, G, R, A bytes on little-endian machines: the DIB's own order.
    raw = bytes(img.constBits())[: w * h * 4]
    rows = b"".join(raw[y * w * 4:(y + 1) * w * 4] for y in reversed(range(h)))
    mask_row = ((w + 31) // 32) * 4  # all zero: the alpha channel decides transparency
    header = struct.pack("<IiiHHIIiiII", 40, w, h * 2, 1, 32, 0, len(rows), 0, 0, 0, 0)
    return header + rows + bytes(mask_row * h)


def ico_bytes(images: list[QImage]) -> bytes:
    """An ICO container; 256 px as PNG (Vista and later), smaller sizes as 32-bit BMP.

    Small sizes stay BMP because some resource tools (older installers' icon readers) only
    understand BMP entries there.
    """
    payloads = [png_bytes(i) if i.width() >= 256 else _dib(i) for i in images]
    out = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    for img, data in zip(images, payloads, strict=True):
        side = img.width() % 256  # 0 means 256
        out += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return out + b"".join(payloads)


def icns_bytes(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """An ICNS container: 'icns', total length, then (type, length, PNG) chunks, big-endian."""
    body = b"".join(kind + struct.pack(">I", 8 + len(data)) + data for kind, data in chunks)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> None:
    app = QGuiApplication([])  # noqa: F841 - QPainter needs a GUI application
    ICONS.mkdir(parents=True, exist_ok=True)
    (ICONS / "slmdesk.png").write_bytes(png_bytes(draw(256)))
    (ICONS / "slmdesk.ico").write_bytes(ico_bytes([draw(s) for s in ICO_SIZES]))
    pngs = {s: png_bytes(draw(s)) for s in sorted({s for _, s in ICNS_CHUNKS})}
    (ICONS / "slmdesk.icns").write_bytes(icns_bytes([(k, pngs[s]) for k, s in ICNS_CHUNKS]))
    for name in ("slmdesk.png", "slmdesk.ico", "slmdesk.icns"):
        print(ICONS / name, (ICONS / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
