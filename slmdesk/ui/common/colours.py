"""The colours the tabs give labels, right and wrong answers, and reviewed or mistaken rows
(text colours for errors and warnings come from the palette: ui/common/tones.py)."""

from __future__ import annotations

from PySide6.QtGui import QColor

# One colour per label, in the order the labels are defined (colour-blind-friendly-ish).
LABEL_COLOURS = ("#3b78c4", "#e07b39", "#3d9a5b", "#c2465a", "#8a63c2", "#2a9d9d",
                 "#b08a2e", "#6b7a8f", "#d16ba5", "#5a8f29")
CORRECT_COLOUR = QColor("#2e7d32")
WRONG_COLOUR = QColor("#c62828")
REVIEWED_TINT = QColor(61, 154, 91, 60)  # translucent: reads on light and dark themes
MISTAKE_TINT = QColor(198, 40, 40, 50)


def label_colour(position: int) -> QColor:
    """The colour of the label defined at ``position`` (the colours repeat after ten)."""
    return QColor(LABEL_COLOURS[position % len(LABEL_COLOURS)])
