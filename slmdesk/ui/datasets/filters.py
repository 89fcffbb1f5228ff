"""The Data sets tab's filters and search over the examples, and the counts strip."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QObject,
)

from slmdesk.store.datasets import SPLITS, UNASSIGNED
from slmdesk.ui.common.colours import label_colour

if TYPE_CHECKING:
    pass

if TYPE_CHECKING:
    from slmdesk.ui.datasets.view import DatasetsView


ANY = ""  # "no filter" in the filter combos


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&#39;").replace('"', "&quot;"))


class ExampleFilters:
    """The Data sets tab's filters and search over the examples, and the counts strip."""

    def __init__(self, view: DatasetsView) -> None:
        self.view = view

    def _reset_filters(self) -> None:
        v = self.view
        widgets: list[QObject] = [v.label_filter, v.split_filter, v.source_filter,
                                  v.unlabelled_box, v.disagreement_box, v.search_box]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            self.view.label_filter.setCurrentIndex(0)
            self.view.split_filter.setCurrentIndex(0)
            self.view.source_filter.setCurrentIndex(0)
            self.view.unlabelled_box.setChecked(False)
            self.view.disagreement_box.setChecked(False)
            self.view.search_box.clear()
        finally:
            for w, b in zip(widgets, blocked, strict=True):
                w.blockSignals(b)
        self.view._search_timer.stop()

    def clear_filters(self) -> None:
        self._reset_filters()
        self.view.label_filter.setEnabled(True)
        self.view.reload()

    def _refill_filters(self) -> None:
        labels = self.view.dataset.labels if self.view.dataset is not None else []
        sources: list[str] = []
        if self.view.dataset is not None:
            sources = [str(s) for s in self.view.datasets.stats(self.view.dataset).per_source]
        for box, items, all_text in ((self.view.label_filter, labels, "All labels"),
                                     (self.view.source_filter, sources, "All sources")):
            current = box.currentData()
            blocked = box.blockSignals(True)
            try:
                box.clear()
                box.addItem(all_text, ANY)
                for n, item in enumerate(items, start=1):
                    box.addItem(f"{n}: {item}" if box is self.view.label_filter and n <= 9
                                else item, item)
                at = box.findData(current) if current else 0
                box.setCurrentIndex(max(at, 0))
            finally:
                box.blockSignals(blocked)

    def _filters_changed(self) -> None:
        self.view.label_filter.setEnabled(not self.view.unlabelled_box.isChecked())
        self.view.reload()

    def set_label_filter(self, label: str) -> None:
        self.view.label_filter.setCurrentIndex(max(self.view.label_filter.findData(label), 0))

    def set_split_filter(self, split: str) -> None:
        self.view.split_filter.setCurrentIndex(max(self.view.split_filter.findData(split), 0))

    def set_source_filter(self, source: str) -> None:
        self.view.source_filter.setCurrentIndex(max(self.view.source_filter.findData(source), 0))

    def set_search(self, text: str) -> None:
        """Search now (the box otherwise waits for typing to pause)."""
        self.view.search_box.setText(text)
        self.view._search_timer.stop()
        self.view.reload()

    def _count_clicked(self, link: str) -> None:
        kind, _, value = link.partition(":")
        if kind == "label":
            self.view.unlabelled_box.setChecked(False)
            self.set_label_filter(value)
        elif kind == "split":
            self.set_split_filter(value)
        elif kind == "unlabelled":
            self.view.unlabelled_box.setChecked(True)

    def query_kwargs(self) -> dict[str, Any]:
        unlabelled = self.view.unlabelled_box.isChecked()
        return {
            "label": None if unlabelled else (self.view.label_filter.currentData() or None),
            "unlabelled": unlabelled,
            "split": self.view.split_filter.currentData() or None,
            "source": self.view.source_filter.currentData() or None,
            "disagreement": self.view.disagreement_box.isChecked(),
            "search": self.view.search_box.text().strip() or None,
        }

    def _update_counts(self) -> None:
        if self.view.dataset is None:
            self.view.counts.setText("No data set yet: create one (New…) or import a file.")
            return
        stats = self.view.datasets.stats(self.view.dataset)
        shown = self.view.examples.rowCount()
        parts = [f"<b>{stats.total}</b> examples"]
        if self.view._more > shown:
            parts[0] += f" (the first {shown} of {self.view._more} matching shown: filter more)"
        elif shown != stats.total:
            parts[0] += f" ({shown} shown)"
        if self.view.dataset.kind == "labels":
            parts.append(f"{stats.labelled} labelled · "
                         f"<a href='unlabelled:'>{stats.unlabelled} unlabelled</a>")
            labels = [*self.view.dataset.labels,
                      *[k for k in stats.per_label if k and k not in self.view.dataset.labels]]
            chips = []
            for n, lab in enumerate(labels):
                colour = label_colour(n).name()
                chips.append(f"<span style='color:{colour}'>■</span> "
                             f"<a href='label:{_escape(lab)}'>{_escape(lab)}</a> "
                             f"{stats.per_label.get(lab, 0)}")
            if chips:
                parts.append(" ".join(chips))
        splits = [f"<a href='split:{s}'>{s}</a> {stats.per_split.get(s, 0)}" for s in SPLITS
                  if stats.per_split.get(s)]
        unsplit = stats.total - sum(stats.per_split.get(s, 0) for s in SPLITS)
        if splits:
            if unsplit:
                splits.append(f"<a href='split:{UNASSIGNED}'>{UNASSIGNED}</a> {unsplit}")
            parts.append(" · ".join(splits))
        elif stats.total:
            parts.append("no splits yet (Split…)")
        self.view.counts.setText(" &nbsp;|&nbsp; ".join(parts))
