"""The Server tab (slmdesk/ui/server/panel.py) on the real 135M model: start and stop it, call
it with the official `openai` client, token generation and revoke, the request log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from slmdesk.catalog.registry import resolve_model
from slmdesk.settings import load_settings, save_settings
from slmdesk.startup import open_core
from slmdesk.ui.engine_thread import EngineClient
from slmdesk.ui.model_session import ModelSession
from slmdesk.ui.server.panel import ServerView

pytestmark = pytest.mark.model

START_TIMEOUT_MS = 30_000


@pytest.fixture
def session(qtbot: Any, model_path: Path) -> Iterator[ModelSession]:
    """The window's model session with the 135M model loaded (one thread)."""
    core = open_core()
    settings = load_settings(core.db)
    settings.n_threads, settings.max_context = 1, 1024
    save_settings(core.db, settings)
    engine = EngineClient()
    s = ModelSession(core.db, engine)
    with qtbot.waitSignal(s.loaded_now, timeout=60_000):
        assert s.select(resolve_model(core.db))
    yield s
    engine.shutdown()
    core.db.close()


@pytest.fixture
def panel(qtbot: Any, session: ModelSession) -> Iterator[ServerView]:
    view = ServerView(session.db, session)
    qtbot.addWidget(view)
    view.port_spin.setValue(0)  # any free port
    yield view
    view.shutdown()


def _start(qtbot: Any, panel: ServerView) -> str:
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.control.running, timeout=START_TIMEOUT_MS)
    url = panel.control.base_url
    assert url is not None
    return url.replace("0.0.0.0", "127.0.0.1")


def _client(url: str, key: str) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)


def test_start_call_with_openai_and_stop(qtbot: Any, qtmodeltester: Any, panel: ServerView,
                                         session: ModelSession) -> None:
    loads: list[Any] = []
    original = session.engine.engine.load
    session.engine.engine.load = lambda *a, **k: loads.append(a) or original(*a, **k)
    served: list[str] = []
    panel.serving_changed.connect(served.append)
    url = _start(qtbot, panel)
    assert panel.start_button.text() == "Stop server"
    assert session.model is not None and session.model.name in panel.state_label.text()
    assert served and session.model.name in served[-1]
    # The snippet names this server and this model.
    assert url in panel.python_snippet.toPlainText()
    assert session.model.name in panel.curl_snippet.toPlainText()

    client = _client(url, "not-needed")
    assert [m.id for m in client.models.list().data] == [session.model.name]
    reply = client.chat.completions.create(
        model=session.model.name, messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=8, temperature=0)
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    # One engine: the window's model served the request, nothing was loaded again.
    assert loads == []
    # Another model than the window's: refused, naming the one served.
    from openai import NotFoundError

    with pytest.raises(NotFoundError, match="serves"):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}], max_tokens=2)

    # The request log shows the requests with their status.
    qtbot.waitUntil(lambda: any(r.path == "/v1/chat/completions" and r.status == 200
                                for r in panel.log_model.rows), timeout=5_000)
    assert any(r.status == 404 for r in panel.log_model.rows)
    assert all(r.seconds >= 0 for r in panel.log_model.rows)
    qtmodeltester.check(panel.log_model)

    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.control.state == "stopped", timeout=START_TIMEOUT_MS)
    assert panel.start_button.text() == "Start server" and served[-1] == ""
    from openai import APIConnectionError

    with pytest.raises(APIConnectionError):
        client.models.list()
    # The window keeps its model.
    assert session.loaded is not None and session.engine.engine.is_loaded


def test_new_token_revokes_the_old_one(qtbot: Any, panel: ServerView) -> None:
    from openai import AuthenticationError

    qtbot.mouseClick(panel.new_token_button, Qt.MouseButton.LeftButton)
    old = panel.token_edit.text()
    assert old.startswith("sk-slmdesk-") and len(old) > 30
    url = _start(qtbot, panel)
    assert old in panel.python_snippet.toPlainText()
    assert _client(url, old).models.list().data
    with pytest.raises(AuthenticationError):
        _client(url, "wrong-token").models.list()

    # Revoke: a new token, and the running server restarts on the same address with it.
    qtbot.mouseClick(panel.new_token_button, Qt.MouseButton.LeftButton)
    new = panel.token_edit.text()
    assert new != old
    qtbot.waitUntil(lambda: panel.control.running and panel.control.config is not None
                    and panel.control.config.token == new, timeout=START_TIMEOUT_MS)
    assert panel.control.base_url is not None
    assert panel.control.base_url.replace("0.0.0.0", "127.0.0.1") == url
    with pytest.raises(AuthenticationError):
        _client(url, old).models.list()
    assert _client(url, new).models.list().data
    # 401s are in the request log too.
    qtbot.waitUntil(lambda: sum(r.status == 401 for r in panel.log_model.rows) == 2,
                    timeout=5_000)
    # The token is remembered for the next start.
    assert ServerView(panel.db, panel.control.session).token_edit.text() == new


