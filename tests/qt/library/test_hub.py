"""The Search the Hub page: an offline search answers at once and a search can be cancelled."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import Qt

from slmdesk.catalog import hub as hub_mod
from slmdesk.catalog.hub import HubRepo


def test_search_without_network_says_why_at_once_without_retrying(
    qtbot: Any, library: Any, refused_hub: list[object]
) -> None:
    library.search_box.setText("smollm2")
    with qtbot.waitSignal(library.search_finished) as done:
        qtbot.mouseClick(library.search_button, Qt.MouseButton.LeftButton)
    assert done.args == [-1]
    assert "refused" in library.hub_status.text()
    assert len(refused_hub) == 1  # one try: no retry for a refused connection
    assert library.search_button.isEnabled()
    assert library.search_cancel_button.isHidden()


def test_a_search_can_be_cancelled_and_its_late_answer_is_dropped(
    qtbot: Any, library: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_search(query: str, **kwargs: Any) -> list[HubRepo]:
        started.set()
        release.wait(30)
        return [HubRepo("late/answer-GGUF", 1, 1, None, False, ())]

    monkeypatch.setattr(hub_mod, "search_models", slow_search)
    library.search_box.setText("anything")
    library.search_hub()
    assert not library.search_cancel_button.isHidden()
    assert not library.search_button.isEnabled()
    qtbot.waitUntil(started.is_set)
    with qtbot.waitSignal(library.search_finished) as done:
        qtbot.mouseClick(library.search_cancel_button, Qt.MouseButton.LeftButton)
    assert done.args == [-1] and library.hub_status.text() == "Cancelled."
    assert library.search_button.isEnabled()
    assert library.search_cancel_button.isHidden()
    release.set()
    qtbot.waitUntil(lambda: library.tasks.pending() == 0)
    assert library.repos.rows == []  # the answer came too late and was dropped
