"""Probabilities as coloured bars: the top labels of a table row (a delegate) and every
label of one text (the details pane's chart)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from slmdesk.ui.common.colours import label_colour
from slmdesk.ui.common.table_model import percent

AnyIndex = QModelIndex | QPersistentModelIndex

BARS_ROLE = Qt.ItemDataRole.UserRole + 2  # [(label, calibrated p, raw p)] in label order
FAILED_ROLE = Qt.ItemDataRole.UserRole + 3  # true where the row has no probabilities to paint


class ProbabilityBarsDelegate(QStyledItemDelegate):
    """Paints the top three labels of a row as filled bars with their names and percents."""

    TOP = 3

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        bars = index.data(BARS_ROLE) or []
        if not bars or index.data(FAILED_ROLE):
            return
        order = {lab: i for i, (lab, _p, _r) in enumerate(bars)}
        top = sorted(bars, key=lambda t: -t[1])[: self.TOP]
        rect: QRect = opt.rect.adjusted(3, 3, -3, -3)
        gap = 4
        slot_w = max(1, (rect.width() - gap * (len(top) - 1)) // len(top))
        metrics = QFontMetrics(opt.font)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text_colour = opt.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        for i, (lab, p, _raw) in enumerate(top):
            slot = QRect(rect.left() + i * (slot_w + gap), rect.top(), slot_w, rect.height())
            colour = label_colour(order[lab])
            track = QColor(colour)
            track.setAlpha(40)
            painter.fillRect(slot, track)
            fill = QColor(colour)
            fill.setAlpha(150)
            painter.fillRect(QRect(slot.left(), slot.top(), round(slot.width() * p),
                                   slot.height()), fill)
            painter.setPen(QPen(text_colour))
            text = metrics.elidedText(f"{lab} {100 * p:.0f}%", Qt.TextElideMode.ElideRight,
                                      slot.width() - 6)
            painter.drawText(slot.adjusted(3, 0, -3, 0),
                             int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                             text)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        base = super().sizeHint(option, index)
        return QSize(max(base.width(), 240), max(base.height(), 22))


class ProbabilityChart(QWidget):
    """Every label's probability as a bar: calibrated (label colour), raw (thin, grey)."""

    ROW_H = 30

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bars: list[tuple[str, float, float]] = []
        self._chosen: set[str] = set()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(self.ROW_H)

    def set_bars(self, bars: Sequence[tuple[str, float, float]],
                 chosen: Sequence[str] = ()) -> None:
        self._bars = list(bars)
        self._chosen = set(chosen)
        self.setFixedHeight(max(1, len(self._bars)) * self.ROW_H + 4)
        self.update()

    def bars(self) -> list[tuple[str, float, float]]:
        return list(self._bars)

    def sizeHint(self) -> QSize:
        return QSize(320, max(1, len(self._bars)) * self.ROW_H + 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            bold = painter.font()
            bold.setBold(True)
            metrics = QFontMetrics(bold)  # the chosen label is bold: measure the wider one
            name_w = min(self.width() // 3, max(
                [metrics.horizontalAdvance(lab) for lab, _p, _r in self._bars] or [40]) + 10)
            pct_w = metrics.horizontalAdvance("100.0 %") + 8
            bar_w = max(10, self.width() - name_w - pct_w - 8)
            text_colour = self.palette().color(QPalette.ColorRole.WindowText)
            for i, (lab, p, raw) in enumerate(self._bars):
                top = 2 + i * self.ROW_H
                font = painter.font()
                font.setBold(lab in self._chosen)
                painter.setFont(font)
                painter.setPen(text_colour)
                painter.drawText(QRect(0, top, name_w - 6, self.ROW_H - 8),
                                 int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
                                 metrics.elidedText(lab, Qt.TextElideMode.ElideRight,
                                                    name_w - 6))
                colour = label_colour(i)
                track = QColor(colour)
                track.setAlpha(35)
                painter.fillRect(QRect(name_w, top + 2, bar_w, self.ROW_H - 14), track)
                painter.fillRect(QRect(name_w, top + 2, round(bar_w * p), self.ROW_H - 14),
                                 colour)
                painter.fillRect(QRect(name_w, top + self.ROW_H - 10, round(bar_w * raw), 3),
                                 QColor(128, 128, 128, 170))
                painter.drawText(QRect(name_w + bar_w + 6, top, pct_w, self.ROW_H - 8),
                                 int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                                 percent(p))
        finally:
            painter.end()

