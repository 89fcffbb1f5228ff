"""The Classify tab's input: the texts of the box or of a file, and labelled files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QFileDialog

from slmdesk.classify.io import read_columns, read_labelled, read_texts

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

    def texts_from_box(self) -> list[str]:
        return texts_from_lines(self.view.texts.toPlainText(),
                                whole=self.view.whole_box.isChecked())

    def _update_count(self) -> None:
        if self.view.file_path is not None:
            self.view.count_label.setText(f"· {len(self.view.file_texts)} from a file")
            return
        n = len(self.texts_from_box())
        self.view.count_label.setText(f"· {n} text{'s' if n != 1 else ''}" if n else "")

    def open_requested(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.view, "Open texts to classify", "",
            "Texts (*.csv *.tsv *.jsonl *.ndjson *.txt);;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str, column: str | None = None) -> None:
        """Read the texts of ``path`` in the background (its text column guessed)."""
        suffix = Path(path).suffix.lower()

        def work() -> tuple[list[str], str | None, list[str]]:
            columns = list(read_columns(path)) if suffix in TABLE_SUFFIXES else []
            chosen = column if column in columns else None
            if columns and chosen is None:
                chosen = guess_column(columns, TEXT_COLUMN_GUESSES) or columns[0]
            return columns, chosen, list(read_texts(path, chosen))

        def then(result: Any, error: str) -> None:
            self.view._reading -= 1
            if error:
                self.view.show_error(error)
            else:
                columns, chosen, texts = result
                if not texts:
                    self.view.show_error(f"{Path(path).name} has no texts"
                                    + (f" in the column “{chosen}”." if chosen else "."))
                else:
                    self.view.clear_error()
                    self._use_file(path, columns, chosen, texts)
            self.view._update_controls()

        self.view._reading += 1
        self.view._update_controls()
        self.view.status.setText(f"Reading {Path(path).name}…")
        self.view._tasks.start(work, f"read {Path(path).name}", then)

    def _use_file(self, path: str, columns: list[str], column: str | None,
                  texts: list[str]) -> None:
        self.view.file_path, self.view.file_columns, self.view.file_column = path, columns, column
        self.view.file_texts = texts
        self.view.column_box.clear()
        self.view.column_box.addItems(columns)
        if column is not None:
            self.view.column_box.setCurrentIndex(self.view.column_box.findText(column))
        self.view.column_box.setVisible(bool(columns))
        self.view.column_caption.setVisible(bool(columns))
        self.view.file_label.setText(f"{len(texts)} texts from {Path(path).name}")
        self.view.file_label.setToolTip(path)
        self.view.file_bar.show()
        self.view.texts.setEnabled(False)
        self.view.whole_box.setEnabled(False)
        self.view.status.setText("")
        self._update_count()
        self.view.input_loaded.emit(path, len(texts))

    def choose_column(self, column: str) -> None:
        if self.view.file_path is not None and column != self.view.file_column:
            self.open_file(self.view.file_path, column)

    def close_file(self) -> None:
        self.view.file_path, self.view.file_columns, self.view.file_column = None, [], None
        self.view.file_texts = []
        self.view.file_bar.hide()
        self.view.texts.setEnabled(True)
        self.view.whole_box.setEnabled(True)
        self._update_count()

    def evaluate_requested(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.view, "Evaluate on a labelled file", "",
            "Labelled texts (*.csv *.tsv *.jsonl *.ndjson);;All files (*)")
        if path:
            self.evaluate_file(path)

    def evaluate_file(self, path: str) -> None:
        """Classify a labelled file's texts and score the predictions against its labels."""
        if not self.view._ready_to_run():
            return
        spec = self.view._build_spec()
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

        def then(result: Any, error: str) -> None:
            self.view._reading -= 1
            self.view._update_controls()
            if error:
                self.view.show_error(error)
                return
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
            if not self.view._ready_to_run():
                return
            self.view._eval_source = f"{name} (text: “{text_col}”, label: “{label_col}”)"
            self.view._start(spec, [t for t, _lab in pairs], [lab for _t, lab in pairs])

        self.view._reading += 1
        self.view._update_controls()
        self.view.status.setText(f"Reading {name}…")
        self.view._tasks.start(work, f"read {name}", then)
