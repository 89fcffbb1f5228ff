"""The palette's readable error, warning and good-news colours, on light and dark themes."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QStyleFactory

from slmdesk.ui.common.tones import TONE_HUES, contrast_ratio, tone_colour, tone_style
from slmdesk.ui.common.widgets import error_banner


def dark_palette() -> QPalette:
    """A dark theme as desktops ship it: light text on dark grey."""
    palette = QPalette()
    for role, colour in ((QPalette.ColorRole.Window, "#353535"),
                         (QPalette.ColorRole.Base, "#2a2a2a"),
                         (QPalette.ColorRole.WindowText, "#f0f0f0"),
                         (QPalette.ColorRole.Text, "#f0f0f0")):
        palette.setColor(role, QColor(colour))
    return palette


def light_palette() -> QPalette:
    return QStyleFactory.create("Fusion").standardPalette()


def test_contrast_ratio_matches_wcag() -> None:
    assert contrast_ratio(QColor("black"), QColor("white")) == pytest.approx(21)
    assert contrast_ratio(QColor("#777777"), QColor("white")) == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio(QColor("#123456"), QColor("#123456")) == pytest.approx(1)


@pytest.mark.parametrize("palette", [light_palette, dark_palette], ids=["light", "dark"])
@pytest.mark.parametrize("tone", list(TONE_HUES))
def test_every_tone_reads_on_both_backgrounds(qapp: Any, palette: Any, tone: Any) -> None:
    colours = palette()
    colour = tone_colour(tone, colours)
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
        assert contrast_ratio(colour, colours.color(role)) >= 4.5, (tone, role)
    # Still recognisably red, amber or green, not a plain grey.
    assert colour.hslSaturation() > 60


def test_the_old_fixed_red_fails_on_dark_and_the_tone_fixes_it(qapp: Any) -> None:
    dark = dark_palette()
    grey = dark.color(QPalette.ColorRole.Window)
    assert contrast_ratio(QColor("#b00020"), grey) < 3  # the defect: red on dark grey
    assert contrast_ratio(tone_colour("error", dark), grey) >= 4.5


def test_a_mid_grey_background_still_gets_readable_text(qapp: Any) -> None:
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Window, QColor("#808080"))
    palette.setColor(QPalette.ColorRole.Base, QColor("#808080"))
    for tone in TONE_HUES:
        assert contrast_ratio(tone_colour(tone, palette), QColor("#808080")) >= 4.5


def test_banners_and_notes_take_the_application_palette(qapp: Any, qtbot: Any) -> None:
    old = qapp.palette()
    qapp.setPalette(dark_palette())
    try:
        assert tone_colour("error").name() in tone_style("error")
        from PySide6.QtWidgets import QWidget

        parent = QWidget()
        qtbot.addWidget(parent)
        banner = error_banner(parent, "banner")
        assert tone_colour("error").name() in banner.styleSheet()
        assert "#b00020" not in banner.styleSheet()
    finally:
        qapp.setPalette(old)


def test_fit_verdicts_take_their_tone_from_the_palette(qapp: Any) -> None:
    from slmdesk.ui.library.table_models import VERDICT_COLOURS

    old = qapp.palette()
    qapp.setPalette(dark_palette())
    try:
        assert VERDICT_COLOURS["fits"] == tone_colour("ok")
        assert VERDICT_COLOURS["wont_fit"] == tone_colour("error")
        assert set(VERDICT_COLOURS) == {"fits", "tight", "wont_fit"}
    finally:
        qapp.setPalette(old)
