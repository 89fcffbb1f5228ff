"""The Data sets tab's file work: import, export, splits, and the duplicate checks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    Qt,
)
from PySide6.QtWidgets import QDialog, QFileDialog, QLayout, QWidget

from slmdesk.datasets import formats, quality
from slmdesk.datasets.splits import assign_splits
from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import SPLITS
from slmdesk.ui.common.file_names import safe_file_stem
from slmdesk.ui.common.tab_frame import ButtonSpec, add_push_buttons
from slmdesk.ui.datasets.dialogs import ExportDialog, SplitDialog
from slmdesk.ui.datasets.import_dialog import ImportDialog

if TYPE_CHECKING:
    pass

if TYPE_CHECKING:
    from slmdesk.ui.datasets.view import DatasetsView


EXPORT_SUFFIX = {"csv": "csv", "jsonl": "jsonl", "openai": "jsonl", "sharegpt": "jsonl",
                 "alpaca": "jsonl"}


class ImportExport:
    """Import through the dialog, export with a data card, assign random splits, and select
    duplicate or near-empty examples."""

    def __init__(self, view: DatasetsView) -> None:
        self.view = view

    def add_file_buttons(self, row: QLayout, page: QWidget) -> None:
        """Import…, Export… and Split…, added to ``row``."""
        self.import_button, self.export_button, self.split_button = add_push_buttons(
            row, page,
            ButtonSpec("Import…", "Import CSV, TSV, JSONL or plain text with a preview",
                       "import_button", lambda: self.import_dialog()),
            ButtonSpec("Export…", "Export as OpenAI, ShareGPT, Alpaca, JSONL or CSV, with a "
                       "data card", "export_button", self.export_requested),
            ButtonSpec("Split…", "Assign train / val / test splits at random (seeded)",
                       "split_button", self.split_requested))

    def add_check_buttons(self, row: QLayout, page: QWidget) -> None:
        """Duplicates and Near-empty, added to ``row``."""
        self.duplicates_button, self.near_empty_button = add_push_buttons(
            row, page,
            ButtonSpec("Duplicates", "Select the later copies of texts that occur more than "
                       "once", "duplicates_button", self.select_duplicates),
            ButtonSpec("Near-empty", "Select the examples with (almost) no text",
                       "near_empty_button", self.select_near_empty))

    def update_controls(self, *, have_dataset: bool, busy: bool) -> None:
        """Export and the checks need a data set; splits also wait for the model's run."""
        for button in (self.export_button, self.duplicates_button, self.near_empty_button):
            button.setEnabled(have_dataset)
        self.split_button.setEnabled(have_dataset and not busy)

    def select_duplicates(self) -> int:
        """Show every example and select the later copies of repeated texts."""
        if self.view.dataset is None:
            return 0
        groups = quality.find_duplicates(self.view.datasets.examples(self.view.dataset))
        extras = [eid for group in groups for eid in group[1:]]
        return self._show_all_selecting(extras, "No duplicates.", (
            f"{len(groups)} text{'s' if len(groups) != 1 else ''} occur more than once: "
            f"selected the {len(extras)} later cop{'ies' if len(extras) != 1 else 'y'} "
            "(Delete removes them)."))

    def select_near_empty(self) -> int:
        """Show every example and select those with (almost) no text."""
        if self.view.dataset is None:
            return 0
        ids = quality.find_near_empty(self.view.datasets.examples(self.view.dataset))
        return self._show_all_selecting(
            ids, "No near-empty examples.",
            f"Selected {len(ids)} near-empty example{'s' if len(ids) != 1 else ''}.")

    def _show_all_selecting(self, ids: list[str], none_found: str, found: str) -> int:
        """Clear the filters and select ``ids``, saying ``found``; ``none_found`` when none."""
        if not ids:
            self.view.status.setText(none_found)
            return 0
        self.view.filters.show_all()
        self.view.reload(select_ids=ids)
        self.view.status.setText(found)
        return len(ids)

    def assign_splits(self, *, seed: int = 0,
                      fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                      overwrite: bool = False) -> bool:
        if self.view.dataset is None:
            return False
        try:
            stats = assign_splits(self.view.datasets, self.view.dataset, seed=seed,
                                  fractions=fractions, overwrite=overwrite)
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return False
        self.view.clear_error()
        self.view.reload()
        self.view.status.setText("Splits: " + ", ".join(
            f"{s} {stats.per_split.get(s, 0)}" for s in SPLITS) + ".")
        return True

    def split_requested(self) -> None:
        dialog = SplitDialog(self.view)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.assign_splits(seed=dialog.seed.value(), fractions=dialog.fractions(),
                               overwrite=dialog.overwrite.isChecked())

    def import_dialog(self, path: str | None = None) -> ImportDialog:
        """Open the import dialog (window-modal, not blocking); with ``path``, preview it."""
        name = self.view.dataset.name if self.view.dataset else None
        dialog = ImportDialog(self.view.db, name, self.view)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.imported.connect(self._on_imported)
        dialog.open()
        if path is not None:
            dialog.open_file(path)
        return dialog

    def _on_imported(self, result: Any) -> None:
        name = result.dataset.name if hasattr(result.dataset, "name") else str(result.dataset)
        self.view.clear_error()
        self.view.dataset = None  # its labels may have grown: open it afresh
        self.view.dataset_list.refresh_datasets(select=name)
        skipped = (f" ({result.skipped_blank} blank line"
                   f"{'s' if result.skipped_blank != 1 else ''} skipped)"
                   if result.skipped_blank else "")
        self.view.status.setText(f"Imported {result.added} example"
                            f"{'s' if result.added != 1 else ''} into “{name}”{skipped}.")
        self.view.imported.emit(result)

    def export_requested(self) -> None:
        if self.view.dataset is None:
            return
        dialog = ExportDialog(self.view.dataset.kind, self.view)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        fmt = str(dialog.format_box.currentData())
        split = str(dialog.split_box.currentData())
        suffix = EXPORT_SUFFIX.get(fmt, "jsonl")
        safe = safe_file_stem(self.view.dataset.name, "dataset")
        stem = safe if split == "all" else f"{safe}-{split}"
        # "Reviews.csv", "Reviews-test.jsonl", "Reviews.openai.jsonl"
        default = f"{stem}.{fmt}" if fmt == suffix else f"{stem}.{fmt}.{suffix}"
        path, _ = QFileDialog.getSaveFileName(
            self.view, "Export data set", default,
            "CSV (*.csv)" if suffix == "csv" else "JSON Lines (*.jsonl)")
        if path:
            self.export_to(path, fmt, split, card=dialog.card.isChecked(),
                           include_unlabelled=dialog.unlabelled.isChecked())

    def export_to(self, path: str, fmt: str, split: str = "all", *, card: bool = False,
                  include_unlabelled: bool = False) -> bool:
        """Write the data set (or one split) in ``fmt``; the text is built here, where the
        database lives, and written on the thread pool. With ``card``, a data card goes
        next to it as ``<name>.md``."""
        if self.view.dataset is None:
            return False
        try:
            text = formats.export(self.view.db, self.view.dataset.name, fmt, split=split,
                                  include_unlabelled=include_unlabelled)
            card_text = formats.data_card(self.view.db, self.view.dataset.name) if card else None
        except UserFacingError as exc:
            self.view.show_error(exc.message)
            return False
        target = Path(path)
        card_path = target.with_suffix(".md") if card_text is not None else None
        if card_path == target:
            card_path = target.with_name(target.name + ".card.md")
        lines = text.count("\n")

        def work() -> None:
            target.write_text(text, encoding="utf-8", newline="")
            if card_path is not None and card_text is not None:
                card_path.write_text(card_text, encoding="utf-8")

        def then(_result: Any, error: str) -> None:
            if error:
                self.view.show_error(error)
                return
            extra = f" and its data card to {card_path.name}" if card_path else ""
            self.view.status.setText(f"Exported {fmt} ({lines} lines) to {target.name}{extra}.")
            self.view.exported.emit(str(target))

        self.view.tasks.start(work, f"write {target.name}", then)
        return True
