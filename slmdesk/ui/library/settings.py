"""The Models tab's folders and settings: models folder, extra folders, context, idle unload."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from slmdesk.settings import load_settings, save_settings
from slmdesk.ui.common.tab_frame import line_edit, push_button
from slmdesk.ui.library.section import LibrarySection


class SettingsSection(LibrarySection):
    """The Folders & settings page."""

    def _build_settings(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        settings = load_settings(self.db)
        dir_row = QHBoxLayout()
        self.models_dir_edit = line_edit(page, "models_dir_edit", text=str(self.models_dir()))
        self.models_dir_edit.editingFinished.connect(self._models_dir_edited)
        dir_row.addWidget(self.models_dir_edit, 1)
        dir_row.addWidget(push_button("Choose…", "", page, clicked=self._choose_models_dir))
        form.addRow("Downloads go to:", dir_row)
        self.folders_edit = QPlainTextEdit("\n".join(settings.library_folders), page)
        self.folders_edit.setObjectName("library_folders_edit")
        self.folders_edit.setPlaceholderText(
            "One folder per line, e.g. ~/.lmstudio/models — its GGUF files are offered, "
            "read-only, under Installed.")
        self.folders_edit.setMaximumHeight(90)
        form.addRow("Other model folders:", self.folders_edit)
        folder_buttons = QHBoxLayout()
        folder_buttons.addWidget(
            push_button("Add folder…", "", page, clicked=self._add_folder_dialog))
        folder_buttons.addWidget(push_button("Save and look again", "", page,
                                             name="save_folders_button",
                                             clicked=self.save_folders))
        folder_buttons.addStretch(1)
        form.addRow("", folder_buttons)
        self.hf_cache_box = QCheckBox("Offer GGUF files from the Hugging Face cache", page)
        self.hf_cache_box.setChecked(settings.discover_hf_cache)
        self.hf_cache_box.toggled.connect(self._hf_cache_toggled)
        form.addRow("", self.hf_cache_box)
        self.idle_box = QSpinBox(page)
        self.idle_box.setObjectName("idle_unload_box")
        self.idle_box.setRange(0, 24 * 60)
        self.idle_box.setSuffix(" min")
        self.idle_box.setSpecialValueText("never")
        self.idle_box.setValue(settings.idle_unload_minutes)
        self.idle_box.setToolTip("Free the model's memory after this long without use; "
                                 "it loads again when you send a message.")
        self.idle_box.valueChanged.connect(self._idle_changed)
        form.addRow("Unload the model when idle for:", self.idle_box)
        self.context_box = QSpinBox(page)
        self.context_box.setObjectName("fit_context_box")
        self.context_box.setRange(256, 131072)
        self.context_box.setSingleStep(1024)
        self.context_box.setValue(settings.max_context)
        self.context_box.setToolTip("Context size used for fit estimates and model loads")
        self.context_box.valueChanged.connect(self._context_changed)
        form.addRow("Context size (tokens):", self.context_box)
        return page

    def _models_dir_edited(self) -> None:
        text = self.models_dir_edit.text().strip()
        settings = load_settings(self.db)
        settings.models_dir = text or None
        save_settings(self.db, settings)
        if self.downloads is not None:
            self.show_notice("New downloads go to the new folder after the next start; "
                             "files already downloaded stay where they are.")

    def _choose_models_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for downloaded models",
                                                self.models_dir_edit.text())
        if path:
            self.models_dir_edit.setText(path)
            self._models_dir_edited()

    def _add_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "A folder with GGUF models")
        if path:
            text = self.folders_edit.toPlainText().rstrip()
            self.folders_edit.setPlainText(f"{text}\n{path}" if text else path)
            self.save_folders()

    def save_folders(self) -> None:
        settings = load_settings(self.db)
        settings.library_folders = [
            line.strip() for line in self.folders_edit.toPlainText().splitlines()
            if line.strip()]
        save_settings(self.db, settings)
        self.scan_folders()

    def _hf_cache_toggled(self, on: bool) -> None:
        settings = load_settings(self.db)
        settings.discover_hf_cache = on
        save_settings(self.db, settings)
        self.scan_folders()

    def _idle_changed(self, minutes: int) -> None:
        settings = load_settings(self.db)
        settings.idle_unload_minutes = minutes
        save_settings(self.db, settings)
        self.idle_minutes_changed.emit(minutes)

    def _context_changed(self, value: int) -> None:
        settings = load_settings(self.db)
        settings.max_context = value
        save_settings(self.db, settings)
        self._entry_fits = {}
        QTimer.singleShot(0, self, self.refresh_installed)
