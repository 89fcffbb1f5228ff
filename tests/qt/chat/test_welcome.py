"""slmdesk/ui/chat/welcome.py: a first start that leads somewhere (issue 16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slmdesk.catalog import curated, fit
from slmdesk.store.chats import ChatRepository
from slmdesk.ui.chat.welcome import recommend
from tests.qt.chat.test_window import App

GIB = 1024**3


def test_recommend_picks_the_largest_model_that_fits() -> None:
    entries = curated.load_catalog()
    small = fit.MemoryBudget(total_ram=2 * GIB, available_ram=1 * GIB)
    large = fit.MemoryBudget(total_ram=64 * GIB, available_ram=48 * GIB)
    little, big = recommend(entries, small, 4096), recommend(entries, large, 4096)
    assert little is not None and big is not None
    assert big.parameters >= little.parameters
    for entry, budget in ((little, small), (big, large)):
        assert fit.estimate_for_entry(entry, 4096, budget=budget).verdict == "fits"
    none = fit.MemoryBudget(total_ram=64 * 1024**2, available_ram=16 * 1024**2)
    assert recommend(entries, none, 4096) is None


@pytest.mark.model
def test_first_start_welcomes_and_routes_to_the_models_tab(
    qtbot: Any, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(qtbot)
    win = app.win
    try:
        welcome = win.chat_page.welcome
        assert welcome.isVisible() and "offline" in welcome.findChild(
            type(welcome.recommendation)).text()
        started: list[tuple[str, str]] = []
        monkeypatch.setattr(win.library_view, "start_download",
                            lambda repo, name, **_kw: started.append((repo, name)))
        scans: list[bool] = []
        monkeypatch.setattr(win.library_view, "scan_folders", lambda: scans.append(True))
        if welcome.entry is not None:  # this machine's memory decides
            assert welcome.entry.name in welcome.recommendation.text()
            assert ".." not in welcome.recommendation.text()  # good_at ends with its own "."
            welcome.download_button.click()
            assert started == [(welcome.entry.repo_id, welcome.entry.filename)]
            assert win.tabs.currentWidget() is win.library_view
        win.tabs.setCurrentWidget(win.chat_page)
        welcome.find_button.click()
        assert scans and win.tabs.currentWidget() is win.library_view
        # Once a chat exists, the welcome is gone, and does not come back for a new chat.
        win.tabs.setCurrentWidget(win.chat_page)
        conv = ChatRepository(win.db).create_conversation(title="First")
        win.chat.open_conversation(conv.id)
        assert not welcome.isVisible()
        win.chat.new_chat()
        assert not welcome.isVisible()
    finally:
        app.close()


@pytest.mark.model
def test_find_on_this_computer_scans_the_folders_once(
    qtbot: Any, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 16, item 10: the first "Find on this computer" scanned twice (the button's scan
    # and the Models tab's own scan when first shown).
    app = App(qtbot)
    win = app.win
    try:
        scans: list[bool] = []
        monkeypatch.setattr(win.library_view, "scan_folders", lambda: scans.append(True))
        assert not win.library_view.isVisible()  # the Models tab was never shown
        win.chat_page.welcome.find_button.click()
        assert win.tabs.currentWidget() is win.library_view and win.library_view.isVisible()
        assert scans == [True]
        # Later visits scan no more by themselves; the button asks again, once.
        win.tabs.setCurrentWidget(win.chat_page)
        win.tabs.setCurrentWidget(win.library_view)
        assert scans == [True]
        win.tabs.setCurrentWidget(win.chat_page)
        win.chat_page.welcome.find_button.click()
        assert scans == [True, True]
    finally:
        app.close()
