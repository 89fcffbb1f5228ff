"""slmdesk/ui/main_window.py with its tabs: a message clears when its cause is gone (issue 16)
— a load error or refusal when another load starts or a model loads, a tab's "no model"
message when a model loads — and a message about something else stays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slmdesk.ui.common.model_messages import NO_MODEL_LOADED
from tests.qt.chat.test_window import App

pytestmark = pytest.mark.model


@pytest.fixture
def app(qtbot: Any, model_path: Path) -> Any:
    a = App(qtbot)
    yield a
    if a.core.db.conn is not None:
        a.close()


def test_a_load_error_clears_when_a_load_starts_and_a_model_loads(
        qtbot: Any, app: Any) -> None:
    win = app.win
    model = win.model
    win.session.load_failed.emit("The model file could not be loaded: boom.")
    assert win.banner.isVisible() and "boom" in win.banner.text()
    with qtbot.waitSignal(win.session.loading_started, timeout=10_000):
        win.select_model(model)
    assert not win.banner.isVisible()  # its cause was the earlier load
    qtbot.waitUntil(lambda: win.loaded is not None, timeout=60_000)
    assert not win.banner.isVisible()

    # A refusal, then a load that succeeds: cleared too.
    win.session.refused.emit("Not enough memory for this model.", True)
    assert win.banner.isVisible() and win.load_anyway_button.isVisible()
    win.select_model(model)
    qtbot.waitUntil(lambda: win.loaded is not None, timeout=60_000)
    assert not win.banner.isVisible() and not win.load_anyway_button.isVisible()

    # Another message is not the load's: a new load leaves it to the load's own outcome.
    win.show_error("Something else.")
    win._on_session_loading_started(model.path)
    assert win.banner.isVisible() and win.banner.text() == "Something else."


def test_the_tabs_no_model_message_clears_when_a_model_loads(app: Any) -> None:
    win = app.win
    model, loaded = win.model, win.loaded
    for view in (win.classify_view, win.datasets_view):
        view.set_model(model, None)  # as while no model is ready
    win.classify_view.text_input.texts.setPlainText("a text to classify")
    win.classify_view.run()
    assert win.classify_view.banner.text() == NO_MODEL_LOADED
    win.datasets_view.show_error(NO_MODEL_LOADED)
    win.chat_page.composer.setPlainText("Hello")
    win.session.loaded = None
    win.chat.send_requested()
    assert win.banner.text() == NO_MODEL_LOADED  # the window's own banner, too
    win.session.loaded = loaded
    win.session.changed.emit()  # every tab follows the session
    win.session.loaded_now.emit(loaded)
    for banner in (win.classify_view.banner, win.datasets_view.banner, win.banner):
        assert not banner.isVisible() and banner.text() == ""
    # A tab's other message stays when a model loads: its cause is not the model.
    win.classify_view.show_error("There is nothing to classify.")
    win.session.changed.emit()
    assert win.classify_view.banner.text() == "There is nothing to classify."
