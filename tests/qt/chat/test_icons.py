"""slmdesk/ui/chat/icons.py and the rating buttons: no emoji font needed (issue 16, item 10)."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QPalette

from slmdesk.ui.chat.icons import thumb_icon
from slmdesk.ui.chat.view import MessageWidget
from tests.qt.chat.test_view import _message


def _ink(icon: QIcon, mode: QIcon.Mode = QIcon.Mode.Normal) -> list[tuple[int, int]]:
    image = icon.pixmap(QSize(16, 16), mode).toImage()
    return [(x, y) for y in range(16) for x in range(16) if image.pixelColor(x, y).alpha() > 128]


def test_thumbs_are_drawn_not_typed(qtbot: Any) -> None:
    # Without an emoji font, "👍"/"👎" as button text drew as empty boxes.
    widget = MessageWidget(dataclasses.replace(_message("hi", "complete")), ["m1"])
    qtbot.addWidget(widget)
    for button in (widget.up_button, widget.down_button):
        assert button is not None
        assert button.text() == "" and not button.icon().isNull()
        assert button.accessibleName() and button.toolTip()
        assert len(_ink(button.icon())) > 40  # a shape, not a blank
    up, down = _ink(widget.up_button.icon()), _ink(widget.down_button.icon())
    assert {(x, 15 - y) for x, y in up} == set(down)  # down is up, upside down


def test_thumb_takes_the_palette_text_colour(qtbot: Any) -> None:
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.ButtonText, "#ffffff")
    image = thumb_icon(palette).pixmap(QSize(16, 16)).toImage()
    inked = [image.pixelColor(x, y) for y in range(16) for x in range(16)
             if image.pixelColor(x, y).alpha() == 255]
    assert inked and all(c.red() == 255 and c.green() == 255 for c in inked)
