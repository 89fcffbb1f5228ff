"""The Models tab's Installed page: the registered models with their fit, details,
removal, hashing, import of .gguf files and the models found on this computer."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from slmdesk.catalog import curated as catalog_mod
from slmdesk.catalog import discover as discover_mod
from slmdesk.catalog import fit as fit_mod
from slmdesk.catalog import library as library_mod
from slmdesk.catalog.registry import find_same_models, import_model, rename_model
from slmdesk.errors import UserFacingError
from slmdesk.settings import load_settings
from slmdesk.store.models import ModelRecord
from slmdesk.ui.common.column_fit import ColumnFitter
from slmdesk.ui.common.tab_frame import ButtonSpec, ResponsiveSplitter, add_push_buttons
from slmdesk.ui.common.table_model import Column, RowTableModel, human_bytes
from slmdesk.ui.library.section import LibrarySection
from slmdesk.ui.library.table_models import (
    InstalledRow,
    fit_column,
    found_where,
    load_note,
    params_text,
    sortable_table,
    source_text,
)

log = logging.getLogger(__name__)

INSTALLED_NAME_COLUMN = 0
INSTALLED_FIT_COLUMN = 5


class InstalledSection(LibrarySection):
    """The Installed page and what acts on the models it lists."""

    def _build_installed(self) -> QWidget:
        page = QWidget(self)
        outer = QVBoxLayout(page)
        # The details take at most 30 %: with two fifths the Fit column was off to the
        # side at 800×600.
        split = ResponsiveSplitter(page, capped=1, share=0.3)
        left = QWidget(split)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.installed = RowTableModel([
            Column("Name", lambda r: r.record.name + ("" if os.path.isfile(r.record.path)
                                                      else " (file missing)"),
                   tooltip=lambda r: r.record.path),
            Column("Quant", lambda r: r.record.quantization or ""),
            Column("Params", lambda r: params_text(r.record.parameter_count),
                   sort=lambda r: r.record.parameter_count or 0),
            Column("Size", lambda r: human_bytes(r.record.size_bytes),
                   sort=lambda r: r.record.size_bytes),
            Column("Source", lambda r: source_text(r.record)),
            # The one memory figure: measured when a load at this context measured it.
            fit_column(lambda r: r.estimate, note=lambda r: load_note(r.record)),
        ], self)
        self.installed_view, self.installed_proxy = sortable_table(left, "installed_models",
                                                           self.installed)
        # The name takes what is left; the Fit column (the one memory figure) keeps its
        # whole text when the table is narrow, the others shrink first.
        self.installed_view.horizontalHeader().setStretchLastSection(False)
        self.installed_fitter = ColumnFitter(
            self.installed_view, INSTALLED_NAME_COLUMN, {INSTALLED_FIT_COLUMN: 180},
            default_max=120, min_widths={INSTALLED_FIT_COLUMN: 180})
        self.installed_view.selectionModel().currentRowChanged.connect(
            lambda *_: self._show_details())
        self.installed_view.doubleClicked.connect(lambda *_: self.use_selected())
        lv.addWidget(self.installed_view, 1)
        buttons = QHBoxLayout()
        self.use_button, self.rename_button, self.remove_button, self.hash_button = (
            add_push_buttons(
                buttons, left,
                ButtonSpec("Use in chat", name="use_model_button", clicked=self.use_selected),
                ButtonSpec("Rename…", name="rename_model_button", clicked=self.rename_dialog),
                ButtonSpec("Remove…", name="remove_model_button", clicked=self.remove_dialog),
                ButtonSpec("Compute sha256", "Read the whole file and store its sha256",
                           clicked=self.hash_selected)))
        buttons.addStretch(1)
        lv.addLayout(buttons)

        lv.addWidget(self._build_found(left))

        self.details = QPlainTextEdit(split)
        self.details.setObjectName("model_details")
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("Select a model to see its details.")
        split.addWidget(left)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 300])
        outer.addWidget(split)
        return page

    def _build_found(self, parent: QWidget) -> QGroupBox:
        """The GGUF files found in the model folders, not yet in the library."""
        found_box = QGroupBox("Found on this computer (not copied; added read-only)", parent)
        fv = QVBoxLayout(found_box)
        self.found = RowTableModel([
            Column("File", lambda f: Path(f.path).name, tooltip=lambda f: str(f.path)),
            Column("Size", lambda f: human_bytes(f.size_bytes), sort=lambda f: f.size_bytes),
            Column("Where", lambda f: found_where(f)),
        ], self)
        self.found_view, self.found_proxy = sortable_table(found_box, "found_models", self.found)
        self.found_view.setMaximumHeight(160)
        fv.addWidget(self.found_view)
        fb = QHBoxLayout()
        self.scan_button, self.add_found_button = add_push_buttons(
            fb, found_box, ButtonSpec("Look again", clicked=self.scan_folders),
            ButtonSpec("Add to library", name="add_found_button",
                       clicked=self.add_selected_found))
        fb.addStretch(1)
        fv.addLayout(fb)
        return found_box

    def refresh_installed(self, *, only_if_shown_before: bool = False) -> None:
        """Fill (or refill) the installed models with their fit estimates.

        The window's start does not pay for this (catalog, estimates, GGUF headers): the
        tab fills itself when it is first shown or asked for its rows.
        """
        if not self._populated:
            if only_if_shown_before:
                return
            self._populated = True
            self.reload_catalog()
        selected = self.selected_model()
        budget = fit_mod.system_memory()
        self._budget = budget
        self._entry_fits = {}
        rows = []
        for record in self.repo.list():
            try:
                # At the context a load would use (the setting, capped by the trained
                # length), as the details and `slmdesk models list` do.
                context = fit_mod.effective_context(self.context(), record.context_length)
                estimate = fit_mod.estimate_for_record(record, context, budget=budget)
            except Exception:  # noqa: BLE001 - a record without numbers has no estimate
                estimate = None
            entry = catalog_mod.match_entry(record, self.catalog)
            rows.append(InstalledRow(record, estimate, entry))
        self.installed.set_rows(rows)  # the column fitter sizes the columns
        if selected is not None:
            for i, r in enumerate(rows):
                if r.record.id == selected.id:
                    self.select_row(self.installed_view, self.installed_proxy, i)
        self._update_summary()
        self.catalog_model.set_rows(self.catalog)

    def _update_summary(self) -> None:
        try:
            usage = library_mod.disk_usage(self.db, self.models_dir())
            disk = f" · {human_bytes(usage.total_bytes)} on disk"
        except Exception:
            log.exception("disk usage")
            disk = ""
        budget = fit_mod.system_memory()
        self.summary.setText(
            f"{len(self.installed.rows)} model(s){disk} · "
            f"{human_bytes(budget.available_ram)} of {human_bytes(budget.total_ram)} RAM free")

    def selected_model(self) -> ModelRecord | None:
        row = self._selected(self.installed_view, self.installed_proxy, self.installed)
        return None if row is None else row.record

    def select_model_row(self, model_id: str) -> None:
        for i, r in enumerate(self.installed.rows):
            if r.record.id == model_id:
                self.select_row(self.installed_view, self.installed_proxy, i)
                return

    def _show_details(self) -> None:
        record = self.selected_model()
        cause = self.message_cause()
        if cause and cause.startswith("model:") and (
                record is None or cause != f"model:{record.id}"):
            self.clear_message(cause)  # a line about another model (its sha256) is stale now
        if record is None:
            self.details.clear()
            return
        try:
            details = library_mod.model_details(self.repo.get(record.id), context=self.context(),
                                                catalog=self.catalog)
        except UserFacingError as exc:
            self.details.setPlainText(exc.message)
            return
        self.details.setPlainText(library_mod.format_details(details))

    def use_selected(self) -> None:
        record = self.selected_model()
        if record is not None:
            self.use_requested.emit(record.id)

    def rename_dialog(self) -> None:
        record = self.selected_model()
        if record is None:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename model")
        dialog.setLabelText(f"New name for {record.name}:")
        dialog.setTextValue(record.name)
        dialog.textValueSelected.connect(lambda name: self.rename_model(record.id, name))
        dialog.open()

    def rename_model(self, model_id: str, name: str) -> None:
        try:
            record = rename_model(self.db, model_id, name)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self._library_changed(f"Renamed to {record.name}.")

    def remove_dialog(self) -> None:
        record = self.selected_model()
        if record is None:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Remove model")
        check: QCheckBox | None = None
        if record.owns_file:
            box.setText(f"Remove {record.name} and delete its downloaded file "
                        f"({human_bytes(record.size_bytes)})?")
        else:
            box.setText(f"Remove {record.name} from the library? Your file stays where it is:"
                        f"\n{record.path}")
            if record.source != "starter":
                check = QCheckBox("Also delete the file from disk", box)
                box.setCheckBox(check)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def finished(result: int) -> None:
            if result == QMessageBox.StandardButton.Yes:
                self.remove_model(record.id, delete_file=bool(check and check.isChecked()))

        box.finished.connect(finished)
        box.open()

    def set_loaded_model(self, model_id: str | None) -> None:
        """The window's loaded model is now this one (None: none): "this model is in use"
        about another one is stale."""
        if model_id != self.loaded_model_id and self.loaded_model_id is not None:
            self.clear_message(f"in-use:{self.loaded_model_id}")
        self.loaded_model_id = model_id

    def remove_model(self, model_id: str, *, delete_file: bool = False) -> None:
        if model_id == self.loaded_model_id:
            self.show_error("This model is in use; switch the chat to another model first.",
                            cause=f"in-use:{model_id}")
            return
        try:
            removal = library_mod.remove_model(self.db, model_id, delete_file=delete_file,
                                               models_dir=self.models_dir())
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.clear_error()
        freed = getattr(removal, "freed_bytes", 0)
        self._library_changed(f"Removed. {human_bytes(freed)} freed." if freed else
                              "Removed from the library; the file was left where it is.")

    def _library_changed(self, notice: str) -> None:
        """Say what changed, list the models again, and tell the other tabs."""
        self.show_notice(notice)
        self.refresh_installed()
        self.models_changed.emit()

    def hash_selected(self) -> None:
        record = self.selected_model()
        if record is None:
            return
        path = record.path
        self.hash_button.setEnabled(False)
        self.show_notice(f"Computing the sha256 of {Path(path).name}…",
                         cause=f"model:{record.id}")

        def then(digest: Any, error: str) -> None:
            self.hash_button.setEnabled(True)
            if error:
                self.show_error(error)
                return
            library_mod.record_sha256(self.db, record.id, str(digest))
            self.show_notice(f"sha256 of {record.name}: {digest}", cause=f"model:{record.id}")
            self.refresh_installed()

        self.tasks.start(lambda: library_mod.hash_file(path), f"read {Path(path).name}", then)

    def import_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import GGUF models", "",
                                                "GGUF models (*.gguf);;All files (*)")
        if paths:
            self.import_paths(paths)

    def import_paths(self, paths: Sequence[str]) -> None:
        """Validate files off the GUI thread, then register them in place (no copy)."""
        from slmdesk.engine.llama_engine import validate_model_file

        paths = list(paths)

        def work() -> dict[str, Any]:
            # Each path's checked header, or the message saying why it was refused.
            results: dict[str, Any] = {}
            for p in paths:
                try:
                    results[p] = validate_model_file(p)
                except UserFacingError as exc:
                    results[p] = exc.message
            return results

        def then(results: Any, error: str) -> None:
            if error:
                self.show_error(error)
                return
            bad = {p: r for p, r in results.items() if isinstance(r, str)}
            added: list[ModelRecord] = []
            lines: list[str] = []
            for p in paths:
                if p in bad:
                    continue
                try:
                    record = import_model(self.db, p, checked=results[p])
                except UserFacingError as exc:
                    bad[p] = exc.message
                    continue
                added.append(record)
                lines.extend(f"{Path(p).name}: {same.sentence}" for same in
                             find_same_models(self.db, record, results[p]))
            if added:
                lines.insert(0, "Added " + ", ".join(m.name for m in added) +
                             " (registered where it is; not copied).")
            if bad:
                self.show_error("\n".join([*bad.values(), *lines]))
            elif lines:
                self.show_notice("\n".join(lines))
            else:
                self.clear_error()
            if added:
                self.refresh_installed()
                self.select_model_row(added[-1].id)
                self.models_changed.emit()
            self.imports_finished.emit(len(added), len(bad))

        self.tasks.start(work, "read the model file", then)

    def scan_folders(self) -> None:
        settings = load_settings(self.db)
        folders = [Path(f).expanduser() for f in settings.library_folders]
        known = {m.path for m in self.repo.list()}
        self.scan_button.setEnabled(False)

        def then(found: Any, error: str) -> None:
            self.scan_button.setEnabled(True)
            if error:
                self.show_error(error)
                return
            self.found.set_rows(found)
            self.found_view.resizeColumnsToContents()
            self.scan_finished.emit(len(found))

        self.tasks.start(
            lambda: discover_mod.discover(folders, hf_cache=settings.discover_hf_cache,
                                          known_paths=known),
            "look for model files", then)

    def add_selected_found(self) -> None:
        found = self._selected(self.found_view, self.found_proxy, self.found)
        if found is None:
            return
        try:
            record = discover_mod.register_discovered(self.db, found)
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        self.found.set_rows([f for f in self.found.rows if f is not found])
        self.refresh_installed()
        self.select_model_row(record.id)
        self.models_changed.emit()
