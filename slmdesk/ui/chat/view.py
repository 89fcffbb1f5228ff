"""The conversation view: one widget per message on the current branch, with copy,
regenerate, edit-and-resend, a ‹ 2/3 › branch switcher and a details line per reply."""

from __future__ import annotations

import time

from PySide6.QtCore import QPropertyAnimation, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.chat import CONTINUABLE
from slmdesk.store.chats import Message
from slmdesk.ui.chat.icons import thumb_icon
from slmdesk.ui.chat.markdown import MessageView
from slmdesk.ui.common.flow_layout import FlowLayout
from slmdesk.ui.common.labels import let_layout_decide_width
from slmdesk.ui.common.tab_frame import tool_button
from slmdesk.ui.common.tones import tone_style

MIN_RENDER_GAP_MS = 33  # ~30 updates a second while a short reply streams
ROLE_LABEL = {"user": "You", "assistant": "Assistant", "system": "System"}
FINISH_LABEL = {
    "length": "stopped at the token limit",
    "cancelled": "stopped",
    "error": "failed",
    "interrupted": "interrupted — slmdesk stopped while writing this reply",
}


def details_text(m: Message) -> str:
    """The per-reply line: tokens, speed, first token, model, how it ended."""
    parts = []
    if m.completion_tokens is not None:
        parts.append(f"{m.completion_tokens} tokens")
    if m.tokens_per_s:
        parts.append(f"{m.tokens_per_s:.1f} tok/s")
    if m.ttft_s is not None:
        parts.append(f"first token {m.ttft_s:.2f} s")
    model = m.metadata.get("model_name")
    if model:
        parts.append(str(model))
    if m.finish_reason:
        parts.append(FINISH_LABEL.get(m.finish_reason, m.finish_reason))
    if m.metadata.get("dropped_messages"):
        parts.append(f"{m.metadata['dropped_messages']} older messages left out to fit")
    if m.metadata.get("error"):
        parts.append(str(m.metadata["error"]))
    return " · ".join(parts)


