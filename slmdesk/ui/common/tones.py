"""Readable text colours for errors, warnings and good news, taken from the current palette
so that they keep a WCAG contrast ratio of at least 4.5 on light and dark themes alike."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

Tone = Literal["error", "warn", "ok"]

# The hue each tone starts from; its lightness moves away from the background until it reads.
TONE_HUES: dict[Tone, str] = {"error": "#c62828", "warn": "#b26a00", "ok": "#2e7d32"}
MIN_CONTRAST = 4.5  # WCAG 2 AA for normal text

_cache: dict[tuple[Tone, int, int], QColor] = {}


def relative_luminance(colour: QColor) -> float:
    """WCAG 2's relative luminance of an sRGB colour (0 black … 1 white)."""

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.03928 else ((channel + 0.055) / 1.055) ** 2.4

    return (0.2126 * linear(colour.redF()) + 0.7152 * linear(colour.greenF())
            + 0.0722 * linear(colour.blueF()))


def contrast_ratio(first: QColor, second: QColor) -> float:
    """WCAG 2's contrast ratio of two colours, from 1 (the same) to 21 (black on white)."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def backgrounds(palette: QPalette) -> tuple[QColor, QColor]:
    """The two backgrounds text sits on: the window's (labels) and the base (tables, edits)."""
    return palette.color(QPalette.ColorRole.Window), palette.color(QPalette.ColorRole.Base)


def tone_colour(tone: Tone, palette: QPalette | None = None) -> QColor:
    """The colour of ``tone`` that reads on both backgrounds of ``palette`` (default: the
    application's), as close to its usual hue as the contrast allows."""
    palette = palette if palette is not None else QApplication.palette()
    window, base = backgrounds(palette)
    key = (tone, window.rgba(), base.rgba())
    if key not in _cache:
        _cache[key] = _readable(QColor(TONE_HUES[tone]), window, base)
    return QColor(_cache[key])


def _readable(colour: QColor, *grounds: QColor) -> QColor:
    dark_ground = sum(relative_luminance(g) for g in grounds) / len(grounds) < 0.18
    hue, saturation, lightness = colour.hslHue(), colour.hslSaturation(), colour.lightness()
    step = 6 if dark_ground else -6  # lighter on dark grounds, darker on light ones
    candidate = QColor(colour)
    while min(contrast_ratio(candidate, g) for g in grounds) < MIN_CONTRAST:
        lightness += step
        if not 0 <= lightness <= 255:  # a ground in the middle: plain text colour wins
            return QColor("white" if dark_ground else "black")
        candidate = QColor.fromHsl(hue, saturation, lightness)
    return candidate


def tone_style(tone: Tone, extra: str = "") -> str:
    """A label style sheet that writes in ``tone`` (``extra``: more declarations)."""
    return f"QLabel {{ color: {tone_colour(tone).name()}; {extra}}}"


class ToneColours(Mapping[str, QColor]):
    """A read-only mapping from a key (a fit verdict, say) to the current palette's colour
    for its tone, looked up when asked, so it follows the palette."""

    def __init__(self, tones: Mapping[str, Tone]) -> None:
        self._tones = dict(tones)

    def __getitem__(self, key: str) -> QColor:
        return tone_colour(self._tones[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._tones)

    def __len__(self) -> int:
        return len(self._tones)
