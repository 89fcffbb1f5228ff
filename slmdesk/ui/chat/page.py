"""The Chat tab's widgets: the conversation list, the transcript with the composer under it,
and the conversation settings (laid out only; ChatController drives them)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHBoxLayout,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from slmdesk.store.chats import ChatRepository
from slmdesk.store.presets import PresetRepository
from slmdesk.ui.chat.composer import Composer
from slmdesk.ui.chat.conversations import ConversationSidebar
from slmdesk.ui.chat.settings_panel import SettingsPanel
from slmdesk.ui.chat.view import ChatView
from slmdesk.ui.chat.welcome import WelcomePanel
from slmdesk.ui.common.labels import wrapping_label
from slmdesk.ui.common.tab_frame import scrolling_pane

SETTINGS_MIN_WIDTH = 220


class ChatPage(QSplitter):
    """Sidebar | transcript, composer, Send/Stop, fit note | settings panel (hidden at first)."""

    def __init__(self, chats: ChatRepository, presets: PresetRepository,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("main_splitter")
        self.setChildrenCollapsible(False)
        self.sidebar = ConversationSidebar(chats, self)

        main = QWidget(self)
        layout = QVBoxLayout(main)
        layout.setContentsMargins(6, 6, 6, 6)
        self.welcome = WelcomePanel(main)  # the first start's, until a chat exists
        self.welcome.hide()
        layout.addWidget(self.welcome)
        self.chat_view = ChatView(main)
        layout.addWidget(self.chat_view, 1)

        row = QHBoxLayout()
        self.composer = Composer(main)
        self.composer.setMaximumHeight(140)
        row.addWidget(self.composer, 1)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send", main)
        self.send_button.setObjectName("send_button")
        self.stop_button = QPushButton("Stop", main)
        self.stop_button.setObjectName("stop_button")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addLayout(buttons)
        layout.addLayout(row)
        self.fit_note = wrapping_label("", main, name="fit_note")
        self.fit_note.hide()
        layout.addWidget(self.fit_note)

        self.settings_panel = SettingsPanel(presets, self)
        # A short window scrolls the settings instead of cutting them or growing.
        self.settings_pane = scrolling_pane(self, self.settings_panel, SETTINGS_MIN_WIDTH)
        self.settings_pane.setObjectName("settings_pane")
        self.settings_pane.hide()

        self.addWidget(self.sidebar)
        self.addWidget(main)
        self.addWidget(self.settings_pane)
        self.setStretchFactor(1, 1)
        self.setSizes([260, 700, 300])

    def show_settings(self, shown: bool) -> None:
        """Show or hide the conversation settings pane; shown, it takes its share of the
        width from the conversation list first, so the transcript stays readable."""
        self.settings_pane.setVisible(shown)
        if not shown:
            return
        total = sum(self.sizes())
        settings = round(min(max(total * 0.3, SETTINGS_MIN_WIDTH), 340))
        sidebar = round(min(self.sizes()[0], max(total * 0.22, 160)))
        self.setSizes([sidebar, max(0, total - sidebar - settings), settings])
