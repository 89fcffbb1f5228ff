"""The Classify tab's input: the texts of the box or of a file, and labelled files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.classify.io import read_columns, read_labelled, read_texts
from slmdesk.ui.common.labels import ElidedLabel
from slmdesk.ui.common.tab_frame import tool_button

if TYPE_CHECKING:
    from slmdesk.ui.classify.view import ClassifyView


TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".ndjson"}


TEXT_COLUMN_GUESSES = ("text", "sentence", "content", "review", "message", "body", "comment",
                       "document", "input", "question", "title")


LABEL_COLUMN_GUESSES = ("label", "labels", "class", "category", "target", "gold", "sentiment",
                        "intent", "topic", "y")


def texts_from_lines(text: str, *, whole: bool) -> list[str]:
    """One text per non-empty line, or the whole box as one text."""
    if whole:
        return [text.strip()] if text.strip() else []
    return [line.strip() for line in text.splitlines() if line.strip()]


def guess_column(columns: Sequence[str], guesses: Sequence[str],
                 avoid: str | None = None) -> str | None:
    """The column whose name looks like one of ``guesses``, else None."""
    folded = {c.casefold().strip(): c for c in columns if c != avoid}
    for guess in guesses:
        if guess in folded:
            return folded[guess]
    return None


class TextInput:
    """Texts typed in the box, or one column of a file read in the background, and the
    labelled file an evaluation reads."""

    def __init__(self, view: ClassifyView) -> None:
        self.view = view
        self.reading = 0  # file reads in flight

    def build(self, parent: QWidget, layout: QVBoxLayout) -> None:
        """Add its controls: the head with the count and the file buttons, the bar of an
        opened file, the text box."""
        head = QHBoxLayout()
        # Folds the text box away (FoldingInput), so a small window shows more results.
        self.fold_button = QToolButton(parent)
        self.fold_button.setObjectName("texts_fold")
        self.fold_button.setText("Texts")
        bold = self.fold_button.font()
        bold.setBold(True)
        self.fold_button.setFont(bold)
        head.addWidget(self.fold_button)
        self.count_label = ElidedLabel("", parent)
        self.count_label.setObjectName("text_count")
        head.addWidget(self.count_label)
        head.addStretch(1)
        self.open_button = QPushButton("Open CSV/JSONL…", parent)
        self.open_button.setToolTip("Classify the texts of a file: one column of a CSV or "
                                    "JSONL file, or the lines of a text file")
        self.open_button.clicked.connect(self.open_requested)
        self.evaluate_button = QPushButton("Evaluate on a labelled file…", parent)
        self.evaluate_button.setToolTip(
            "Classify the texts of a CSV/JSONL file with text and label columns and score the "
            "classifier: accuracy, macro-F1, per-label precision/recall, confusion matrix")
        self.evaluate_button.clicked.connect(self.evaluate_requested)
        head.addWidget(self.open_button)
        head.addWidget(self.evaluate_button)
        layout.addLayout(head)
        layout.addWidget(self._build_file_bar(parent))

        self.texts = QPlainTextEdit(parent)
        self.texts.setObjectName("classify_texts")
        self.texts.setPlaceholderText("Paste texts to classify, one per line…  "
                                      "(Ctrl+Enter runs)")
        self._count_timer = QTimer(parent)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(150)
        self._count_timer.timeout.connect(self.update_count)
        self.texts.textChanged.connect(self._count_timer.start)
        layout.addWidget(self.texts, 1)
        self.whole_box = QCheckBox("Treat the whole box as one text", parent)
        self.whole_box.setObjectName("whole_box")
        self.whole_box.toggled.connect(lambda _on: self.update_count())
        layout.addWidget(self.whole_box)

    def _build_file_bar(self, parent: QWidget) -> QWidget:
        self.file_bar = QWidget(parent)
        bar = QHBoxLayout(self.file_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        self.file_label = ElidedLabel("", self.file_bar, elide=Qt.TextElideMode.ElideMiddle)
        self.file_label.setObjectName("file_label")
        bar.addWidget(self.file_label, 1)
        self.column_caption = QLabel("Column:", self.file_bar)
        bar.addWidget(self.column_caption)
        self.column_box = QComboBox(self.file_bar)
        self.column_box.setObjectName("column_box")
        self.column_box.setToolTip("The column that holds the texts")
        self.column_box.activated.connect(
            lambda i: self.choose_column(self.column_box.itemText(i)))
        bar.addWidget(self.column_box)
        self.close_file_button = tool_button("✕", "Back to the texts typed in the box",
                                             self.file_bar, clicked=self.close_file)
        bar.addWidget(self.close_file_button)
        self.file_bar.hide()
        return self.file_bar

    def set_idle(self, idle: bool) -> None:
        """Whether a file may be opened or changed now (no run, no read)."""
        for widget in (self.open_button, self.column_box, self.close_file_button):
            widget.setEnabled(idle)

    def texts_from_box(self) -> list[str]:
        return texts_from_lines(self.texts.toPlainText(),
                                whole=self.whole_box.isChecked())

    def update_count(self) -> None:
        if self.view.file_path is not None:
            self.count_label.setText(f"· {len(self.view.file_texts)} from a file")
            return
        n = len(self.texts_from_box())
        self.count_label.setText(f"· {n} text{'s' if n != 1 else ''}" if n else "")

    def _ask_for_file(self, title: str, kinds: str, then: Callable[[str], None]) -> None:
        path, _ = QFileDialog.getOpenFileName(self.view, title, "", f"{kinds};;All files (*)")
        if path:
            then(path)

    def _read(self, name: str, work: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """Run ``work`` on the thread pool, then ``then`` with its result (or show its error);
        no run or other read starts meanwhile."""
        def done(result: Any, error: str) -> None:
            self.reading -= 1
            self.view.update_controls()
            if error:
                self.view.show_error(error)
            else:
                then(result)

        self.reading += 1
        self.view.update_controls()
        self.view.status.setText(f"Reading {name}…")
        self.view.tasks.start(work, f"read {name}", done)

    def open_requested(self) -> None:
        self._ask_for_file("Open texts to classify",
                           "Texts (*.csv *.tsv *.jsonl *.ndjson *.txt)", self.open_file)

    def open_file(self, path: str, column: str | None = None) -> None:
        """Read the texts of ``path`` in the background (its text column guessed)."""
        suffix = Path(path).suffix.lower()

        def work() -> tuple[list[str], str | None, list[str]]:
            columns = list(read_columns(path)) if suffix in TABLE_SUFFIXES else []
            chosen = column if column in columns else None
            if columns and chosen is None:
                chosen = guess_column(columns, TEXT_COLUMN_GUESSES) or columns[0]
            return columns, chosen, list(read_texts(path, chosen))

        def then(result: Any) -> None:
            columns, chosen, texts = result
            if not texts:
                self.view.show_error(f"{Path(path).name} has no texts"
                                     + (f" in the column “{chosen}”." if chosen else "."))
            else:
                self.view.clear_error()
                self._use_file(path, columns, chosen, texts)

        self._read(Path(path).name, work, then)

    def _use_file(self, path: str, columns: list[str], column: str | None,
                  texts: list[str]) -> None:
        self.view.file_path, self.view.file_columns, self.view.file_column = path, columns, column
        self.view.file_texts = texts
        self.column_box.clear()
        self.column_box.addItems(columns)
        if column is not None:
            self.column_box.setCurrentIndex(self.column_box.findText(column))
        self.column_box.setVisible(bool(columns))
        self.column_caption.setVisible(bool(columns))
        self.file_label.setText(f"{len(texts)} texts from {Path(path).name}")
        self.file_label.setToolTip(path)
        self.file_bar.show()
        self.texts.setEnabled(False)
        self.whole_box.setEnabled(False)
        self.view.status.setText("")
        self.update_count()
        self.view.input_loaded.emit(path, len(texts))

    def choose_column(self, column: str) -> None:
        if self.view.file_path is not None and column != self.view.file_column:
            self.open_file(self.view.file_path, column)

    def close_file(self) -> None:
        self.view.file_path, self.view.file_columns, self.view.file_column = None, [], None
        self.view.file_texts = []
        self.file_bar.hide()
        self.texts.setEnabled(True)
        self.whole_box.setEnabled(True)
        self.update_count()

    def evaluate_requested(self) -> None:
        self._ask_for_file("Evaluate on a labelled file",
                           "Labelled texts (*.csv *.tsv *.jsonl *.ndjson)", self.evaluate_file)

    def evaluate_file(self, path: str) -> None:
        """Classify a labelled file's texts and score the predictions against its labels."""
        if not self.view.ready_to_run():
            return
        spec = self.view.build_spec()
        if spec is None:
            return
        name = Path(path).name

        def work() -> tuple[str, str, list[tuple[str, str]]]:
            columns = list(read_columns(path))
            text_col = guess_column(columns, TEXT_COLUMN_GUESSES) or "text"
            label_col = guess_column(columns, LABEL_COLUMN_GUESSES, avoid=text_col) or "label"
            pairs = [(str(t), str(lab)) for t, lab in read_labelled(
                path, text_column=text_col, label_column=label_col)]
            return text_col, label_col, pairs

        def then(result: Any) -> None:
            text_col, label_col, pairs = result
            if not pairs:
                self.view.show_error(f"{name} has no labelled texts.")
                return
            unknown = sorted({lab for _t, lab in pairs} - set(spec.label_names))
            if unknown:
                self.view.show_error(
                    f"{name} uses labels this classifier does not define: "
                    f"{', '.join(unknown[:8])}{'…' if len(unknown) > 8 else ''}. Add them to "
                    "the labels (or fix the file) and evaluate again.")
                return
            if not self.view.ready_to_run():
                return
            source = f"{name} (text: “{text_col}”, label: “{label_col}”)"
            self.view.start_run(spec, [t for t, _lab in pairs], [lab for _t, lab in pairs],
                                eval_source=source)

        self._read(name, work, then)
