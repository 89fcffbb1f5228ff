"""Opens the Train view from the main window (the Data sets tab's "Train…") and carries its
results back: "Use in Classify" opens the classifier there, "Chat with it" picks the model."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QApplication

from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import DatasetRepository
from slmdesk.ui.train.command import CommandBuilder
from slmdesk.ui.train.dialog import TrainDialog


def open_train_dialog(window: Any, dataset: str | None, *,
                      command: CommandBuilder | None = None) -> TrainDialog:
    """Show the window's Train view for ``dataset``: the one running now if a run is going
    on, else a fresh one that lists today's data sets and models."""
    dialog: TrainDialog | None = getattr(window, "train_dialog", None)
    if dialog is None or not dialog.running:
        if dialog is not None:
            dialog.deleteLater()
        dialog = TrainDialog(
            DatasetRepository(window.db).all(), window.models.list(), dataset=dataset,
            model=window.model.name if window.model is not None else None,
            command=command, parent=window)
        dialog.use_in_classify_requested.connect(lambda name: use_in_classify(window, name))
        dialog.chat_requested.connect(lambda name: chat_with(window, name))
        dialog.trained.connect(lambda _report: window.refresh_models())
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(dialog.shutdown)
        window.train_dialog = dialog
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def use_in_classify(window: Any, name: str) -> None:
    """Open the saved classifier ``name`` in the Classify tab and show that tab."""
    if window.classify_view.load_classifier(name):
        window.tabs.setCurrentWidget(window.classify_view)


def chat_with(window: Any, name: str) -> None:
    """Pick the fine-tuned model ``name`` in the window's model picker and show the chat."""
    window.refresh_models()
    try:
        record = window.models.find(name)
    except UserFacingError as exc:
        window.show_error(exc.message)
        return
    window.select_model(record)
    window.tabs.setCurrentWidget(window.chat_page)
