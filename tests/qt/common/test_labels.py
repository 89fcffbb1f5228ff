"""Labels that elide or wrap, so that no text sets the window's width."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from slmdesk.ui.common.labels import ElidedLabel, wrapping_label

LONG = ("Exported csv to /home/someone/Documents/a/very/long/folder/name/reviews-export.csv "
        "and its data card to /home/someone/Documents/a/very/long/folder/name/README.md")


def test_an_elided_label_keeps_its_text_and_shows_it_in_the_tooltip(qtbot: Any) -> None:
    label = ElidedLabel("short")
    qtbot.addWidget(label)
    label.resize(200, 20)
    label.show()
    assert label.toolTip() == ""  # nothing is cut
    label.setText(LONG)
    assert label.text() == LONG and label.is_elided()
    assert label.toolTip() == LONG
    label.resize(4000, 20)
    assert not label.is_elided() and label.toolTip() == ""
    # A tooltip of its own wins over the text.
    label.setToolTip("what this is")
    label.resize(100, 20)
    assert label.toolTip() == "what this is"


def test_an_elided_label_asks_for_little_width(qtbot: Any) -> None:
    label = ElidedLabel(LONG)
    qtbot.addWidget(label)
    assert label.sizeHint().width() > 500  # it would like the whole line…
    assert label.minimumSizeHint().width() < 100  # …but makes do with a few characters


def test_long_texts_do_not_widen_their_window(qtbot: Any) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    column = QVBoxLayout(window)
    row = QHBoxLayout()
    status = ElidedLabel("", window)
    row.addWidget(status, 1)
    column.addLayout(row)
    note = wrapping_label("", window, name="note")
    column.addWidget(note)
    window.resize(400, 200)
    window.show()
    qtbot.waitExposed(window)
    before = window.minimumSizeHint().width()
    status.setText(LONG)
    note.setText(LONG.replace(" ", "_"))  # even one long word
    assert window.minimumSizeHint().width() <= max(before, 100)
    assert window.width() <= 400