class MessageWidget(QFrame):
    """One message: header with actions, the text, and (for replies) a details line."""

    regenerate_requested = Signal(str)
    continue_requested = Signal(str)
    delete_requested = Signal(str)
    edit_submitted = Signal(str, str)
    branch_requested = Signal(str)
    link_requested = Signal(QUrl)
    rating_changed = Signal(str, int)  # message id, 1 / -1 / 0 (none)
    save_example_requested = Signal(str)
    copied = Signal(str)  # what was copied, in words: "Message copied"

    def __init__(self, message: Message, siblings: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.message = message
        self.siblings = siblings
        self.setObjectName(f"message_{message.role}")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAutoFillBackground(True)
        if message.role == "user":
            pal = self.palette()
            pal.setColor(QPalette.ColorRole.Window, pal.color(QPalette.ColorRole.AlternateBase))
            self.setPalette(pal)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)

        layout.addLayout(self._build_header(message.role))
        self.view = MessageView(self)
        self.view.open_url = None  # the window opens links, only after the click
        self.view.link_requested.connect(self.link_requested)
        self.view.code_copied.connect(lambda _i: self.copied.emit("Code copied"))
        layout.addWidget(self.view)

        self._build_editor(layout)
        self._build_details(layout)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._pending_text = ""
        self._shown_text = ""  # what the view shows: rendered, then appended while streaming
        self._render_gap_ms = MIN_RENDER_GAP_MS
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.timeout.connect(self._render_pending)
        self.update_message(message, siblings)

    def _build_header(self, role: str) -> FlowLayout:
        """Who wrote it, the branch arrows, and the actions this role has: one flow, so the
        buttons go flush right when they fit and wrap under the name in a narrow transcript
        instead of being cut off."""
        header = FlowLayout()
        header.addWidget(QLabel(f"<b>{ROLE_LABEL.get(role, role)}</b>", self))
        self.branch_label = QLabel("", self)
        self.prev_button = tool_button("‹", "Previous version", self, name="prev_branch",
                                       clicked=lambda: self._switch(-1))
        self.next_button = tool_button("›", "Next version", self, name="next_branch",
                                       clicked=lambda: self._switch(+1))
        for w in (self.prev_button, self.branch_label, self.next_button):
            header.addWidget(w)
        header.add_stretching(QWidget(self))
        self.copy_button = tool_button("Copy", "", self, name="copy_message", clicked=self.copy)
        header.addWidget(self.copy_button)
        self.up_button: QToolButton | None = None
        self.down_button: QToolButton | None = None
        self.save_button: QToolButton | None = None
        self.action_button: QToolButton | None = None
        self.continue_button: QToolButton | None = None
        if role == "assistant":
            self._add_reply_buttons(header)
        elif role == "user":
            self.action_button = tool_button("Edit", "", self, name="edit", clicked=self.start_edit)
        if self.action_button is not None:
            header.addWidget(self.action_button)
        self.delete_button = QToolButton(self)
        self.delete_button.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_TrashIcon))
        self.delete_button.setObjectName("delete_message")
        self.delete_button.setToolTip("Delete this message and what follows it on this branch")
        self.delete_button.setAccessibleName("Delete message")
        self.delete_button.clicked.connect(lambda: self.delete_requested.emit(self.message.id))
        header.addWidget(self.delete_button)
        return header

    def _add_reply_buttons(self, header: FlowLayout) -> None:
        """A reply's rating, save-as-example and continue buttons; its Regenerate action."""
        self.up_button = QToolButton(self)
        self.up_button.setIcon(thumb_icon(self.palette()))
        self.up_button.setAccessibleName("Good reply")
        self.up_button.setObjectName("rate_up")
        self.up_button.setToolTip("Good reply")
        self.up_button.setCheckable(True)
        self.down_button = QToolButton(self)
        self.down_button.setIcon(thumb_icon(self.palette(), down=True))
        self.down_button.setAccessibleName("Bad reply")
        self.down_button.setObjectName("rate_down")
        self.down_button.setToolTip("Bad reply")
        self.down_button.setCheckable(True)
        self.up_button.clicked.connect(lambda on: self._rate(1 if on else 0))
        self.down_button.clicked.connect(lambda on: self._rate(-1 if on else 0))
        self.save_button = tool_button(
            "Save as example…",
            "Save this exchange to a chat data set (you can edit the reply first)", self,
            name="save_example", clicked=lambda: self.save_example_requested.emit(self.message.id))
        for b in (self.up_button, self.down_button, self.save_button):
            header.addWidget(b)
        self.action_button = tool_button(
            "Regenerate", "", self, name="regenerate",
            clicked=lambda: self.regenerate_requested.emit(self.message.id))
        self.continue_button = tool_button(
            "Continue", "Go on writing this reply where it stopped", self, name="continue_reply",
            clicked=lambda: self.continue_requested.emit(self.message.id))
        header.addWidget(self.continue_button)

    def _build_editor(self, layout: QVBoxLayout) -> None:
        """The editor a user message is edited in, with its Cancel/Send row (hidden)."""
        self.editor = QPlainTextEdit(self)
        self.editor.setObjectName("edit_box")
        self.editor.hide()
        self.edit_row = QWidget(self)
        row = QHBoxLayout(self.edit_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addStretch(1)
        self.cancel_edit_button = QPushButton("Cancel", self.edit_row)
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        self.send_edit_button = QPushButton("Send", self.edit_row)
        self.send_edit_button.setObjectName("send_edit")
        self.send_edit_button.clicked.connect(self._submit_edit)
        row.addWidget(self.cancel_edit_button)
        row.addWidget(self.send_edit_button)
        self.edit_row.hide()
        layout.addWidget(self.editor)
        layout.addWidget(self.edit_row)

    def _build_details(self, layout: QVBoxLayout) -> None:
        """The dim line under a reply: tokens, speed, finish reason."""
        self.details = QLabel("", self)
        self.details.setObjectName("details")
        let_layout_decide_width(self.details)
        dim = self.details.palette()
        dim.setColor(QPalette.ColorRole.WindowText, dim.color(QPalette.ColorRole.PlaceholderText))
        self.details.setPalette(dim)
        layout.addWidget(self.details)

    def update_message(self, message: Message, siblings: list[str] | None = None) -> None:
        if self._render_timer.isActive():
            self._render_timer.stop()  # the final text replaces any pending partial one
        self.message = message
        if siblings is not None:
            self.siblings = siblings
        if message.role == "assistant":
            self.view.set_markdown(message.content)
        else:
            self.view.set_plain_text(message.content)
        self._shown_text = message.content
        streaming = message.status == "streaming"
        self.details.setText("writing…" if streaming else details_text(message))
        self.details.setVisible(message.role == "assistant")
        if message.finish_reason == "interrupted":
            self.details.setStyleSheet(tone_style("warn"))
        n = len(self.siblings)
        at = self.siblings.index(message.id) + 1 if message.id in self.siblings else 1
        self.branch_label.setText(f"{at}/{n}")
        for w in (self.prev_button, self.branch_label, self.next_button):
            w.setVisible(n > 1)
        self.prev_button.setEnabled(at > 1)
        self.next_button.setEnabled(at < n)
        rating = message.metadata.get("rating")
        if self.up_button is not None and self.down_button is not None:
            self.up_button.setChecked(rating == 1)
            self.down_button.setChecked(rating == -1)
        for b in (self.up_button, self.down_button, self.save_button):
            if b is not None:
                b.setEnabled(not streaming)
        if self.continue_button is not None:
            self.continue_button.setVisible(
                not streaming and message.finish_reason in CONTINUABLE)

    def _rate(self, rating: int) -> None:
        if self.up_button is not None and self.down_button is not None:
            self.up_button.setChecked(rating == 1)
            self.down_button.setChecked(rating == -1)
        self.rating_changed.emit(self.message.id, rating)

    def set_streaming_text(self, text: str) -> None:
        """Show a growing reply, cheaply: the GUI thread shares the CPU with the decoder.

        What continues the current line is appended as plain text. Once a line ends, the
        whole reply is rendered as Markdown again, soon but not at once: re-rendering costs
        ~1 ms per KB, so a long reply is redrawn less often, never more than a quarter of
        the GUI thread's time. The finished reply is rendered whole (update_message), so it
        looks exactly as it would rendered in one go.
        """
        self._pending_text = text
        shown = self._shown_text
        if len(text) > len(shown) and text.startswith(shown):
            new = text[len(shown):]
            if "\n" not in new and self.view.append_streamed(
                    new, new_line=shown.endswith("\n")):
                self._shown_text = text
                return
        if not self._render_timer.isActive():
            self._render_timer.start(self._render_gap_ms)

    def _render_pending(self) -> None:
        started = time.perf_counter()
        self.view.set_markdown(self._pending_text)
        self._shown_text = self._pending_text
        cost_ms = (time.perf_counter() - started) * 1000
        self._render_gap_ms = int(min(500, max(MIN_RENDER_GAP_MS, 3 * cost_ms)))

    def flush_streaming_text(self) -> None:
        if self._render_timer.isActive():
            self._render_timer.stop()
            self._render_pending()

    def set_busy(self, busy: bool) -> None:
        """While any reply streams, actions that start another are disabled."""
        if busy:
            for w in (self.action_button, self.continue_button, self.delete_button,
                      self.prev_button, self.next_button):
                if w is not None:
                    w.setEnabled(False)
        else:
            for w in (self.action_button, self.continue_button, self.delete_button):
                if w is not None:
                    w.setEnabled(True)
            self.update_message(self.message)

    def _switch(self, step: int) -> None:
        i = self.siblings.index(self.message.id) if self.message.id in self.siblings else 0
        j = i + step
        if 0 <= j < len(self.siblings):
            self.branch_requested.emit(self.siblings[j])

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.message.content)
        self.copied.emit("Message copied")

    def start_edit(self) -> None:
        self.editor.setPlainText(self.message.content)
        self.view.hide()
        self.editor.show()
        self.edit_row.show()
        self.editor.setFocus()

    def cancel_edit(self) -> None:
        self.editor.hide()
        self.edit_row.hide()
        self.view.show()

    def _submit_edit(self) -> None:
        text = self.editor.toPlainText()
        if text.strip():
            self.cancel_edit()
            self.edit_submitted.emit(self.message.id, text)

    def flash(self) -> None:
        """Briefly highlight this message (a search hit)."""
        pal = self.palette()
        tint = pal.color(QPalette.ColorRole.Highlight).lighter(170)
        pal.setColor(QPalette.ColorRole.Window, tint)
        old = self.palette()
        self.setPalette(pal)
        QTimer.singleShot(1500, self, lambda: self.setPalette(old))  # cancelled if deleted


