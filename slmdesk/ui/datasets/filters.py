"""The Data sets tab's filters and search over the examples, and the counts strip."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QWidget

from slmdesk.store.datasets import SPLITS, UNASSIGNED, Dataset, DatasetRepository
from slmdesk.ui.common.colours import label_colour
from slmdesk.ui.common.flow_layout import FlowLayout, captioned
from slmdesk.ui.common.labels import let_layout_decide_width

ANY = ""  # "no filter" in the filter combos
SEARCH_PAUSE_MS = 200  # the search box waits this long for typing to pause


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&#39;").replace('"', "&quot;"))


def _filter_combo(parent: QWidget, name: str) -> QComboBox:
    combo = QComboBox(parent)
    combo.setObjectName(name)
    combo.setMinimumContentsLength(8)
    return combo


def _filter_check(text: str, name: str, tip: str, parent: QWidget) -> QCheckBox:
    check = QCheckBox(text, parent)
    check.setObjectName(name)
    check.setToolTip(tip)
    return check


class ExampleFilters(QObject):
    """The filter row and the counts strip of the Data sets tab. ``changed`` says the
    examples should be queried again (with ``query_kwargs``)."""

    changed = Signal()

    def __init__(self, datasets: DatasetRepository, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.datasets = datasets
        self.search_timer = QTimer(self)
        self.search_timer.setSingleShot(True)
        self.search_timer.setInterval(SEARCH_PAUSE_MS)
        self.search_timer.timeout.connect(self.changed)

    def build_row(self, page: QWidget) -> FlowLayout:
        """The filter widgets, in a row that wraps at narrow widths."""
        row = FlowLayout()
        self.label_filter = _filter_combo(page, "label_filter")
        self.split_filter = QComboBox(page)
        self.split_filter.setObjectName("split_filter")
        self.split_filter.addItem("All", ANY)
        for name in (*SPLITS, UNASSIGNED):
            self.split_filter.addItem(name, name)
        self.source_filter = _filter_combo(page, "source_filter")
        for caption, combo in (("Label:", self.label_filter), ("Split:", self.split_filter),
                               ("Source:", self.source_filter)):
            row.addWidget(captioned(caption, combo, page))
            combo.currentIndexChanged.connect(lambda _i: self._filters_changed())
        self.unlabelled_box = _filter_check("Unlabelled", "unlabelled_filter",
                                            "Only examples without a label", page)
        self.disagreement_box = _filter_check(
            "Disagreement", "disagreement_filter",
            "Only examples whose label differs from the model's suggestion", page)
        for check in (self.unlabelled_box, self.disagreement_box):
            row.addWidget(check)
            check.toggled.connect(lambda _on: self._filters_changed())
        self.search_box = QLineEdit(page)
        self.search_box.setObjectName("search_box")
        self.search_box.setPlaceholderText("Search the texts…")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.textChanged.connect(lambda _t: self.search_timer.start())
        row.add_stretching(self.search_box)
        return row

    def build_counts(self, page: QWidget) -> QLabel:
        """The counts strip: totals per label and split, each a link that filters by it."""
        self.counts = QLabel("", page)
        self.counts.setObjectName("counts_strip")
        self.counts.setTextFormat(Qt.TextFormat.RichText)
        let_layout_decide_width(self.counts)
        self.counts.setToolTip("Click a label or a split to filter by it")
        self.counts.linkActivated.connect(self._count_clicked)
        return self.counts

    def reset(self) -> None:
        """Every filter off and the search box empty, without a ``changed``."""
        widgets: list[QObject] = [self.label_filter, self.split_filter, self.source_filter,
                                  self.unlabelled_box, self.disagreement_box, self.search_box]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            self.label_filter.setCurrentIndex(0)
            self.split_filter.setCurrentIndex(0)
            self.source_filter.setCurrentIndex(0)
            self.unlabelled_box.setChecked(False)
            self.disagreement_box.setChecked(False)
            self.search_box.clear()
        finally:
            for w, b in zip(widgets, blocked, strict=True):
                w.blockSignals(b)
        self.search_timer.stop()

    def show_all(self) -> None:
        """Every filter off, without a ``changed`` (the caller queries again)."""
        self.reset()
        self.label_filter.setEnabled(True)

    def clear_filters(self) -> None:
        self.show_all()
        self.changed.emit()

    def refill(self, dataset: Dataset | None) -> None:
        """The label and source choices of ``dataset``; the chosen ones stay where they can."""
        labels = dataset.labels if dataset is not None else []
        sources: list[str] = []
        if dataset is not None:
            sources = [str(s) for s in self.datasets.stats(dataset).per_source]
        for box, items, all_text in ((self.label_filter, labels, "All labels"),
                                     (self.source_filter, sources, "All sources")):
            current = box.currentData()
            blocked = box.blockSignals(True)
            try:
                box.clear()
                box.addItem(all_text, ANY)
                for n, item in enumerate(items, start=1):
                    box.addItem(f"{n}: {item}" if box is self.label_filter and n <= 9
                                else item, item)
                at = box.findData(current) if current else 0
                box.setCurrentIndex(max(at, 0))
            finally:
                box.blockSignals(blocked)

    def _filters_changed(self) -> None:
        self.label_filter.setEnabled(not self.unlabelled_box.isChecked())
        self.changed.emit()

    def set_label_filter(self, label: str) -> None:
        self.label_filter.setCurrentIndex(max(self.label_filter.findData(label), 0))

    def set_split_filter(self, split: str) -> None:
        self.split_filter.setCurrentIndex(max(self.split_filter.findData(split), 0))

    def set_source_filter(self, source: str) -> None:
        self.source_filter.setCurrentIndex(max(self.source_filter.findData(source), 0))

    def set_search(self, text: str) -> None:
        """Search now (the box otherwise waits for typing to pause)."""
        self.search_box.setText(text)
        self.search_timer.stop()
        self.changed.emit()

    def _count_clicked(self, link: str) -> None:
        kind, _, value = link.partition(":")
        if kind == "label":
            self.unlabelled_box.setChecked(False)
            self.set_label_filter(value)
        elif kind == "split":
            self.set_split_filter(value)
        elif kind == "unlabelled":
            self.unlabelled_box.setChecked(True)

    def query_kwargs(self) -> dict[str, Any]:
        unlabelled = self.unlabelled_box.isChecked()
        return {
            "label": None if unlabelled else (self.label_filter.currentData() or None),
            "unlabelled": unlabelled,
            "split": self.split_filter.currentData() or None,
            "source": self.source_filter.currentData() or None,
            "disagreement": self.disagreement_box.isChecked(),
            "search": self.search_box.text().strip() or None,
        }

    def update_counts(self, dataset: Dataset | None, shown: int, matched: int) -> None:
        """The counts strip for ``dataset``, of which ``shown`` of ``matched`` examples show."""
        if dataset is None:
            self.counts.setText("No data set yet: create one (New…) or import a file.")
            return
        stats = self.datasets.stats(dataset)
        parts = [f"<b>{stats.total}</b> examples"]
        if matched > shown:
            parts[0] += f" (the first {shown} of {matched} matching shown: filter more)"
        elif shown != stats.total:
            parts[0] += f" ({shown} shown)"
        if dataset.kind == "labels":
            parts.append(f"{stats.labelled} labelled · "
                         f"<a href='unlabelled:'>{stats.unlabelled} unlabelled</a>")
            labels = [*dataset.labels,
                      *[k for k in stats.per_label if k and k not in dataset.labels]]
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
        self.counts.setText(" &nbsp;|&nbsp; ".join(parts))