def test_other_machines_need_a_token(qtbot: Any, panel: ServerView) -> None:
    assert not panel.token_edit.text()
    panel.network_check.setChecked(True)
    assert panel.token_edit.text()  # generated, as listening beyond 127.0.0.1 requires
    assert not panel.remove_token_button.isEnabled()
    assert panel.settings.server_config().host == "0.0.0.0"
    panel.network_check.setChecked(False)
    qtbot.mouseClick(panel.remove_token_button, Qt.MouseButton.LeftButton)
    assert panel.settings.server_config().token is None


def test_keep_chats_is_off_by_default_saved_and_stores_requests(
        qtbot: Any, panel: ServerView, session: ModelSession) -> None:
    from slmdesk.store.chats import ChatRepository

    assert not panel.keep_chats_check.isChecked()
    assert not panel.settings.server_config().keep_chats
    qtbot.mouseClick(panel.keep_chats_check, Qt.MouseButton.LeftButton)
    assert panel.settings.server_config().keep_chats
    # Remembered for the next start.
    assert ServerView(panel.db, panel.control.session).keep_chats_check.isChecked()
    url = _start(qtbot, panel)
    assert not panel.keep_chats_check.isEnabled()  # changes with the server stopped only
    assert session.model is not None
    with qtbot.waitSignal(panel.control.chat_saved, timeout=30_000) as saved:
        reply = _client(url, "not-needed").chat.completions.create(
            model=session.model.name, messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8, temperature=0)
    path = ChatRepository(panel.db).path(saved.args[0])
    assert [m.content for m in path] == ["Say hello.", reply.choices[0].message.content]
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.control.state == "stopped", timeout=START_TIMEOUT_MS)
    assert panel.keep_chats_check.isEnabled()


def test_stopping_the_server_keeps_a_running_reply_as_interrupted(
        qtbot: Any, panel: ServerView, session: ModelSession) -> None:
    from slmdesk.store.chats import ChatRepository

    panel.keep_chats_check.setChecked(True)
    url = _start(qtbot, panel)
    assert session.model is not None
    with qtbot.waitSignal(panel.control.chat_saved, timeout=30_000) as saved:
        stream = _client(url, "not-needed").chat.completions.create(
            model=session.model.name, stream=True, max_tokens=2000, temperature=1.0, seed=1,
            messages=[{"role": "user", "content": "Write a very long story."}])
        received = ""
        for i, chunk in enumerate(stream):
            received += chunk.choices[0].delta.content or ""
            if i >= 4:
                break
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.control.state == "stopped", timeout=START_TIMEOUT_MS)
    stream.close()
    answer = ChatRepository(panel.db).path(saved.args[0])[-1]
    assert (answer.status, answer.finish_reason) == ("complete", "interrupted")
    assert answer.content.startswith(received)


def test_a_bad_setting_is_said_and_nothing_starts(qtbot: Any, panel: ServerView) -> None:
    panel.cors_edit.setText("localhost:3000")
    panel.cors_edit.editingFinished.emit()
    with qtbot.waitSignal(panel.banner.shown, timeout=5_000) as shown:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert "CORS origin" in shown.args[0]
    assert panel.control.state == "stopped"


def test_no_model_is_said_until_one_is_chosen(qtbot: Any, panel: ServerView,
                                              session: ModelSession) -> None:
    from slmdesk.ui.server.control import NO_MODEL

    model = session.model
    session.model = None  # as before any model is chosen
    with qtbot.waitSignal(panel.banner.shown, timeout=5_000) as shown:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert shown.args[0] == NO_MODEL and panel.control.state == "stopped"
    session.model = model
    session.changed.emit()  # the picker chose one
    assert not panel.banner.isVisible() and panel.banner.text() == ""


def test_the_window_and_the_server_take_turns_on_one_engine(qtbot: Any, panel: ServerView,
                                                            session: ModelSession) -> None:
    import threading

    from slmdesk.engine.params import SamplingParams

    url = _start(qtbot, panel)
    assert session.model is not None
    name = session.model.name
    replies: list[Any] = []
    request = threading.Thread(target=lambda: replies.append(
        _client(url, "not-needed").chat.completions.create(
            model=name, messages=[{"role": "user", "content": "Count to five."}],
            max_tokens=16, temperature=0)))
    request.start()
    job = session.engine.generate([{"role": "user", "content": "Hi"}],
                                  SamplingParams(temperature=0, max_tokens=16))
    with qtbot.waitSignal(job.finished, timeout=60_000) as done:
        pass
    qtbot.waitUntil(lambda: not request.is_alive(), timeout=60_000)
    assert done.args[0].finish_reason in ("stop", "length")
    assert replies and replies[0].choices[0].finish_reason in ("stop", "length")
    # While it serves, the idle unload leaves the model; once stopped it may unload again.
    session.unload_if_idle()
    assert session.loaded is not None
    panel.toggle_server()
    qtbot.waitUntil(lambda: panel.control.state == "stopped", timeout=START_TIMEOUT_MS)
    with qtbot.waitSignal(session.engine.model_unloaded, timeout=30_000):
        session.unload_if_idle()
    assert session.loaded is None
