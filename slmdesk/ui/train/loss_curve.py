"""The live training picture: the LoRA loss per step as a line, and each method's
validation metric (macro-F1, right-hand scale) as a dot where it was measured."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

from slmdesk.ui.common.colours import label_colour

LOSS_COLOUR = QColor("#3b78c4")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 46, 42, 22, 26
PLACEHOLDER = "The loss per step and the validation scores appear here while training runs."


@dataclass(frozen=True)
class ValidationPoint:
    """One evaluated event on the validation split, at the step it arrived."""

    step: float
    method: str
    macro_f1: float
    loss: float | None


class LossCurve(QWidget):
    """Loss per step (left scale) and validation macro-F1 per method (right scale, 0–1)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_points: list[tuple[float, float]] = []
        self.validation: list[ValidationPoint] = []
        self.total_steps = 0
        self.setMinimumSize(320, 160)

    def sizeHint(self) -> QSize:
        return QSize(560, 220)

    def clear(self) -> None:
        self.loss_points.clear()
        self.validation.clear()
        self.total_steps = 0
        self.update()

    def add_loss(self, step: float, loss: float, total_steps: int = 0) -> None:
        self.loss_points.append((float(step), float(loss)))
        self.total_steps = max(self.total_steps, int(total_steps))
        self.update()

    def add_validation(self, method: str, macro_f1: float, loss: float | None) -> None:
        step = self.loss_points[-1][0] if self.loss_points else 0.0
        self.validation.append(ValidationPoint(step, method, float(macro_f1),
                                               None if loss is None else float(loss)))
        self.update()

    def methods(self) -> list[str]:
        """The methods with a validation point, in the order they were first measured."""
        return list(dict.fromkeys(v.method for v in self.validation))

    # geometry -----------------------------------------------------------------------------
    def plot_rect(self) -> QRectF:
        return QRectF(MARGIN_LEFT, MARGIN_TOP, max(1, self.width() - MARGIN_LEFT - MARGIN_RIGHT),
                      max(1, self.height() - MARGIN_TOP - MARGIN_BOTTOM))

    def x_range(self) -> float:
        last = max((s for s, _ in self.loss_points), default=0.0)
        return max(1.0, float(self.total_steps), last)

    def loss_range(self) -> tuple[float, float]:
        values = [v for _, v in self.loss_points] + [
            p.loss for p in self.validation if p.loss is not None]
        if not values:
            return 0.0, 1.0
        low, high = min(values), max(values)
        pad = (high - low) * 0.08 or max(abs(high) * 0.1, 0.1)
        return max(0.0, low - pad), high + pad

    def loss_at(self, step: float, loss: float) -> QPointF:
        rect, (low, high) = self.plot_rect(), self.loss_range()
        return QPointF(rect.left() + rect.width() * step / self.x_range(),
                       rect.bottom() - rect.height() * (loss - low) / (high - low))

    def metric_at(self, step: float, metric: float) -> QPointF:
        rect = self.plot_rect()
        return QPointF(rect.left() + rect.width() * step / self.x_range(),
                       rect.bottom() - rect.height() * min(1.0, max(0.0, metric)))

    # painting -----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            text = self.palette().color(QPalette.ColorRole.WindowText)
            if not self.loss_points and not self.validation:
                painter.setPen(text)
                painter.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter
                                                  | Qt.TextFlag.TextWordWrap), PLACEHOLDER)
                return
            self._draw_axes(painter, text)
            self._draw_loss(painter)
            self._draw_validation(painter)
            self._draw_legend(painter, text)
        finally:
            painter.end()

    def _draw_axes(self, painter: QPainter, text: QColor) -> None:
        rect, (low, high) = self.plot_rect(), self.loss_range()
        grid = QColor(text)
        grid.setAlpha(50)
        painter.setPen(grid)
        painter.drawRect(rect)
        painter.setPen(text)
        flags = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for value, y in ((high, rect.top()), (low, rect.bottom())):
            painter.drawText(QRectF(0, y - 9, MARGIN_LEFT - 4, 18), flags, f"{value:.2f}")
        left = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for label, y in (("1.0", rect.top()), ("0.0", rect.bottom())):
            painter.drawText(QRectF(rect.right() + 4, y - 9, MARGIN_RIGHT, 18), left, label)
        below = QRectF(rect.left(), rect.bottom() + 4, rect.width(), MARGIN_BOTTOM - 4)
        painter.drawText(below, int(Qt.AlignmentFlag.AlignLeft), "step 0")
        painter.drawText(below, int(Qt.AlignmentFlag.AlignRight), f"{self.x_range():.0f}")
        painter.drawText(below, int(Qt.AlignmentFlag.AlignHCenter), "loss (left) · F1 (right)")

    def _draw_loss(self, painter: QPainter) -> None:
        if not self.loss_points:
            return
        painter.setPen(QPen(LOSS_COLOUR, 2))
        points = [self.loss_at(s, v) for s, v in self.loss_points]
        if len(points) == 1:
            painter.drawEllipse(points[0], 2.5, 2.5)
        else:
            painter.drawPolyline(QPolygonF(points))

    def _draw_validation(self, painter: QPainter) -> None:
        methods = self.methods()
        for p in self.validation:
            colour = label_colour(methods.index(p.method) + 1)
            painter.setPen(QPen(colour.darker(130), 1))
            painter.setBrush(colour)
            painter.drawEllipse(self.metric_at(p.step, p.macro_f1), 4.5, 4.5)
            if p.loss is not None:
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.setPen(QPen(LOSS_COLOUR, 1.5))
                painter.drawEllipse(self.loss_at(p.step, p.loss), 4.5, 4.5)
        painter.setBrush(Qt.BrushStyle.NoBrush)

    def _draw_legend(self, painter: QPainter, text: QColor) -> None:
        """Top line: the loss swatch and each method's latest validation F1."""
        entries: list[tuple[QColor, str]] = []
        if self.loss_points:
            entries.append((LOSS_COLOUR, f"loss {self.loss_points[-1][1]:.3f}"))
        methods = self.methods()
        for method in methods:
            latest = [p for p in self.validation if p.method == method][-1]
            entries.append((label_colour(methods.index(method) + 1),
                            f"{method} F1 {latest.macro_f1:.3f}"))
        x = float(MARGIN_LEFT)
        metrics = painter.fontMetrics()
        for colour, label in entries:
            painter.fillRect(QRectF(x, 6, 10, 10), colour)
            painter.setPen(text)
            painter.drawText(QPointF(x + 14, 15), label)
            x += 14 + metrics.horizontalAdvance(label) + 12
