"""slmdesk/ui/datasets/import_dialog.py: a path typed into the field is used, by Enter (read
and shown) and by Import (read, then imported)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from slmdesk.store.datasets import DatasetRepository
from slmdesk.store.db import open_database
from slmdesk.ui.datasets.import_dialog import ImportDialog


@pytest.fixture
def dialog(qtbot: Any, tmp_path: Path) -> Iterator[ImportDialog]:
    db = open_database(tmp_path / "t.db")
    d = ImportDialog(db)
    qtbot.addWidget(d)
    d.show()
    yield d
    d.close()
    db.close()


def _type(qtbot: Any, dialog: ImportDialog, text: str) -> None:
    dialog.path_edit.setFocus()
    dialog.path_edit.selectAll()
    qtbot.keyClicks(dialog.path_edit, text)


def test_a_typed_path_is_read_on_enter_and_imported_by_import(
        qtbot: Any, dialog: ImportDialog, tmp_path: Path) -> None:
    # Issue 16, item 10: the path field ignored typing.
    first = tmp_path / "first.tsv"
    first.write_text("text\tlabel\nnice\tpositive\nbad\tnegative\n", encoding="utf-8")
    assert not dialog.import_button.isEnabled()
    _type(qtbot, dialog, str(first))
    assert dialog.import_button.isEnabled()  # something to import now
    with qtbot.waitSignal(dialog.previewed, timeout=10_000):
        qtbot.keyClick(dialog.path_edit, Qt.Key.Key_Return)
    assert dialog.path == str(first) and dialog.format_label.text().startswith("tsv")
    assert dialog.result is None and dialog.isVisible()  # Enter shows; it does not import

    # Another path typed over it: Import reads that file, then imports it.
    second = tmp_path / "second notes.txt"
    second.write_text("one\ntwo\nthree", encoding="utf-8")
    _type(qtbot, dialog, f'"{second}"')  # pasted with quotes, as file managers copy it
    dialog.dataset_box.setCurrentText("Typed")
    with qtbot.waitSignal(dialog.imported, timeout=10_000) as done:
        dialog.import_button.click()
    assert dialog.path == str(second) and done.args[0].added == 3
    repo = DatasetRepository(dialog.db)
    assert [e.text for e in repo.examples(repo.get("Typed"))] == ["one", "two", "three"]


def test_a_typed_path_that_cannot_be_read_says_why(
        qtbot: Any, dialog: ImportDialog, tmp_path: Path) -> None:
    _type(qtbot, dialog, str(tmp_path / "missing.csv"))
    with qtbot.waitSignal(dialog.error_label.shown, timeout=10_000):
        dialog.import_button.click()
    assert dialog.result is None and "missing.csv" in dialog.error_label.text()
    assert not dialog.import_button.isEnabled()