class ChatView(QScrollArea):
    """The current branch of a conversation, following the bottom while a reply grows
    unless the person scrolled up."""

    # Every message's requests, relayed from whichever message sent them: the same signals
    # as MessageWidget's (RELAYED_SIGNALS names them), so one connection serves them all.
    regenerate_requested = MessageWidget.regenerate_requested
    continue_requested = MessageWidget.continue_requested
    delete_requested = MessageWidget.delete_requested
    edit_submitted = MessageWidget.edit_submitted
    branch_requested = MessageWidget.branch_requested
    link_requested = MessageWidget.link_requested
    rating_changed = MessageWidget.rating_changed
    save_example_requested = MessageWidget.save_example_requested
    copied = MessageWidget.copied
    RELAYED_SIGNALS = (
        "regenerate_requested", "continue_requested", "delete_requested", "edit_submitted",
        "branch_requested", "link_requested", "rating_changed", "save_example_requested",
        "copied",
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chat_view")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.container = QWidget(self)
        self.column = QVBoxLayout(self.container)
        self.column.setContentsMargins(0, 0, 0, 0)
        self.column.setSpacing(4)
        self.column.addStretch(1)
        self.setWidget(self.container)
        self.widgets: list[MessageWidget] = []
        self._follow = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range)
        self._scroll_anim: QPropertyAnimation | None = None

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 8

    def _on_range(self, _lo: int, hi: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(hi)

    @property
    def following(self) -> bool:
        return self._follow

    def clear(self) -> None:
        for w in self.widgets:
            self.column.removeWidget(w)
            w.deleteLater()
        self.widgets = []
        self._follow = True

    def show_path(self, path: list[Message], siblings: dict[str, list[str]]) -> None:
        self.clear()
        for m in path:
            self.add_message(m, siblings.get(m.id, [m.id]))
        self.scroll_to_bottom()

    def add_message(self, message: Message, siblings: list[str] | None = None) -> MessageWidget:
        w = MessageWidget(message, siblings or [message.id], self.container)
        for name in self.RELAYED_SIGNALS:
            getattr(w, name).connect(getattr(self, name))
        self.column.insertWidget(self.column.count() - 1, w)
        self.widgets.append(w)
        return w

    def widget_for(self, message_id: str) -> MessageWidget | None:
        for w in self.widgets:
            if w.message.id == message_id:
                return w
        return None

    def set_busy(self, busy: bool) -> None:
        for w in self.widgets:
            w.set_busy(busy)

    def scroll_to_bottom(self) -> None:
        self._follow = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def scroll_to_message(self, message_id: str) -> None:
        w = self.widget_for(message_id)
        if w is None:
            return
        self._follow = False
        QTimer.singleShot(0, w, lambda: self.ensureWidgetVisible(w, 0, 40))
        w.flash()

    def plain_text(self) -> str:
        return "\n\n".join(w.view.toPlainText() for w in self.widgets)
