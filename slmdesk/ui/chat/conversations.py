"""The sidebar: conversations grouped by day, pinned first, with rename, pin, delete+undo and
full-text search over every message."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStackedWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from slmdesk.store.chats import ChatRepository, Conversation
from slmdesk.ui.common.labels import ElidedLabel

CONVERSATION_ID = Qt.ItemDataRole.UserRole + 1
PINNED = Qt.ItemDataRole.UserRole + 2
UNDO_SECONDS = 10
HIT_SPACING = 4  # pixels around each search hit


def local_day(iso_utc: str) -> date:
    return datetime.fromisoformat(iso_utc).astimezone().date()


def day_label(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return day.strftime("%A %d %B")
    return day.strftime("%d %B %Y")


class ConversationModel(QStandardItemModel):
    """Group rows ("Pinned", "Today", a date…) with one child row per conversation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["Conversations"])

    def populate(self, conversations: list[Conversation], today: date | None = None) -> None:
        today = today or date.today()
        self.clear()
        self.setHorizontalHeaderLabels(["Conversations"])
        groups: dict[str, QStandardItem] = {}
        for conv in conversations:  # already ordered: pinned first, then newest first
            label = "Pinned" if conv.pinned else day_label(local_day(conv.updated_at), today)
            group = groups.get(label)
            if group is None:
                group = QStandardItem(label)
                group.setFlags(Qt.ItemFlag.ItemIsEnabled)
                font = group.font()
                font.setBold(True)
                group.setFont(font)
                groups[label] = group
                self.appendRow(group)
            item = QStandardItem(conv.title)
            item.setData(conv.id, CONVERSATION_ID)
            item.setData(conv.pinned, PINNED)
            item.setToolTip(conv.title)
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsEditable
            )
            group.appendRow(item)

    def index_of(self, conversation_id: str) -> QModelIndex:
        for g in range(self.rowCount()):
            group = self.item(g)
            for r in range(group.rowCount()):
                child = group.child(r)
                if child is not None and child.data(CONVERSATION_ID) == conversation_id:
                    return child.index()
        return QModelIndex()


