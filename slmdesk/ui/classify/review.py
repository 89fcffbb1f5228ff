"""The Classify tab's review of results into a data set, and their export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QInputDialog,
    QPushButton,
    QToolButton,
    QWidget,
)

from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import Dataset
from slmdesk.ui.classify.export import export_text
from slmdesk.ui.common.file_names import safe_file_stem
from slmdesk.ui.common.flow_layout import FlowLayout, captioned
from slmdesk.ui.common.tab_frame import menu_button, text_label, tool_button

if TYPE_CHECKING:
    from slmdesk.ui.classify.view import ClassifyView


DEFAULT_DATASET = "Reviewed labels"


class ResultsReview:
    """Accept or correct the selected results into a labelled data set; export the
    results (all, or those shown)."""

    def __init__(self, view: ClassifyView) -> None:
        self.view = view

    def build_export_button(self, parent: QWidget) -> QToolButton:
        """The Export ▾ button: all results or the rows shown, as CSV or JSONL."""
        self.export_button, menu = menu_button("Export ▾", "", parent, name="export_results")
        export = self.export_requested
        menu.addAction("All results as CSV…", lambda: export("csv"))
        menu.addAction("All results as JSONL…", lambda: export("jsonl"))
        menu.addSeparator()
        menu.addAction("Shown rows as CSV…", lambda: export("csv", True))
        menu.addAction("Shown rows as JSONL…", lambda: export("jsonl", True))
        return self.export_button

    def build_review_row(self, parent: QWidget) -> FlowLayout:
        """The row under the results: the data set to save to, Accept, and correct to (it
        wraps at narrow widths, so nothing overlaps)."""
        row = FlowLayout()
        self.dataset_box = QComboBox(parent)
        self.dataset_box.setObjectName("dataset_box")
        self.dataset_box.setMinimumWidth(160)
        self.dataset_box.setPlaceholderText(f"(new: “{DEFAULT_DATASET}”)")
        row.addWidget(captioned("Save to data set:", self.dataset_box, parent))
        self.new_button = tool_button("New…", "Create a labelled data set", parent,
                                      clicked=self.new_dataset_requested)
        row.addWidget(self.new_button)
        self.accept_button = QPushButton("Accept", parent)
        self.accept_button.setObjectName("accept_button")
        self.accept_button.setToolTip("Save the selected texts with the model's label (A)")
        self.accept_button.clicked.connect(self.accept_selected)
        row.addWidget(self.accept_button)
        self.correct_box = QComboBox(parent)
        self.correct_box.setObjectName("correct_box")
        row.addWidget(captioned("or correct to", self.correct_box, parent))
        self.correct_button = QPushButton("Save", parent)
        self.correct_button.setObjectName("correct_button")
        self.correct_button.setToolTip(
            "Save the selected texts with this label (keys 1–9 pick the nth label)")
        self.correct_button.clicked.connect(
            lambda: self.correct_selected(self.correct_box.currentText()))
        row.addWidget(self.correct_button)
        self.note = text_label(parent, "review_note", wrap=False)
        row.addWidget(self.note)
        return row

    def set_labels(self, labels: list[str]) -> None:
        """The labels a result may be corrected to (those of the run); keys 1–9 pick the
        first nine."""
        self.correct_box.clear()
        for n, lab in enumerate(labels, start=1):
            self.correct_box.addItem(lab)
            if n <= 9:
                self.correct_box.setItemData(n - 1, f"key {n}", Qt.ItemDataRole.ToolTipRole)

    def set_results_present(self, present: bool) -> None:
        """Accept, correct and export act on results: only while there are some."""
        for button in (self.accept_button, self.correct_button, self.export_button):
            button.setEnabled(present)

    def refresh_datasets(self, select: str | None = None) -> None:
        current = select or self.dataset_box.currentData()
        self.dataset_box.clear()
        for ds in self.view.datasets.all():
            if ds.kind == "labels":
                self.dataset_box.addItem(ds.name, ds.name)
        at = self.dataset_box.findData(current) if current else -1
        self.dataset_box.setCurrentIndex(at if at >= 0 else (0 if self.dataset_box.count()
                                                             else -1))

    def create_dataset(self, name: str) -> Dataset | None:
        try:
            ds = self.view.datasets.create(name, kind="labels", labels=self.view.run_labels or
                                      self.view.setup.label_names())
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return None
        self.refresh_datasets(select=ds.name)
        return ds

    def new_dataset_requested(self) -> None:
        name, ok = QInputDialog.getText(self.view, "New data set", "Name:",
                                        text=self._default_dataset_name())
        if ok and name.strip():
            self.create_dataset(name)

    def _default_dataset_name(self) -> str:
        name = self.view.classifier_name
        base = f"{name} labels" if name else DEFAULT_DATASET
        name, n = base, 2
        while self.view.datasets.find(name) is not None:
            name, n = f"{base} {n}", n + 1
        return name

    def _target_dataset(self) -> Dataset | None:
        name = self.dataset_box.currentData()
        if name:
            found = self.view.datasets.find(str(name))
            if found is not None:
                return found
        return self.create_dataset(self._default_dataset_name())

    def _selected_rows(self) -> list[int]:
        rows = {self.view.proxy.mapToSource(i).row()
                for i in self.view.table.selectionModel().selectedRows()}
        if not rows and self.view.table.currentIndex().isValid():
            rows = {self.view.proxy.mapToSource(self.view.table.currentIndex()).row()}
        return sorted(r for r in rows if r >= 0)

    def accept_selected(self) -> int:
        """Save the selected rows with the model's label; returns how many were saved."""
        return self._review(None)

    def correct_selected(self, label: str) -> int:
        """Save the selected rows with ``label``; returns how many were saved."""
        if label not in self.view.results.labels:
            self.view.show_error(f"Pick one of the labels: {', '.join(self.view.results.labels)}.")
            return 0
        return self._review(label)

    def correct_to_nth(self, n: int) -> None:
        if 0 <= n < len(self.view.results.labels):
            self.correct_selected(self.view.results.labels[n])

    def _review(self, label: str | None) -> int:
        rows = self._selected_rows()
        if not rows:
            self.view.show_error("Select one or more results first.",
                                 until=self.view.table.selectionModel().selectionChanged)
            return 0
        dataset = self._target_dataset()
        if dataset is None:
            return 0
        saved, skipped = 0, []
        for r in rows:
            row = self.view.results.result(r)
            pred = row.prediction
            chosen = label if label is not None else pred.label
            if chosen is None:
                skipped.append(f"line {row.index + 1} has no label to accept")
                continue
            if row.reviewed is not None:
                skipped.append(f"line {row.index + 1} was already saved as {row.reviewed}")
                continue
            try:
                self.view.datasets.add_labelled_text(
                    dataset, row.text, chosen, source="classification", labelled_by="person",
                    model_label=pred.label, model_confidence=row.confidence)
            except UserFacingError as exc:
                skipped.append(f"line {row.index + 1}: {exc.message}")
                continue
            self.view.results.mark_reviewed(r, chosen, dataset.name)
            saved += 1
        if skipped:
            self.view.show_error("Not saved: " + "; ".join(skipped[:5])
                            + ("…" if len(skipped) > 5 else "") + ".")
        else:
            self.view.clear_error()
        if saved:
            total = self.view.datasets.count(self.view.datasets.get(dataset.name))
            self.note.setText(
                f"Saved {saved} to “{dataset.name}” ({total} texts).")
            if len(rows) == 1:
                self._select_next()
        return saved

    def _select_next(self) -> None:
        current = self.view.table.currentIndex()
        if current.isValid() and current.row() + 1 < self.view.proxy.rowCount():
            nxt = self.view.proxy.index(current.row() + 1, 0)
            self.view.table.selectionModel().setCurrentIndex(
                nxt, QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)

    def select_result(self, source_row: int) -> None:
        """Make the row of the results model at ``source_row`` the selected one."""
        index = self.view.proxy.mapFromSource(self.view.results.index(source_row, 0))
        if index.isValid():
            self.view.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
        else:
            self.view.table.selectionModel().setCurrentIndex(
                QModelIndex(), QItemSelectionModel.SelectionFlag.Clear)

    def export_requested(self, fmt: str, only_shown: bool = False) -> None:
        if not self.view.results.rowCount():
            self.view.show_error("There are no results to export yet.")
            return
        suffix = "jsonl" if fmt == "jsonl" else "csv"
        stem = safe_file_stem(self.view.classifier_name or "classified", "classified")
        path, _ = QFileDialog.getSaveFileName(
            self.view, "Export results", f"{stem}.{suffix}",
            "JSON Lines (*.jsonl)" if fmt == "jsonl" else "CSV (*.csv)")
        if path:
            self.export_to(path, fmt, only_shown=only_shown)

    def export_to(self, path: str, fmt: str, *, only_shown: bool = False) -> None:
        """Write the results (all, or those the filter shows, in the shown order)."""
        if only_shown:
            proxy = self.view.proxy
            rows = [self.view.results.result(proxy.mapToSource(proxy.index(r, 0)).row())
                    for r in range(proxy.rowCount())]
        else:
            rows = list(self.view.results.rows)
        # Build the text here, where the rows live; write it on the pool.
        text = export_text(rows, self.view.results.labels, fmt)
        name = Path(path).name

        def work() -> None:
            Path(path).write_text(text, encoding="utf-8", newline="")

        def then(_result: Any, error: str) -> None:
            if error:
                self.view.show_error(error)
                return
            self.view.status.setText(f"Exported {len(rows)} rows to {name}.")
            self.view.exported.emit(path)

        self.view.tasks.start(work, f"write {name}", then)
