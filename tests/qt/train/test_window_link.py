"""The Train view from the window: the Data sets tab's "Train…" opens it for the data set,
"Use in Classify" opens the classifier in the Classify tab, "Chat with it" picks the model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QTabWidget, QWidget

from slmdesk.errors import NotFoundError
from slmdesk.ui.train.window_link import open_train_dialog
from tests.qt.train.conftest import Home, fake_command

WAIT_MS = 15_000


class Window(QWidget):
    """The main window's parts that the Train view uses, recording what it was asked."""

    def __init__(self, home: Home) -> None:
        super().__init__()
        self.db = home.db
        self.model = None
        self.calls: list[tuple[str, str]] = []
        self.tabs = QTabWidget(self)
        self.chat_page, self.classify_view = QWidget(), QWidget()
        self.tabs.addTab(self.chat_page, "Chat")
        self.tabs.addTab(self.classify_view, "Classify")
        self.classify_view.load_classifier = (  # type: ignore[attr-defined]
            lambda name: self.calls.append(("classifier", name)) or True)
        window = self

        class Models:
            def list(self) -> list[Any]:
                return []

            def find(self, name: str) -> str:
                if name != "Dialogues-trained":
                    raise NotFoundError(f"No model matches '{name}'.")
                return f"record of {name}"

        self.models = Models()
        self.refresh_models = lambda: window.calls.append(("refresh", ""))
        self.select_model = lambda record: window.calls.append(("select", record))
        self.show_error = lambda text: window.calls.append(("error", text))


@pytest.fixture
def window(qtbot: Any, home: Home) -> Iterator[Window]:
    w = Window(home)
    qtbot.addWidget(w)
    w.show()
    yield w


def test_use_in_classify_opens_the_classifier_in_the_classify_tab(
        qtbot: Any, window: Window) -> None:
    dialog = open_train_dialog(window, "Reviews", command=fake_command("classifier"))
    assert dialog.isVisible() and dialog.form.dataset_box.currentData() == "Reviews"
    with qtbot.waitSignal(dialog.process.finished, timeout=WAIT_MS):
        dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    assert ("refresh", "") in window.calls  # a new model or classifier is listed at once
    dialog.result_card.use_button.click()
    assert ("classifier", "Reviews-trained") in window.calls
    assert window.tabs.currentWidget() is window.classify_view


def test_chat_with_it_picks_the_model_and_shows_the_chat(qtbot: Any, window: Window) -> None:
    dialog = open_train_dialog(window, "Dialogues", command=fake_command("chat"))
    with qtbot.waitSignal(dialog.process.finished, timeout=WAIT_MS):
        dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    window.tabs.setCurrentWidget(window.classify_view)
    dialog.result_card.chat_button.click()
    assert ("select", "record of Dialogues-trained") in window.calls
    assert window.tabs.currentWidget() is window.chat_page
    dialog.chat_requested.emit("gone")
    assert ("error", "No model matches 'gone'.") in window.calls


def test_a_running_view_is_shown_again_not_replaced(qtbot: Any, window: Window) -> None:
    dialog = open_train_dialog(window, "Reviews", command=fake_command("cancel"))
    dialog.start()
    qtbot.waitUntil(lambda: bool(dialog.curve.loss_points), timeout=WAIT_MS)
    assert open_train_dialog(window, "Dialogues") is dialog  # still running: the same one
    with qtbot.waitSignal(dialog.process.cancelled, timeout=WAIT_MS):
        dialog.cancel()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    fresh = open_train_dialog(window, "Dialogues")
    assert fresh is not dialog and fresh.form.dataset_box.currentData() == "Dialogues"
    QApplication.processEvents()


def test_the_data_sets_tab_asks_for_the_train_view_of_its_data_set(
        qtbot: Any, home: Home) -> None:
    from slmdesk.ui.datasets.view import DatasetsView
    from slmdesk.ui.engine_thread import EngineClient

    engine = EngineClient()
    view = DatasetsView(home.db, engine)
    qtbot.addWidget(view)
    view.show()
    try:
        view.dataset_list.refresh_datasets(select="Reviews")
        assert view.dataset_list.train_button.isEnabled()
        with qtbot.waitSignal(view.train_requested) as asked:
            view.dataset_list.train_button.click()
        assert asked.args == ["Reviews"]
    finally:
        engine.shutdown()
        QApplication.processEvents()
