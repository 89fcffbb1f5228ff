"""The first start's welcome in the chat area: what works offline now, and the catalog
model recommended for this machine's memory, with Download, Import and Find buttons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QVBoxLayout, QWidget

from slmdesk.catalog import curated, fit
from slmdesk.errors import UserFacingError
from slmdesk.ui.common.labels import wrapping_label
from slmdesk.ui.common.tab_frame import ButtonSpec, add_push_buttons

OFFLINE_TEXT = (
    "<b>Welcome to slmdesk.</b> Everything runs on this computer, offline: the small model "
    "that comes with the app can chat, classify text and help build data sets right now. "
    "It is tiny (135M parameters), so its answers are often wrong; a larger model does "
    "much better."
)


def recommend(entries: Sequence[Any], budget: fit.MemoryBudget, context: int) -> Any | None:
    """The largest catalog model that fits this machine's memory at ``context`` tokens
    with room to spare (the fit estimate's "fits", not "tight"); None when none does."""
    best: tuple[int, int, Any] | None = None
    for entry in entries:
        try:
            estimate = fit.estimate_for_entry(entry, context, budget=budget)
        except Exception:  # noqa: BLE001 - an entry the estimate cannot read is skipped
            continue
        if estimate.verdict != "fits":
            continue
        key = (int(entry.parameters), -int(entry.size_bytes))
        if best is None or key > best[:2]:
            best = (*key, entry)
    return None if best is None else best[2]


class WelcomePanel(QFrame):
    """Shown in place of an empty transcript until the first chat exists."""

    download_requested = Signal(object)  # the recommended CatalogEntry
    import_requested = Signal()
    find_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.entry: Any = None
        layout = QVBoxLayout(self)
        intro = wrapping_label(OFFLINE_TEXT, self)
        layout.addWidget(intro)
        self.recommendation = wrapping_label("", self, name="welcome_recommendation")
        layout.addWidget(self.recommendation)
        row = QHBoxLayout()
        self.download_button, self.import_button, self.find_button = add_push_buttons(
            row, self,
            ButtonSpec("Download", name="welcome_download",
                       clicked=lambda: self.download_requested.emit(self.entry)),
            ButtonSpec("Import a model file…", clicked=self.import_requested),
            ButtonSpec("Find on this computer", "Look for .gguf models in the usual folders",
                       clicked=self.find_requested))
        row.addStretch(1)
        layout.addLayout(row)

    def recommend_for(self, context: int) -> None:
        """Pick the recommended catalog model for this machine (read once, when shown)."""
        try:
            entries = curated.load_catalog()
            self.entry = recommend(entries, fit.system_memory(), context)
        except UserFacingError:
            self.entry = None
        if self.entry is None:
            self.recommendation.setText(
                "No catalog model fits this machine's free memory with room to spare.")
        else:
            e = self.entry
            need = fit.estimate_for_entry(e, context, budget=fit.system_memory())
            self.recommendation.setText(
                f"Recommended for this computer: <b>{e.name}</b> ({e.quantization}, "
                f"{fit.format_bytes(e.size_bytes)} download) — {e.good_at.rstrip('.')}. "
                f"{need.sentence}")
        self.download_button.setVisible(self.entry is not None)