class ConversationSidebar(QWidget):
    """Lists conversations, searches messages, and edits the list (rename, pin, delete)."""

    conversation_activated = Signal(str)
    search_hit_activated = Signal(str, str)  # conversation id, message id
    conversations_changed = Signal()
    new_chat_requested = Signal()

    def __init__(self, chats: ChatRepository, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chats = chats
        self._current: str | None = None
        self._populating = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.new_button = QPushButton("New chat", self)
        self.new_button.setToolTip("New chat (Ctrl+N)")
        self.new_button.clicked.connect(self.new_chat_requested)
        self.search_box = QLineEdit(self)
        self.search_box.setObjectName("search_box")
        self.search_box.setPlaceholderText("Search all chats  (Ctrl+F)")
        self.search_box.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self.run_search)
        self.search_box.textChanged.connect(lambda _t: self._search_timer.start())
        self.search_box.returnPressed.connect(self._activate_first_hit)

        self.model = ConversationModel(self)
        self.tree = QTreeView(self)
        self.tree.setObjectName("conversations")
        self.tree.setModel(self.model)
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(False)
        self.tree.setItemsExpandable(False)
        # F2 or the context menu renames; a click on the selected chat does not (it opened
        # the editor, so Delete then erased the title instead of deleting the chat).
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.selectionModel().currentChanged.connect(self._on_current_changed)
        self.model.itemChanged.connect(self._on_item_changed)

        self.hits = QListWidget(self)
        self.hits.setObjectName("search_hits")
        self.hits.setWordWrap(True)
        # Room between hits and alternating rows: two-line hits packed edge to edge read
        # as one block of text (issue 16, item 10).
        self.hits.setSpacing(HIT_SPACING)
        self.hits.setAlternatingRowColors(True)
        self.hits.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.hits.itemActivated.connect(self._on_hit)
        self.hits.itemClicked.connect(self._on_hit)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.tree)
        self.stack.addWidget(self.hits)

        self._build_undo_bar()

        layout.addWidget(self.new_button)
        layout.addWidget(self.search_box)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.undo_bar)
        self._add_list_shortcuts()

    def _build_undo_bar(self) -> None:
        """The bar under the list that offers to undo the last delete for a while."""
        self.undo_bar = QWidget(self)
        undo_layout = QHBoxLayout(self.undo_bar)
        undo_layout.setContentsMargins(0, 0, 0, 0)
        self.undo_label = ElidedLabel("", self.undo_bar)
        self.undo_button = QPushButton("Undo", self.undo_bar)
        self.undo_button.setObjectName("undo_delete")
        self.undo_button.clicked.connect(self.undo_delete)
        undo_layout.addWidget(self.undo_label, 1)
        undo_layout.addWidget(self.undo_button)
        self.undo_bar.hide()
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.timeout.connect(self.undo_bar.hide)
        self._deleted: list[str] = []

    def _add_list_shortcuts(self) -> None:
        """F2 renames and Delete deletes the current chat while the list has the focus."""
        rename = QAction("Rename", self.tree)
        rename.setShortcut(QKeySequence(Qt.Key.Key_F2))
        rename.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        rename.triggered.connect(self.rename_current)
        delete = QAction("Delete", self.tree)
        delete.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.delete_current)
        self.tree.addAction(rename)
        self.tree.addAction(delete)

    # list -----------------------------------------------------------------------------
    def refresh(self) -> None:
        self._populating = True
        try:
            self.model.populate(self.chats.list_conversations(limit=2000))
            self.tree.expandAll()
            self._select(self._current)
        finally:
            self._populating = False

    def set_current(self, conversation_id: str | None) -> None:
        self._current = conversation_id
        self._populating = True
        try:
            self._select(conversation_id)
        finally:
            self._populating = False

    def _select(self, conversation_id: str | None) -> None:
        index = self.model.index_of(conversation_id) if conversation_id else QModelIndex()
        if index.isValid():
            self.tree.setCurrentIndex(index)
            self.tree.scrollTo(index)
        else:
            self.tree.clearSelection()
            self.tree.setCurrentIndex(QModelIndex())

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._populating:
            return
        cid = current.data(CONVERSATION_ID) if current.isValid() else None
        if cid and cid != self._current:
            self._current = cid
            self.conversation_activated.emit(cid)

    def current_id(self) -> str | None:
        index = self.tree.currentIndex()
        cid = index.data(CONVERSATION_ID) if index.isValid() else None
        return str(cid) if cid else None

    # editing ---------------------------------------------------------------------------
    def _on_item_changed(self, item: QStandardItem) -> None:
        if self._populating:
            return
        cid = item.data(CONVERSATION_ID)
        if not cid:
            return
        title = " ".join(item.text().split())
        if not title:
            # An empty name is not a name: put the old one back on this item only. Rebuilding
            # the model here (refresh) crashed the process: this signal comes from inside the
            # editor's commit to the item that a rebuild would delete.
            self._populating = True
            try:
                item.setText(self.chats.get_conversation(cid).title)
            finally:
                self._populating = False
            return
        self.chats.update_conversation(cid, title=title)
        self.conversations_changed.emit()

    def rename_current(self) -> None:
        index = self.tree.currentIndex()
        if index.isValid() and index.data(CONVERSATION_ID):
            self.tree.edit(index)

    def toggle_pin(self, conversation_id: str) -> None:
        conv = self.chats.get_conversation(conversation_id)
        self.chats.update_conversation(conversation_id, pinned=not conv.pinned)
        self.refresh()
        self.conversations_changed.emit()

    def delete_current(self) -> None:
        cid = self.current_id()
        if cid:
            self.delete(cid)

    def delete(self, conversation_id: str) -> None:
        """Delete softly; the undo bar can bring it back until the app next starts."""
        conv = self.chats.get_conversation(conversation_id)
        self.chats.delete_conversation(conversation_id)
        self._deleted.append(conversation_id)
        if self._current == conversation_id:
            self._current = None
        self.undo_label.setText(f"Deleted “{conv.title}”.")
        self.undo_bar.show()
        self._undo_timer.start(UNDO_SECONDS * 1000)
        self.refresh()
        self.conversations_changed.emit()

    def undo_delete(self) -> None:
        if not self._deleted:
            return
        cid = self._deleted.pop()
        self.chats.restore_conversation(cid)
        self.undo_bar.setVisible(bool(self._deleted))
        self._current = cid
        self.refresh()
        self.conversations_changed.emit()
        self.conversation_activated.emit(cid)

    def purge_deleted(self) -> None:
        """Make this session's deletions final (the undo bar goes away with the window)."""
        while self._deleted:
            self.chats.purge_deleted(conversation_id=self._deleted.pop())

    def _context_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        cid = index.data(CONVERSATION_ID) if index.isValid() else None
        if not cid:
            return
        menu = QMenu(self)
        pinned = bool(index.data(PINNED))
        menu.addAction("Unpin" if pinned else "Pin", lambda: self.toggle_pin(cid))
        menu.addAction("Rename", lambda: self.tree.edit(index))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.delete(cid))
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    # search ----------------------------------------------------------------------------
    def run_search(self) -> None:
        query = self.search_box.text().strip()
        if not query:
            self.stack.setCurrentWidget(self.tree)
            return
        self.hits.clear()
        for hit in self.chats.search(query, limit=100):
            item = QListWidgetItem(f"{hit.conversation_title}\n{hit.snippet}")
            item.setData(CONVERSATION_ID, hit.message.conversation_id)
            item.setData(Qt.ItemDataRole.UserRole + 3, hit.message.id)
            item.setToolTip(hit.snippet)
            self.hits.addItem(item)
        if self.hits.count() == 0:
            empty = QListWidgetItem("No matches")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.hits.addItem(empty)
        self.stack.setCurrentWidget(self.hits)

    def _activate_first_hit(self) -> None:
        self._search_timer.stop()
        self.run_search()
        if self.stack.currentWidget() is self.hits and self.hits.count():
            self._on_hit(self.hits.item(0))

    def _on_hit(self, item: QListWidgetItem) -> None:
        cid = item.data(CONVERSATION_ID)
        mid = item.data(Qt.ItemDataRole.UserRole + 3)
        if cid and mid:
            self._current = cid
            self.search_hit_activated.emit(cid, mid)
