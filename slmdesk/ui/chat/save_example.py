""""Save this exchange as an example": the conversation up to a reply, with the reply
editable into the ideal answer, saved to a chat data set with its rating."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import DatasetRepository, Example
from slmdesk.ui.common.labels import wrapping_label
from slmdesk.ui.common.tones import tone_style

DEFAULT_DATASET = "Chat examples"


class SaveExampleDialog(QDialog):
    """Shows the exchange; the last (assistant) message can be edited before saving."""

    def __init__(
        self,
        datasets: DatasetRepository,
        messages: list[dict[str, str]],
        *,
        conversation_id: str,
        rating: int | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Save as example")
        self.setObjectName("save_example_dialog")
        self.resize(640, 560)
        self.datasets = datasets
        self.messages = [dict(m) for m in messages]
        self.conversation_id = conversation_id
        self.saved: Example | None = None
        layout = QVBoxLayout(self)

        row = QHBoxLayout()
        row.addWidget(QLabel("Data set:", self))
        self.dataset_box = QComboBox(self)
        self.dataset_box.setObjectName("dataset_box")
        row.addWidget(self.dataset_box, 1)
        new_button = QPushButton("New…", self)
        new_button.clicked.connect(self._new_dataset)
        row.addWidget(new_button)
        layout.addLayout(row)
        self._fill_datasets()

        context = "\n\n".join(
            f"{m['role']}: {m['content']}" for m in self.messages[:-1]
        )
        layout.addWidget(QLabel("The conversation before the reply:", self))
        self.context_view = QPlainTextEdit(self)
        self.context_view.setReadOnly(True)
        self.context_view.setPlainText(context)
        layout.addWidget(self.context_view, 1)
        layout.addWidget(QLabel("The reply — edit it into the ideal answer:", self))
        self.reply_edit = QPlainTextEdit(self)
        self.reply_edit.setObjectName("reply_edit")
        self.reply_edit.setPlainText(self.messages[-1]["content"])
        layout.addWidget(self.reply_edit, 1)

        rate_row = QHBoxLayout()
        rate_row.addWidget(QLabel("Rating:", self))
        self.rating_group = QButtonGroup(self)
        for value, text in ((0, "none"), (1, "👍 good"), (-1, "👎 bad")):
            button = QRadioButton(text, self)
            self.rating_group.addButton(button, value)
            rate_row.addWidget(button)
            if (rating or 0) == value:
                button.setChecked(True)
        rate_row.addStretch(1)
        layout.addLayout(rate_row)
        self.error = wrapping_label("", self, name="save_example_error")
        self.error.setStyleSheet(tone_style("error"))
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _fill_datasets(self, select: str | None = None) -> None:
        self.dataset_box.clear()
        names = [d.name for d in self.datasets.all() if d.kind == "chat"]
        if not names:
            names = [DEFAULT_DATASET]  # created on save
        self.dataset_box.addItems(names)
        if select:
            self.dataset_box.setCurrentText(select)

    def _new_dataset(self) -> None:
        name, ok = QInputDialog.getText(self, "New data set", "Name of the chat data set:")
        if ok and name.strip():
            try:
                self.datasets.create(name.strip(), kind="chat")
            except UserFacingError as exc:
                self.error.setText(exc.message)
                return
            self._fill_datasets(select=" ".join(name.split()))

    def save(self) -> None:
        reply = self.reply_edit.toPlainText()
        if not reply.strip():
            self.error.setText("The reply is empty.")
            return
        name = self.dataset_box.currentText().strip() or DEFAULT_DATASET
        try:
            dataset = self.datasets.find(name) or self.datasets.create(name, kind="chat")
            if dataset.kind != "chat":
                raise UserFacingError(f"'{dataset.name}' holds labelled texts, not chats.")
            messages = [*self.messages[:-1], {"role": "assistant", "content": reply}]
            rating = self.rating_group.checkedId()
            self.saved = self.datasets.add_chat_example(
                dataset, messages, source="conversation", source_ref=self.conversation_id,
                rating=rating or None,
            )
        except UserFacingError as exc:
            self.error.setText(exc.message)
            return
        self.accept()
