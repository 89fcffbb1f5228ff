"""The confusion-matrix picture: expected labels down, predicted labels across, with counts."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QWidget

from slmdesk.ui.common.colours import CORRECT_COLOUR, WRONG_COLOUR


class ConfusionMatrix(QWidget):
    """A heat map of gold (rows) against predicted (columns) labels, with counts.

    Diagonal cells are green, the others red; the more texts, the stronger the colour.
    """

    CELL_MIN = 34

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.counts: list[list[int]] = []
        self.setMinimumSize(200, 160)

    def set_matrix(self, labels: Sequence[str], counts: Sequence[Sequence[int]]) -> None:
        self.labels = list(labels)
        self.counts = [list(map(int, row)) for row in counts]
        self.updateGeometry()
        self.update()

    def count(self, row: int, col: int) -> int:
        return self.counts[row][col]

    def cell_colour(self, row: int, col: int) -> QColor:
        peak = max((max(r) for r in self.counts if r), default=0) or 1
        strength = self.counts[row][col] / peak
        base = QColor(CORRECT_COLOUR if row == col else WRONG_COLOUR)
        paper = QColor(250, 250, 250)
        # Blend from near-white to the full colour so that zero is visibly empty.
        t = 0.08 + 0.92 * strength if self.counts[row][col] else 0.0
        return QColor(
            round(paper.red() + (base.red() - paper.red()) * t),
            round(paper.green() + (base.green() - paper.green()) * t),
            round(paper.blue() + (base.blue() - paper.blue()) * t),
        )

    def _margins(self) -> tuple[int, int]:
        metrics = self.fontMetrics()
        left = max([metrics.horizontalAdvance(t) for t in [*self.labels, "expected ↓"]]) + 16
        left = min(left, max(60, self.width() // 3))
        top = metrics.height() * 2 + 10
        return left, top

    def cell_size(self) -> int:
        n = max(1, len(self.labels))
        left, top = self._margins()
        return max(12, min(96, (self.width() - left - 4) // n, (self.height() - top - 4) // n))

    def cell_rect(self, row: int, col: int) -> QRect:
        left, top = self._margins()
        size = self.cell_size()
        return QRect(left + col * size, top + row * size, size, size)

    def sizeHint(self) -> QSize:
        n = max(1, len(self.labels))
        left, top = self._margins()
        return QSize(left + n * 56 + 8, top + n * 56 + 8)

    def minimumSizeHint(self) -> QSize:
        n = max(1, len(self.labels))
        left, top = self._margins()
        return QSize(left + n * self.CELL_MIN + 4, top + n * self.CELL_MIN + 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            if not self.labels:
                return
            metrics = painter.fontMetrics()
            text_colour = self.palette().color(QPalette.ColorRole.WindowText)
            left, top = self._margins()
            size = self.cell_size()
            n = len(self.labels)
            painter.setPen(text_colour)
            painter.drawText(QRect(left, 0, n * size, metrics.height() + 2),
                             int(Qt.AlignmentFlag.AlignCenter), "predicted →")
            painter.drawText(QRect(0, 0, left - 4, top - 4),
                             int(Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft),
                             "expected ↓")
            for c, lab in enumerate(self.labels):
                painter.drawText(
                    QRect(left + c * size, metrics.height() + 4, size, metrics.height() + 4),
                    int(Qt.AlignmentFlag.AlignCenter),
                    metrics.elidedText(lab, Qt.TextElideMode.ElideRight, size - 2))
            for r, lab in enumerate(self.labels):
                painter.setPen(text_colour)
                painter.drawText(
                    QRect(0, top + r * size, left - 8, size),
                    int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
                    metrics.elidedText(lab, Qt.TextElideMode.ElideRight, left - 8))
                for c in range(n):
                    rect = self.cell_rect(r, c)
                    colour = self.cell_colour(r, c)
                    painter.fillRect(rect, colour)
                    painter.setPen(QColor(0, 0, 0, 40))
                    painter.drawRect(rect.adjusted(0, 0, -1, -1))
                    painter.setPen(QColor("white") if colour.lightness() < 140
                                   else QColor("#202020"))
                    painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter),
                                     str(self.counts[r][c]))
        finally:
            painter.end()

