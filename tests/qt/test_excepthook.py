"""Exceptions that escape a slot: expected failures reach the banner, bugs the log."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import pytest
from PySide6.QtWidgets import QDialog, QMessageBox, QWidget

from slmdesk.app import report_exception
from slmdesk.errors import NotFoundError


class Window(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def show_error(self, text: str) -> None:
        self.errors.append(text)


@pytest.fixture
def window(qtbot: Any) -> Window:
    w = Window()
    qtbot.addWidget(w)
    w.show()
    return w


def test_a_full_disk_in_a_slot_goes_to_the_banner(
        window: Window, caplog: pytest.LogCaptureFixture) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (x TEXT)")
    db.execute("PRAGMA max_page_count = 2")  # the database cannot grow: SQLITE_FULL
    with pytest.raises(sqlite3.OperationalError) as excinfo:
        db.execute("INSERT INTO t VALUES (?)", ["x" * 100_000])
    with caplog.at_level(logging.WARNING, logger="slmdesk.app"):
        report_exception(type(excinfo.value), excinfo.value, excinfo.value.__traceback__)
    assert len(window.errors) == 1 and window.errors[0].startswith("The disk is full")
    assert "unexpected error" not in caplog.text


def test_a_user_facing_error_in_a_slot_goes_to_the_banner(window: Window) -> None:
    exc = NotFoundError("No model with id X.")
    report_exception(NotFoundError, exc, None)
    assert window.errors == ["No model with id X."]


def test_a_bug_is_logged_with_its_traceback_and_shown_in_a_dialog(
        window: Window, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append(box.text())
        return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError as exc:
        with caplog.at_level(logging.ERROR, logger="slmdesk.app"):
            report_exception(ZeroDivisionError, exc, exc.__traceback__)
    assert window.errors == []
    assert shown and "boom" in shown[0] and "keeps running" in shown[0]
    assert "Traceback" in caplog.text and "ZeroDivisionError" in caplog.text
