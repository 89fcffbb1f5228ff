"""slmdesk/ui/main_window.py with its tabs: a message clears when its cause is gone (issue 16)
— a load error or refusal when another load starts or a model loads, a tab's "no model"
message when a model loads — and a message about something else stays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slmdesk.ui.common.model_choice import ModelChoice
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
        view.set_model(ModelChoice(model))  # as while no model is ready
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


def test_stop_the_reply_first_goes_when_the_reply_ends(qtbot: Any, app: Any) -> None:
    """"Stop the current reply…" (switching models, opening another chat) lasts while the
    reply is written, not after it."""
    from PySide6.QtCore import Qt

    from slmdesk.ui.chat.controller import STOP_FIRST
    from slmdesk.ui.model_session import REPLY_RUNNING
    from tests.qt.chat.test_window import LONG_STORY, send

    win = app.win
    earlier = win.chat.chats.create_conversation(title="Earlier")
    win.chat_page.settings_panel.max_tokens.setValue(300)
    win.chat_page.settings_panel.flush()
    send(qtbot, win, LONG_STORY, wait=False)
    qtbot.waitUntil(lambda: win.chat.writer is not None and win.chat.writer.text != "",
                    timeout=60_000)
    win.select_model(win.model)
    assert win.banner.isVisible() and win.banner.text() == REPLY_RUNNING
    win.chat._on_conversation_activated(earlier.id)
    assert win.banner.text() == STOP_FIRST
    qtbot.keyClick(win, Qt.Key.Key_Escape)  # Esc stops the reply
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=30_000)
    assert not win.banner.isVisible() and win.banner.text() == ""

    # Refused again while another reply runs; this time the reply ends by itself.
    win.chat_page.settings_panel.max_tokens.setValue(8)
    win.chat_page.settings_panel.flush()
    send(qtbot, win, "Say hello.", wait=False)
    qtbot.waitUntil(lambda: win.chat.gen_job is not None, timeout=10_000)
    win.select_model(win.model)
    assert win.banner.text() == REPLY_RUNNING
    qtbot.waitUntil(lambda: win.chat.gen_job is None, timeout=60_000)
    assert not win.banner.isVisible()


def test_messages_about_a_selection_or_a_model_in_use_go_with_their_cause(
        qtbot: Any, app: Any) -> None:
    from tests.qt.classify.test_view import pick_starter

    win = app.win
    # Classify: "Select one or more results first." until a row is selected.
    cv = win.classify_view
    cv.review.accept_selected()
    assert cv.banner.text() == "Select one or more results first."
    cv.table.selectionModel().selectionChanged.emit(cv.table.selectionModel().selection(),
                                                     cv.table.selectionModel().selection())
    assert not cv.banner.isVisible()
    # "There is nothing to classify" until texts are typed.
    pick_starter(cv)
    cv.run()
    assert "nothing to classify" in cv.banner.text()
    cv.text_input.texts.setPlainText("A text.")
    assert not cv.banner.isVisible()

    # Data sets: "Pick a data set of labelled texts first." until one is picked.
    dv = win.datasets_view
    dv.model_runs.prelabel()  # as the disabled Pre-label would
    assert dv.banner.text() == "Pick a data set of labelled texts first."
    dv.dataset_changed.emit("")
    assert not dv.banner.isVisible()

    # Models: "This model is in use…" until another model (or none) is loaded.
    lib = win.library_view
    lib.remove_model(win.model.id)
    assert "in use" in lib.banner.text()
    lib.set_loaded_model(win.model.id)  # the same model, still loaded
    assert "in use" in lib.banner.text()
    lib.set_loaded_model(None)
    assert lib.banner.text() == ""


def test_a_conversation_the_server_keeps_shows_in_the_chat_list(qtbot: Any, app: Any) -> None:
    from openai import OpenAI
    from PySide6.QtCore import Qt

    win = app.win
    view = win.server_view
    view.port_spin.setValue(0)  # any free port
    view.keep_chats_check.setChecked(True)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.control.running, timeout=30_000)
    assert view.control.base_url is not None and win.model is not None
    client = OpenAI(base_url=view.control.base_url, api_key="not-needed", max_retries=0,
                    timeout=60)
    with qtbot.waitSignal(view.control.chat_saved, timeout=30_000) as saved:
        client.chat.completions.create(
            model=win.model.name, messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=4)
    sidebar = win.chat_page.sidebar
    qtbot.waitUntil(lambda: sidebar.model.index_of(saved.args[0]).isValid(), timeout=5_000)
    assert sidebar.model.itemFromIndex(sidebar.model.index_of(saved.args[0])).text() \
        == "API: Say hello."
