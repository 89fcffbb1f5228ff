"""slmdesk/ui/common/widgets.py: the error banner, whose message with a cause lasts only until
that cause is gone."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from slmdesk.ui.common.widgets import error_banner


class Cause(QObject):
    gone = Signal(bool)  # as a reply's busy_changed: an argument the banner ignores


def test_a_message_with_a_cause_clears_when_the_cause_is_gone(qtbot: Any) -> None:
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    banner = error_banner(parent, "banner")
    parent.show()
    cause, other = Cause(), Cause()
    banner.show_error("Stop the current reply first.", until=cause.gone)
    assert banner.isVisible() and banner.text() == "Stop the current reply first."
    cause.gone.emit(False)
    assert not banner.isVisible() and banner.text() == ""

    # A later message replaces it, and the first one's cause no longer touches the banner.
    banner.show_error("Wait for it.", until=cause.gone)
    banner.show_error("Something else went wrong.")
    cause.gone.emit(False)
    assert banner.isVisible() and banner.text() == "Something else went wrong."

    # A message with another cause waits for that one; a clear forgets the cause.
    banner.show_error("Pick a row first.", until=other.gone)
    cause.gone.emit(False)
    assert banner.text() == "Pick a row first."
    banner.clear_error()
    banner.show_error("For good.")
    other.gone.emit(True)
    assert banner.text() == "For good."
