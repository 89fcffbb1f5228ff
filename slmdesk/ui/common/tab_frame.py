"""The frame the Classify and Data sets tabs share: an error banner over a splitter of
columns; and the small builders every tab's forms repeat (buttons, line edits, menu buttons,
percent boxes, labels)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from PySide6.QtCore import Qt, SignalInstance
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QDoubleSpinBox,
    QFrame,
    QLabel,
    QLayout,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.common.labels import ElidedLabel, let_layout_decide_width
from slmdesk.ui.common.tones import tone_style
from slmdesk.ui.common.widgets import ErrorBanner, error_banner

AnyButton = TypeVar("AnyButton", bound=QAbstractButton)
FIRST_COLUMN_SHARE = 0.34


def tab_frame(tab: QWidget, name: str, columns: Sequence[QWidget], sizes: Sequence[int],
              first_share: float = FIRST_COLUMN_SHARE) -> tuple[ErrorBanner, QSplitter]:
    """Lay ``tab`` out as an error banner (``<name>_error_banner``) over a horizontal splitter
    (``<name>_splitter``) of these columns, the last of which stretches; the first column
    keeps at most ``first_share`` of a narrow window."""
    root = QVBoxLayout(tab)
    root.setContentsMargins(6, 6, 6, 6)
    banner = error_banner(tab, f"{name}_error_banner")
    root.addWidget(banner)
    splitter = fixed_splitter(Qt.Orientation.Horizontal, tab, columns, sizes,
                              splitter=ResponsiveSplitter(tab, share=first_share))
    splitter.setObjectName(f"{name}_splitter")
    root.addWidget(splitter, 1)
    return banner, splitter


class ResponsiveSplitter(QSplitter):
    """A horizontal splitter whose pane ``capped`` (of two) never keeps more than ``share``
    of the width when the splitter shrinks."""

    def __init__(self, parent: QWidget | None = None, *, capped: int = 0,
                 share: float = 1.0) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.capped, self.share = capped, share

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        sizes = self.sizes()
        if len(sizes) == 2:
            cap = int(sum(sizes) * self.share)
            if sizes[self.capped] > cap:
                other = 1 - self.capped
                sizes[other] += sizes[self.capped] - cap
                sizes[self.capped] = cap
                self.setSizes(sizes)


def fixed_splitter(orientation: Qt.Orientation, parent: QWidget, panes: Sequence[QWidget],
                   sizes: Sequence[int], stretch: Sequence[int] = (), *,
                   splitter: QSplitter | None = None) -> QSplitter:
    """A splitter whose panes cannot be collapsed, with these start sizes and stretch
    factors (one per pane, from the first; none given: the last pane stretches); the
    ``splitter`` given (a ResponsiveSplitter) or a new one."""
    splitter = splitter if splitter is not None else QSplitter(orientation, parent)
    splitter.setChildrenCollapsible(False)
    for pane in panes:
        splitter.addWidget(pane)
    for i, factor in enumerate(stretch or [0] * (len(panes) - 1) + [1]):
        if factor:
            splitter.setStretchFactor(i, factor)
    splitter.setSizes(list(sizes))
    return splitter


def pane_column(parent: QWidget, margins: tuple[int, int, int, int] = (6, 0, 0, 0)) -> tuple[
        QWidget, QVBoxLayout]:
    """An empty widget for one pane of a tab, and its column layout with these margins."""
    widget = QWidget(parent)
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(*margins)
    return widget, layout


def scrolling_pane(parent: QWidget, inner: QWidget, min_width: int) -> QScrollArea:
    """``inner`` in a scroll area at least ``min_width`` wide: a side pane that a small
    window scrolls instead of cutting off."""
    scroll = QScrollArea(parent)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setMinimumWidth(min_width)
    scroll.setWidget(inner)
    return scroll


def tool_button(text: str, tip: str, parent: QWidget, *, name: str = "",
                clicked: Callable[[], object] | None = None) -> QToolButton:
    """A tool button with its text, tooltip, object name and click handler."""
    button = QToolButton(parent)
    button.setText(text)
    return _set_up_button(button, tip, name, clicked)


def push_button(text: str, tip: str, parent: QWidget, *, name: str = "",
                clicked: Callable[[], object] | SignalInstance | None = None) -> QPushButton:
    """A push button with its text, tooltip, object name and click handler."""
    return _set_up_button(QPushButton(text, parent), tip, name, clicked)


@dataclass(frozen=True)
class ButtonSpec:
    """One push button of a row (``add_push_buttons``), as ``push_button`` makes it."""

    text: str
    tip: str = ""
    name: str = ""
    clicked: Callable[[], object] | SignalInstance | None = None


def add_push_buttons(row: QLayout, parent: QWidget, *specs: ButtonSpec) -> list[QPushButton]:
    """Push buttons made from ``specs``, added to ``row`` in that order; returned in it too."""
    buttons = [push_button(s.text, s.tip, parent, name=s.name, clicked=s.clicked) for s in specs]
    for button in buttons:
        row.addWidget(button)
    return buttons


def _set_up_button(button: AnyButton, tip: str, name: str,
                   clicked: Callable[[], object] | SignalInstance | None) -> AnyButton:
    button.setToolTip(tip)
    if name:
        button.setObjectName(name)
    if clicked is not None:
        button.clicked.connect(clicked)
    return button


def line_edit(parent: QWidget, name: str, *, text: str = "", placeholder: str = "",
              tip: str = "") -> QLineEdit:
    """A line edit named ``name`` holding ``text``, with a placeholder and a tooltip (each
    only when given)."""
    edit = QLineEdit(text, parent)
    edit.setObjectName(name)
    if placeholder:
        edit.setPlaceholderText(placeholder)
    if tip:
        edit.setToolTip(tip)
    return edit


def check_box(parent: QWidget, text: str, name: str, *, checked: bool, tip: str,
              toggled: Callable[[bool], object]) -> QCheckBox:
    """A check box named ``name``, ticked or not, with a tooltip; ``toggled`` hears changes
    made after it is set up."""
    box = QCheckBox(text, parent)
    box.setObjectName(name)
    box.setToolTip(tip)
    box.setChecked(checked)
    box.toggled.connect(toggled)
    return box


def run_progress(parent: QWidget, name: str) -> QProgressBar:
    """An empty progress bar for an engine run (ClassifyRun sets its range and format)."""
    bar = QProgressBar(parent)
    bar.setObjectName(name)
    bar.setRange(0, 1)
    bar.setValue(0)
    bar.setFormat("")
    return bar


def cancel_and_progress(parent: QWidget, cancel: Callable[[], object], *, cancel_name: str,
                        progress_name: str) -> tuple[QPushButton, QProgressBar]:
    """The Cancel button and the empty progress bar (``run_progress``) of an engine run."""
    button = push_button("Cancel", "", parent, name=cancel_name, clicked=cancel)
    return button, run_progress(parent, progress_name)


def menu_button(text: str, tip: str, parent: QWidget, *, name: str = "") -> tuple[QToolButton,
                                                                                  QMenu]:
    """A tool button that opens its menu at once, and that (still empty) menu."""
    button = tool_button(text, tip, parent, name=name)
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    button.setMenu(menu)
    return button, menu


def percent_box(parent: QWidget, name: str, value: float = 0) -> QDoubleSpinBox:
    """A 0–100 % box in steps of 5, whole numbers."""
    box = QDoubleSpinBox(parent)
    box.setObjectName(name)
    box.setRange(0, 100)
    box.setDecimals(0)
    box.setSingleStep(5)
    box.setValue(value)
    box.setSuffix(" %")
    return box


def text_label(parent: QWidget, name: str, *, wrap: bool = True, selectable: bool = False,
               style: str = "") -> QLabel:
    """An empty label for text set later, maybe selectable, maybe styled: word-wrapped, or
    one line that elides (``wrap=False``); either way its text never widens the window."""
    label = let_layout_decide_width(QLabel("", parent)) if wrap else ElidedLabel("", parent)
    label.setObjectName(name)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


def status_label(parent: QWidget, name: str) -> QLabel:
    """An empty word-wrapped label named ``name``, for a status line or note filled in later
    (unlike ``text_label``, a long text may widen its column)."""
    label = QLabel("", parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label


def note_style() -> str:
    """The style of a warning that is not an error, readable on the current palette."""
    return tone_style("warn")


QUIET_STYLE = "QLabel { color: palette(mid); }"  # a side remark
