"""Settings → Engines (slmdesk/ui/server/engines_dialog.py): add, check, remove."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt

from slmdesk.startup import open_core
from slmdesk.store.engines import EngineRepository
from slmdesk.ui.server.engines_dialog import EnginesDialog


@pytest.fixture
def dialog(qtbot: Any) -> Iterator[EnginesDialog]:
    core = open_core()
    d = EnginesDialog(core.db)
    qtbot.addWidget(d)
    yield d
    qtbot.waitUntil(lambda: d.tasks.pending() == 0, timeout=30_000)
    core.db.close()


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_add_an_unreachable_engine_shows_why_then_remove_it(
    qtbot: Any, qtmodeltester: Any, dialog: EnginesDialog
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    dialog.name_edit.setText("nowhere")
    dialog.url_edit.setText(url)
    dialog.key_edit.setText("secret-key")
    with qtbot.waitSignal(dialog.checked, timeout=30_000) as checked:
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    name, error = checked.args
    assert name == "nowhere" and error
    assert dialog.banner.isVisibleTo(dialog) and "nowhere" in dialog.banner.text()
    saved = EngineRepository(dialog.repo.db).get("nowhere")
    assert saved.base_url == url.removesuffix("/v1") and saved.api_key == "secret-key"
    assert saved.capabilities is None  # a failed check records nothing
    assert [e.name for e in dialog.table_model.rows] == ["nowhere"]
    qtmodeltester.check(dialog.table_model)
    assert "not been checked" in dialog.details.toPlainText()
    assert not dialog.name_edit.text()  # the form is ready for the next one

    dialog.table.selectRow(0)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert dialog.table_model.rows == [] and EngineRepository(dialog.repo.db).list() == []


def test_a_bad_address_or_a_duplicate_name_is_refused(qtbot: Any,
                                                      dialog: EnginesDialog) -> None:
    dialog.name_edit.setText("x")
    dialog.url_edit.setText("not a url")
    assert not dialog.add_from_form()
    assert "not an engine address" in dialog.banner.text()
    dialog.repo.add("x", "http://127.0.0.1:1", None)
    dialog.url_edit.setText("http://127.0.0.1:2")
    assert not dialog.add_from_form()
    assert "already an engine named" in dialog.banner.text()


@pytest.mark.model
def test_check_a_running_slmdesk_server_shows_its_capabilities(
    qtbot: Any, dialog: EnginesDialog, model_path: Any, tmp_path: Any
) -> None:
    from slmdesk.catalog.registry import resolve_model
    from slmdesk.server.config import ServerConfig
    from slmdesk.server.models import LoadOptions, ModelLibrary
    from slmdesk.server.runner import LocalServer

    model = resolve_model(dialog.repo.db)
    with LocalServer(ServerConfig(port=0), model, library=ModelLibrary(),
                     load_options=LoadOptions(n_threads=1)).start() as server:
        dialog.repo.add("mine", server.base_url.removesuffix("/v1"), None)
        dialog.refresh(select="mine")
        with qtbot.waitSignal(dialog.checked, timeout=120_000) as checked:
            qtbot.mouseClick(dialog.check_button, Qt.MouseButton.LeftButton)
        assert checked.args == ["mine", ""]
    saved = dialog.repo.get("mine")
    assert saved.capabilities is not None and saved.capabilities["kind"] == "slmdesk"
    details = dialog.details.toPlainText()
    assert "embeddings" in details and model.name in details
    assert dialog.table_model.rows[0].checked_at is not None
