"""The import dialog: pick a file, see its first rows, map its text and label columns (or see
which chat format it is in), and import it into a data set in one transaction."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlite_utils
from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from slmdesk.datasets import formats
from slmdesk.errors import UserFacingError
from slmdesk.store.datasets import DatasetRepository
from slmdesk.ui.common.tasks import BackgroundTasks
from slmdesk.ui.common.widgets import error_banner
from slmdesk.ui.datasets.table_models import PreviewModel

NO_COLUMN = ""  # the label combo's "(no label column)"
FILE_FILTER = ("Data files (*.csv *.tsv *.jsonl *.ndjson *.json *.txt);;"
               "All files (*)")
PREVIEW_ROWS = 20
PREVIEW_COLUMN_WIDTH = 360  # at most, in pixels: a long text column must not hide the rest


class ImportDialog(QDialog):
    """Import one file into a data set. Nothing is written until Import is pressed, and a
    bad row rejects the whole file (its line number is shown here)."""

    previewed = Signal(object)  # ImportPreview
    imported = Signal(object)  # ImportResult
    failed = Signal(str)

    def __init__(self, db: sqlite_utils.Database, dataset_name: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.datasets = DatasetRepository(db)
        self.path: str | None = None
        self.preview: Any = None  # ImportPreview
        self.result: Any = None  # ImportResult
        self._tasks = BackgroundTasks(self)
        self._loading = 0
        self._import_when_read = False  # Import was pressed on a typed path: import once read
        self.setWindowTitle("Import examples")
        self.resize(820, 560)
        layout = QVBoxLayout(self)

        layout.addLayout(self._build_path_row())

        form = QFormLayout()
        self.format_label = QLabel("—", self)
        self.format_label.setObjectName("import_format")
        form.addRow("Format:", self.format_label)
        self.dataset_box = QComboBox(self)
        self.dataset_box.setObjectName("import_dataset")
        self.dataset_box.setEditable(True)
        self.dataset_box.setToolTip("An existing data set, or a new name to create one")
        for ds in self.datasets.all():
            self.dataset_box.addItem(ds.name)
        if dataset_name:
            self.dataset_box.setCurrentText(dataset_name)
        else:
            self.dataset_box.setCurrentIndex(-1)
        form.addRow("Into data set:", self.dataset_box)
        form.addRow("Columns:", self._build_mapping_row())
        self.new_labels_box = QCheckBox(
            "Allow labels the data set does not have yet (else they are refused as typos)",
            self)
        self.new_labels_box.setObjectName("import_new_labels")
        form.addRow("", self.new_labels_box)
        layout.addLayout(form)

        self.preview_model = PreviewModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("import_preview")
        self.table.setModel(self.preview_model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(24)
        layout.addWidget(self.table, 1)

        self.note = QLabel("", self)
        self.note.setObjectName("import_note")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.error_label = error_banner(self, "import_error", padded=False)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.shown.connect(self.failed)
        layout.addWidget(self.error_label)

        self.buttons = QDialogButtonBox(self)
        self.import_button = self.buttons.addButton(
            "Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setObjectName("import_button")
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.run_import)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.update_controls()

    def _build_path_row(self) -> QHBoxLayout:
        """The path field (typed or pasted) and the Choose file… button."""
        row = QHBoxLayout()
        self.path_edit = QLineEdit(self)
        self.path_edit.setObjectName("import_path")
        self.path_edit.setPlaceholderText("CSV, TSV, JSONL (labelled texts or chat "
                                          "examples) or plain text, one example per line")
        self.path_edit.setToolTip("Type or paste a file's path and press Enter to see its "
                                  "first rows, or choose the file")
        # Enter reads a typed path (Import then stays off until it is read, so the same
        # key press cannot import what nobody has seen); Import reads it and imports.
        self.path_edit.returnPressed.connect(self._open_typed_path)
        self.path_edit.textChanged.connect(lambda _text: self.update_controls())
        self.choose_button = QPushButton("Choose file…", self)
        self.choose_button.clicked.connect(self.choose_requested)
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.choose_button)
        return row

    def _build_mapping_row(self) -> QWidget:
        """The text and label column choices (hidden where the format has no columns)."""
        mapping = QHBoxLayout()
        self.text_caption = QLabel("Text column:", self)
        self.text_box = QComboBox(self)
        self.text_box.setObjectName("import_text_column")
        self.text_box.setMinimumContentsLength(12)
        self.label_caption = QLabel("Label column:", self)
        self.label_box = QComboBox(self)
        self.label_box.setObjectName("import_label_column")
        self.label_box.setMinimumContentsLength(12)
        for box in (self.text_box, self.label_box):
            box.currentIndexChanged.connect(lambda _i: self._mapping_changed())
        mapping.addWidget(self.text_caption)
        mapping.addWidget(self.text_box)
        mapping.addSpacing(12)
        mapping.addWidget(self.label_caption)
        mapping.addWidget(self.label_box)
        mapping.addStretch(1)
        self.mapping_row = QWidget(self)
        self.mapping_row.setLayout(mapping)
        mapping.setContentsMargins(0, 0, 0, 0)
        return self.mapping_row

    # choosing and previewing -------------------------------------------------------------
    def choose_requested(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import examples", "", FILE_FILTER)
        if path:
            self.open_file(path)

    def typed_path(self) -> str | None:
        """The path in the field when it is not the file shown (None: nothing new typed)."""
        text = self.path_edit.text().strip().strip("\"'")
        if not text:
            return None
        path = os.path.expanduser(text)
        return None if path == self.path else path

    def _open_typed_path(self) -> None:
        path = self.typed_path()
        if path is None and self.preview is None and self._loading == 0:
            path = self.path  # Enter again on a file that could not be read: try again
        if path is not None:
            self.open_file(path)

    def open_file(self, path: str) -> None:
        """Read the first rows of ``path`` in the background, then show them."""
        self.path = path
        self.preview = None
        self.path_edit.setText(path)
        self.preview_model.set_preview([], [])
        self.format_label.setText("Reading…")
        self.clear_error()
        if not self.dataset_box.currentText().strip():
            self.dataset_box.setCurrentText(Path(path).stem.replace("_", " "))

        def work() -> Any:
            return formats.preview(path, limit=PREVIEW_ROWS)

        def then(result: Any, error: str) -> None:
            self._loading -= 1
            if path != self.path:
                self.update_controls()
                return  # another file was chosen meanwhile
            import_now, self._import_when_read = self._import_when_read, False
            if error:
                self.format_label.setText("—")
                self.show_error(error)
            else:
                self._show_preview(result)
            self.update_controls()
            if import_now and not error:
                self.run_import()

        self._loading += 1
        self.update_controls()
        self._tasks.start(work, f"read {Path(path).name}", then)

    def _show_preview(self, preview: Any) -> None:
        self.preview = preview
        chat = preview.kind == "chat"
        what = "chat examples" if chat else "texts"
        total = getattr(preview, "total", 0)
        self.format_label.setText(f"{preview.format} · {total} {what}" if total
                                  else f"{preview.format} · {what}")
        columns = list(preview.columns)
        self.preview_model.set_preview(columns, preview.rows)
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        for col in range(len(columns)):
            header.resizeSection(col, min(header.sectionSize(col), PREVIEW_COLUMN_WIDTH))
        for box in (self.text_box, self.label_box):
            box.blockSignals(True)
            box.clear()
        try:
            self.text_box.addItems(columns)
            # Without a label column chosen, the import takes the suggested one; so
            # "(none)" is offered only where there is nothing to suggest.
            if not preview.suggested_label_column:
                self.label_box.addItem("(no label column)", NO_COLUMN)
            for c in columns:
                self.label_box.addItem(c, c)
            if preview.suggested_text_column in columns:
                self.text_box.setCurrentText(preview.suggested_text_column)
            at = self.label_box.findData(preview.suggested_label_column or NO_COLUMN)
            self.label_box.setCurrentIndex(max(at, 0))
        finally:
            for box in (self.text_box, self.label_box):
                box.blockSignals(False)
        self.mapping_row.setVisible(not chat and bool(columns))
        if chat:
            self.note.setText(f"Chat examples in the {preview.format} format: each row's "
                              "messages become one example.")
        else:
            self.note.setText("The first rows of the file; pick the columns that hold the "
                              "text and the label.")
        self._mapping_changed()
        self.previewed.emit(preview)

    def _mapping_changed(self) -> None:
        if self.preview is None or self.preview.kind == "chat":
            self.preview_model.set_mapping(None, None)
            return
        self.preview_model.set_mapping(self.text_column(), self.label_column())

    def text_column(self) -> str | None:
        text = self.text_box.currentText()
        return text or None

    def label_column(self) -> str | None:
        data = self.label_box.currentData()
        return str(data) if data else None

    def set_columns(self, text: str, label: str | None) -> None:
        """Pick the text and label columns (as a person would in the combos)."""
        self.text_box.setCurrentText(text)
        self.label_box.setCurrentIndex(max(self.label_box.findData(label or NO_COLUMN), 0))

    # importing ------------------------------------------------------------------------
    def run_import(self) -> None:
        """Import the whole file; on a bad row nothing is imported and the line is shown.

        A path typed but not read yet is read first, then imported with the suggested
        columns."""
        typed = self.typed_path()
        if typed is not None:
            self._import_when_read = True
            self.open_file(typed)
            return
        if self.path is None or self.preview is None:
            self.show_error("Choose a file to import first.", until=self.previewed)
            return
        name = " ".join(self.dataset_box.currentText().split())
        if not name:
            self.show_error("Name the data set to import into.")
            return
        chat = self.preview.kind == "chat"
        if not chat and self.text_column() is not None \
                and self.text_column() == self.label_column():
            self.show_error("The text and the label cannot come from the same column.")
            return
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            # On the GUI thread: it writes to the database, which this thread owns; the
            # import is one transaction, so a bad line leaves the data set as it was.
            # The kind follows the data set when it exists (a chat-format file of labelled
            # texts goes back into a labelled set), else the file.
            result = formats.import_file(
                self.db, name, self.path,
                text_column=None if chat else self.text_column(),
                label_column=None if chat else self.label_column(),
                allow_new_labels=self.new_labels_box.isChecked())
        except UserFacingError as exc:
            self.show_error(exc.message)
            return
        except OSError as exc:
            self.show_error(f"Cannot read {Path(self.path).name}: {exc.strerror or exc}")
            return
        finally:
            QGuiApplication.restoreOverrideCursor()
        self.result = result
        self.imported.emit(result)
        self.accept()

    def show_error(self, text: str, *, until: SignalInstance | None = None) -> None:
        self.error_label.show_error(text, until=until)

    def clear_error(self) -> None:
        self.error_label.clear_error()

    def update_controls(self) -> None:
        self.import_button.setEnabled(self._loading == 0 and (
            self.preview is not None or self.typed_path() is not None))
