"""How the Classify tab gives its results room in a small window: the texts fold away
while results arrive, and the details of a row move into a tab of their own."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QSplitter, QTabWidget, QToolButton, QWidget

FOLD_BELOW = 720  # px: a tab shorter than this folds the texts away when results arrive
DETAILS_TAB_BELOW = 600  # px: results narrower than this show the details in a tab
UNLIMITED = 16777215  # QWIDGETSIZE_MAX


class FoldingInput(QObject):
    """The texts pane of a vertical splitter, which folds to its head and run row (its
    ``body`` hidden) and unfolds again, by its toggle or by the view."""

    def __init__(self, splitter: QSplitter, pane: QWidget, body: list[QWidget],
                 toggle: QToolButton) -> None:
        super().__init__(pane)
        self.splitter, self.pane, self.body, self.toggle = splitter, pane, body, toggle
        self.folded = False
        self._unfolded_height = 0
        toggle.setCheckable(True)
        toggle.setChecked(True)
        toggle.setArrowType(Qt.ArrowType.DownArrow)
        toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toggle.setAutoRaise(True)
        toggle.toggled.connect(lambda shown: self.unfold() if shown else self.fold())
        self._update_tip()

    def fold(self) -> None:
        """Hide the text box: the results below take its height."""
        if self.folded:
            return
        self.folded = True
        self._unfolded_height = self.splitter.sizes()[self._index()]
        for widget in self.body:
            widget.hide()
        layout = self.pane.layout()
        if layout is not None:
            layout.activate()
        height = self.pane.sizeHint().height()
        self.pane.setMaximumHeight(height)
        self._move_height(height)
        self._sync_toggle()

    def unfold(self) -> None:
        """Show the text box again, as tall as it was."""
        if not self.folded:
            return
        self.folded = False
        for widget in self.body:
            widget.show()
        self.pane.setMaximumHeight(UNLIMITED)
        self._move_height(max(self._unfolded_height, self.pane.minimumSizeHint().height()))
        self._sync_toggle()

    def _move_height(self, height: int) -> None:
        """Make the pane ``height`` tall, the pane after it (or before) giving or taking the
        difference."""
        sizes = self.splitter.sizes()
        index = self._index()
        other = index + 1 if index + 1 < len(sizes) else index - 1
        if other >= 0:
            sizes[other] = max(0, sizes[other] + sizes[index] - height)
        sizes[index] = height
        self.splitter.setSizes(sizes)

    def _index(self) -> int:
        return self.splitter.indexOf(self.pane)

    def _sync_toggle(self) -> None:
        blocked = self.toggle.blockSignals(True)
        self.toggle.setChecked(not self.folded)
        self.toggle.blockSignals(blocked)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow if self.folded
                                 else Qt.ArrowType.DownArrow)
        self._update_tip()

    def _update_tip(self) -> None:
        self.toggle.setToolTip("Show the texts to classify" if self.folded
                               else "Hide the texts, to see more results")


class DetailsPlacement(QObject):
    """Keeps ``details`` beside the results table in ``splitter`` while ``page`` is at
    least ``DETAILS_TAB_BELOW`` wide, and in a "Details" tab of ``tabs`` (after the others)
    while it is narrower, where beside the table it would squeeze the columns and under
    it cost the table its rows."""

    def __init__(self, page: QWidget, splitter: QSplitter, details: QWidget,
                 tabs: QTabWidget) -> None:
        super().__init__(page)
        self.page, self.splitter, self.details, self.tabs = page, splitter, details, tabs
        self._sizes = splitter.sizes()
        page.installEventFilter(self)

    @property
    def in_tab(self) -> bool:
        """Whether the details are in a tab of their own now."""
        return self.tabs.indexOf(self.details) >= 0

    def show_details(self) -> None:
        """Bring the details into view: their tab, when they have one."""
        if self.in_tab:
            self.tabs.setCurrentWidget(self.details)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.page and event.type() == QEvent.Type.Resize:
            self.place(self.page.width())
        return False

    def place(self, width: int) -> None:
        """Put the details where a results pane this wide has room for them."""
        narrow = width < DETAILS_TAB_BELOW
        if narrow and not self.in_tab:
            self._sizes = self.splitter.sizes()
            self.tabs.addTab(self.details, "Details")
        elif not narrow and self.in_tab:
            if self.tabs.currentWidget() is self.details:
                self.tabs.setCurrentWidget(self.page)
            self.tabs.removeTab(self.tabs.indexOf(self.details))
            self.splitter.addWidget(self.details)
            self.details.show()
            if len(self._sizes) == 2:
                self.splitter.setSizes(self._sizes)
