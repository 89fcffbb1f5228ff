"""The Data sets tab, driven with qtbot: keyboard labelling with undo, filters and search,
bulk edits, quality checks, import through the dialog, export, and (on the real 135M
model) pre-labelling with cancel and evaluation on the test split with its history."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from slmdesk.classify.evaluate import evaluate
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.datasets import evaluation, formats
from slmdesk.engine.params import LoadParams
from slmdesk.store.classifiers import ClassifierRepository
from slmdesk.store.datasets import Dataset, DatasetRepository
from slmdesk.ui.common.model_choice import ModelChoice
from slmdesk.ui.datasets.table_models import (
    LABEL_COLUMN,
    SUGGESTION_COLUMN,
    TEXT_COLUMN,
    chat_summary,
)
from slmdesk.ui.engine_thread import ClassifyJob
from tests.engine_jobs import each_job
from tests.qt.reviews import GOLD, TEXTS

MORE = [
    "The concert was amazing and the crowd was lovely.",
    "My order arrived late and the box was crushed.",
    "Such a kind and helpful team, thank you!",
    "The app keeps crashing, it is useless.",
    "Best holiday we have had in years.",
    "Rude staff and dirty rooms.",
    "I would buy this again without a doubt.",
    "It broke after two days.",
]


class Bench:
    """A DatasetsView on a fresh home; the engine runs but no model is loaded unless
    ``load`` is called."""

    def __init__(self, qtbot: Any, *, load: bool = False) -> None:
        from slmdesk.startup import open_core
        from slmdesk.ui.datasets.view import DatasetsView
        from slmdesk.ui.engine_thread import EngineClient

        self.core = open_core(register_starter=load)
        self.db = self.core.db
        self.repo = DatasetRepository(self.db)
        self.engine = EngineClient()
        self.model: Any = None
        self.info: Any = None
        if load:
            from slmdesk.catalog.registry import resolve_model

            self.model = resolve_model(self.db)
            with qtbot.waitSignal(self.engine.model_loaded, timeout=60_000) as loaded:
                self.engine.load(self.model.path, LoadParams(max_context=1024, n_threads=1))
            self.info = loaded.args[0]
        self.view = DatasetsView(self.db, self.engine)
        qtbot.addWidget(self.view)
        self.view.resize(1300, 860)
        self.view.show()
        self.view.set_model(ModelChoice(self.model, self.info))

    def close(self) -> None:
        self.engine.shutdown()
        for _ in range(3):
            QApplication.processEvents()
        self.db.close()

    def reviews(self, *, labelled: int = 0, name: str = "Reviews") -> Dataset:
        """A labels data set of the 12 texts; the first ``labelled`` carry their label."""
        ds = self.repo.create(name, kind="labels", labels=["positive", "negative"])
        for i, (text, gold) in enumerate(zip(TEXTS, GOLD, strict=True)):
            self.repo.add_labelled_text(ds, text, gold if i < labelled else None,
                                        source="imported" if i % 3 == 2 else "typed")
        self.view.dataset_list.refresh_datasets(select=name)
        return ds


@pytest.fixture
def bench(qtbot: Any) -> Iterator[Bench]:
    b = Bench(qtbot)
    yield b
    b.close()


@pytest.fixture
def model_bench(qtbot: Any, model_path: Path) -> Iterator[Bench]:
    b = Bench(qtbot, load=True)
    yield b
    b.close()


def shown_texts(view: Any) -> list[str]:
    return [e.text for e in view.shown_examples()]


def current_row(view: Any) -> int:
    return int(view.table.currentIndex().row())


def labels_in_db(bench: Bench, ds: Dataset) -> list[str | None]:
    return [e.label for e in bench.repo.examples(ds)]


def key(qtbot: Any, view: Any, k: Qt.Key,
        modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(view.table, k, modifier)


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# -- labelling by keyboard ----------------------------------------------------------------


def test_keyboard_labelling_moves_on_and_undoes(
        qtbot: Any, bench: Bench, qtmodeltester: Any) -> None:
    view = bench.view
    ds = bench.reviews()
    qtmodeltester.check(view.examples)
    qtmodeltester.check(view.dataset_list.list_model)
    assert view.dataset is not None and view.dataset.name == "Reviews"
    assert view.dataset_list.list_model.index(0, 0).data() == "Reviews  (12)"
    assert shown_texts(view) == TEXTS
    counts = view.filters.counts.text()
    assert "12</b> examples" in counts and "12 unlabelled" in counts

    view.select_row(0)
    key(qtbot, view, Qt.Key.Key_1)  # the first label
    assert labels_in_db(bench, ds)[:2] == ["positive", None]
    assert current_row(view) == 1  # moved on by itself
    key(qtbot, view, Qt.Key.Key_2)
    assert labels_in_db(bench, ds)[:3] == ["positive", "negative", None]
    assert current_row(view) == 2
    key(qtbot, view, Qt.Key.Key_Down)
    assert current_row(view) == 3
    key(qtbot, view, Qt.Key.Key_Up)
    key(qtbot, view, Qt.Key.Key_Up)
    assert current_row(view) == 1
    key(qtbot, view, Qt.Key.Key_0)  # clears
    assert labels_in_db(bench, ds)[:2] == ["positive", None]
    assert current_row(view) == 2
    assert view.examples.index(1, LABEL_COLUMN).data() == "—"

    # Ctrl+Z puts back the label that 0 cleared, and selects that example again.
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labels_in_db(bench, ds)[:2] == ["positive", "negative"]
    assert current_row(view) == 1
    example = bench.repo.examples(ds)[1]
    assert example.labelled_by == "person"
    assert view.examples.index(1, LABEL_COLUMN).data() == "negative"
    assert "Undid" in view.status.text()
    # Undo again, twice: back to nothing labelled.
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labels_in_db(bench, ds) == [None] * 12
    assert not view.annotator.undo_button.isEnabled()
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert view.status.text() == "Nothing to undo."

    # A key past the last label says so and changes nothing.
    with qtbot.waitSignal(view.error_shown) as failed:
        key(qtbot, view, Qt.Key.Key_3)
    assert "no label 3" in failed.args[0] and "positive, negative" in failed.args[0]
    assert labels_in_db(bench, ds) == [None] * 12

    # Showing only unlabelled examples, the labelled one leaves and the next comes up.
    view.filters.unlabelled_box.setChecked(True)
    view.select_row(0)
    for _ in range(3):
        key(qtbot, view, Qt.Key.Key_2)
    assert labels_in_db(bench, ds)[:4] == ["negative", "negative", "negative", None]
    assert shown_texts(view) == TEXTS[3:]
    assert current_row(view) == 0 and view.selected_examples()[0].text == TEXTS[3]

    # Several rows at once (Shift+Down extends the selection), one undo step for all.
    key(qtbot, view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    key(qtbot, view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert [e.text for e in view.selected_examples()] == TEXTS[3:6]
    key(qtbot, view, Qt.Key.Key_1)
    assert labels_in_db(bench, ds)[3:7] == ["positive", "positive", "positive", None]
    assert shown_texts(view) == TEXTS[6:]
    assert view.selected_examples()[0].text == TEXTS[6]
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labels_in_db(bench, ds)[3:6] == [None, None, None]
    assert [e.text for e in view.selected_examples()] == TEXTS[3:6]

    # The counts strip and the list follow.
    view.filters.unlabelled_box.setChecked(False)
    counts = view.filters.counts.text()
    assert "3 labelled" in counts and "9 unlabelled" in counts
    assert ">negative</a> 3" in counts and ">positive</a> 0" in counts
    view.grab()  # paints the table, the bars delegate and the strip


def test_keys_reach_the_table_before_a_window_shortcut(qtbot: Any, bench: Bench) -> None:
    """A window-wide Ctrl+Z or digit shortcut must not steal the labelling keys."""
    from PySide6.QtGui import QKeySequence, QShortcut

    view = bench.view
    ds = bench.reviews()
    stolen: list[str] = []
    QShortcut(QKeySequence("Ctrl+Z"), view, lambda: stolen.append("undo"))
    QShortcut(QKeySequence("1"), view, lambda: stolen.append("1"))
    view.activateWindow()
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus, timeout=5_000)
    view.select_row(4)
    key(qtbot, view, Qt.Key.Key_1)
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, view, Qt.Key.Key_1)
    assert stolen == []
    assert labels_in_db(bench, ds)[4] == "positive"


# -- filters and search -------------------------------------------------------------------


def test_filters_and_search(qtbot: Any, bench: Bench, qtmodeltester: Any) -> None:
    view = bench.view
    ds = bench.reviews(labelled=8)
    qtmodeltester.check(view.examples)
    view.filters.unlabelled_box.setChecked(True)
    assert shown_texts(view) == TEXTS[8:]
    assert not view.label_filter.isEnabled()
    view.filters.unlabelled_box.setChecked(False)
    assert [view.label_filter.itemText(i) for i in range(view.label_filter.count())] == [
        "All labels", "1: positive", "2: negative"]
    view.filters.set_label_filter("positive")
    assert shown_texts(view) == [TEXTS[i] for i in (0, 2, 4, 6)]
    assert "(4 shown)" in view.filters.counts.text()
    view.filters.set_label_filter("")

    # Source: every third text was "imported".
    sources = view.filters.source_filter
    assert [sources.itemData(i) for i in range(sources.count())] == ["", "typed", "imported"]
    view.filters.set_source_filter("imported")
    assert shown_texts(view) == [TEXTS[i] for i in (2, 5, 8, 11)]
    view.filters.set_source_filter("")

    # Splits (stratified and seeded), then the split filter and the counts.
    assert view.files.assign_splits(seed=1, fractions=(0.5, 0.0, 0.5))
    test = [e.text for e in bench.repo.query(ds, split="test")]
    assert test and len(test) < 12
    view.filters.set_split_filter("test")
    assert shown_texts(view) == test
    assert view.examples.index(0, 3).data() == "test"
    assert "'split:test'>test</a>" in view.filters.counts.text()
    view.filters.set_split_filter("")

    # Full-text search, alone and with another filter.
    view.filters.set_search("staff")
    assert shown_texts(view) == [TEXTS[6]]
    view.filters.set_search("great")
    assert shown_texts(view) == [TEXTS[2], TEXTS[6]]
    view.filters.set_label_filter("negative")
    assert shown_texts(view) == []
    view.filters.set_label_filter("")
    view.filters.search_box.setText("")  # typing waits for a pause before it searches
    qtbot.waitUntil(lambda: len(shown_texts(view)) == 12, timeout=3_000)
    view.filters.set_search("!!! ((")  # punctuation alone finds nothing, and is no error
    assert shown_texts(view) == [] and not view.banner.isVisible()
    view.filters.set_search("")

    # Disagreement: the person's label differs from the model's suggestion.
    [first, second, *_rest] = bench.repo.examples(ds)
    bench.repo.set_model_suggestion(first.id, "negative", 0.8, model_name="m")
    bench.repo.set_model_suggestion(second.id, "negative", 0.9, model_name="m")
    view.reload()
    view.filters.disagreement_box.setChecked(True)
    assert shown_texts(view) == [TEXTS[0]]
    assert view.examples.index(0, SUGGESTION_COLUMN).data() == "negative 80.0 %"
    assert view.examples.index(0, SUGGESTION_COLUMN).data(
        Qt.ItemDataRole.BackgroundRole) is not None
    view.filters.disagreement_box.setChecked(False)

    # Clicking a label in the counts strip filters by it.
    view.filters.counts.linkActivated.emit("label:negative")
    assert shown_texts(view) == [TEXTS[i] for i in (1, 3, 5, 7)]
    view.filters.clear_filters()
    assert len(shown_texts(view)) == 12


# -- bulk edits, delete, quality ----------------------------------------------------------


def test_bulk_relabel_delete_and_undo(qtbot: Any, bench: Bench) -> None:
    view = bench.view
    ds = bench.reviews(labelled=12)
    before = bench.repo.examples(ds)
    ids = [e.id for e in before[:4]]
    assert view.select_ids(ids) == 4

    # Relabel from the "Set label" menu.
    view.annotator.relabel_menu.aboutToShow.emit()
    actions = {a.text(): a for a in view.annotator.relabel_menu.actions() if a.text()}
    assert list(actions)[:2] == ["positive", "negative"] and "New label…" in actions
    actions["negative"].trigger()
    assert labels_in_db(bench, ds)[:5] == ["negative"] * 4 + ["positive"]
    assert view.annotator.undo_steps()[-1].what == "label negative 4 examples"
    view.annotator.undo_button.click()
    assert bench.repo.examples(ds) == before  # exactly as before, times included

    # A new label made on the spot joins the label set (and the filter).
    view.select_ids(ids[:1])
    assert view.annotator.set_label_selected("neutral") == 1
    assert bench.repo.get("Reviews").labels == ["positive", "negative", "neutral"]
    assert view.label_filter.findData("neutral") >= 0

    # Delete (key), undo (key): the same rows come back.
    view.select_ids(ids[1:3])
    key(qtbot, view, Qt.Key.Key_Delete)
    assert bench.repo.count(ds) == 10
    assert shown_texts(view)[:2] == [TEXTS[0], TEXTS[3]]
    assert view.selected_examples()[0].text == TEXTS[3]
    assert view.dataset_list.list_model.index(0, 0).data() == "Reviews  (10)"
    key(qtbot, view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert bench.repo.count(ds) == 12
    assert bench.repo.examples(ds)[1:3] == before[1:3]
    assert [e.id for e in view.selected_examples()] == ids[1:3]
    view.annotator.delete_button.click()
    assert bench.repo.count(ds) == 10
    view.annotator.undo()
    assert bench.repo.count(ds) == 12
    # Deleting the last example leaves the cursor on the new last one.
    view.select_row(11)
    key(qtbot, view, Qt.Key.Key_Delete)
    assert current_row(view) == 10 and view.selected_examples()[0].text == TEXTS[10]


def test_duplicates_and_near_empty_are_selected(qtbot: Any, bench: Bench) -> None:
    view = bench.view
    ds = bench.reviews(labelled=12)
    copy = bench.repo.add_labelled_text(ds, "i LOVED this film -- it was wonderful",
                                        "positive", source="typed")
    tiny = bench.repo.add_labelled_text(ds, "ok", None, source="typed")
    view.filters.set_label_filter("negative")  # the search clears filters first
    assert view.files.select_duplicates() == 1
    assert [e.id for e in view.selected_examples()] == [copy.id]
    assert len(shown_texts(view)) == 14
    assert "selected the 1 later copy" in view.status.text()
    key(qtbot, view, Qt.Key.Key_Delete)
    assert bench.repo.count(ds) == 13
    assert view.files.select_duplicates() == 0 and view.status.text() == "No duplicates."
    assert view.files.select_near_empty() == 1
    assert [e.id for e in view.selected_examples()] == [tiny.id]


# -- chat examples ------------------------------------------------------------------------


def test_chat_examples_show_a_summary_and_their_messages(qtbot: Any, bench: Bench) -> None:
    view = bench.view
    chat = bench.repo.create("Answers", kind="chat")
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "Paris."}]
    bench.repo.add_chat_example(chat, messages, source="typed", rating=1)
    view.dataset_list.refresh_datasets(select="Answers")
    first = view.dataset_list.list_model.index(0, 0)
    assert not first.data(Qt.ItemDataRole.DecorationRole).isNull()
    assert view.examples.index(0, TEXT_COLUMN).data() == chat_summary(messages)
    assert view.examples.index(0, TEXT_COLUMN).data().startswith("system: Be brief. · user:")
    view.select_row(0)
    body = view.details_text.toPlainText()
    assert "USER\nWhat is the capital of France?" in body and "ASSISTANT\nParis." in body
    assert "rating: 1" in view.details_title.text()
    # Labels make no sense here: the keys say so, pre-labelling and evaluation are off.
    with qtbot.waitSignal(view.error_shown):
        key(qtbot, view, Qt.Key.Key_1)
    assert not view.model_runs.prelabel_button.isEnabled()
    assert not view.annotator.relabel_button.isEnabled()
    # Rename and delete the data set from the list.
    assert view.dataset_list.rename_dataset("Short answers")
    assert view.dataset is not None and view.dataset.name == "Short answers"
    assert view.dataset_list.list_model.index(0, 0).data() == "Short answers  (1)"
    view.dataset_list.delete_dataset()
    assert bench.repo.all() == [] and view.dataset is None
    assert "No data set yet" in view.filters.counts.text()


# -- import -------------------------------------------------------------------------------


def test_import_a_csv_through_the_dialog_with_a_chosen_column(
        qtbot: Any, bench: Bench, tmp_path: Path, qtmodeltester: Any) -> None:
    view = bench.view
    data = tmp_path / "shop.csv"
    write_csv(data, ["id", "title", "body", "sentiment"], [
        [i, f"title {i}", text, gold] for i, (text, gold) in enumerate(
            zip(TEXTS, GOLD, strict=True))])
    dialog = view.files.import_dialog()
    qtmodeltester.check(dialog.preview_model)
    with qtbot.waitSignal(dialog.previewed, timeout=10_000):
        dialog.open_file(str(data))
    assert dialog.format_label.text() == "csv · 12 texts"
    assert dialog.preview_model.rowCount() == 12 and dialog.preview_model.columns == [
        "id", "title", "body", "sentiment"]
    # The suggestion: text from "body", label from "sentiment"; the headers show it.
    assert dialog.text_box.currentText() == "body"
    assert dialog.label_box.currentData() == "sentiment"
    assert dialog.preview_model.headerData(2, Qt.Orientation.Horizontal) == "body → text"
    # The person maps the text to another column.
    dialog.text_box.setCurrentIndex(dialog.text_box.findText("title"))
    assert dialog.preview_model.headerData(1, Qt.Orientation.Horizontal) == "title → text"
    dialog.dataset_box.setCurrentText("Shop titles")
    with qtbot.waitSignal(view.imported, timeout=10_000) as done:
        dialog.import_button.click()
    assert done.args[0].added == 12
    ds = bench.repo.get("Shop titles")
    assert [e.text for e in bench.repo.examples(ds)] == [f"title {i}" for i in range(12)]
    assert labels_in_db(bench, ds) == GOLD
    assert ds.labels == ["positive", "negative"]
    assert view.dataset is not None and view.dataset.name == "Shop titles"
    assert len(shown_texts(view)) == 12
    assert "Imported 12 examples into “Shop titles”" in view.status.text()


def test_import_plain_text_and_tsv(qtbot: Any, bench: Bench, tmp_path: Path) -> None:
    view = bench.view
    lines = tmp_path / "notes.txt"
    # (No newline at the end: the core counts the empty "line" after it as blank.)
    lines.write_text("first text\n\nsecond text", encoding="utf-8")
    dialog = view.files.import_dialog()
    with qtbot.waitSignal(dialog.previewed, timeout=10_000):
        dialog.open_file(str(lines))
    assert dialog.dataset_box.currentText() == "notes"
    with qtbot.waitSignal(view.imported, timeout=10_000) as done:
        dialog.import_button.click()
    assert (done.args[0].added, done.args[0].skipped_blank) == (2, 1)
    assert "1 blank line skipped" in view.status.text()
    assert shown_texts(view) == ["first text", "second text"]

    table = tmp_path / "more.tsv"
    table.write_text("text\tlabel\nnice\tpositive\nbad\tnegative\n", encoding="utf-8")
    dialog = view.files.import_dialog()
    with qtbot.waitSignal(dialog.previewed, timeout=10_000):
        dialog.open_file(str(table))
    assert dialog.format_label.text().startswith("tsv")
    dialog.dataset_box.setCurrentText("notes")  # into the existing one: new labels allowed
    dialog.new_labels_box.setChecked(True)
    with qtbot.waitSignal(view.imported, timeout=10_000):
        dialog.import_button.click()
    assert shown_texts(view) == ["first text", "second text", "nice", "bad"]
    assert bench.repo.get("notes").labels == ["positive", "negative"]


def test_bad_files_show_the_line_and_import_nothing(
        qtbot: Any, bench: Bench, tmp_path: Path) -> None:
    view = bench.view
    ds = bench.reviews(labelled=12)
    # A ragged row: the whole file is read first, so the preview already fails.
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nfine,positive\nalso fine,negative\ntoo,many,fields\n",
                      encoding="utf-8")
    dialog = view.files.import_dialog()
    with qtbot.waitSignal(dialog.failed, timeout=10_000) as failed:
        dialog.open_file(str(ragged))
    assert "ragged.csv line 4" in failed.args[0]
    assert dialog.error_label.isVisible() and "line 4" in dialog.error_label.text()
    assert not dialog.import_button.isEnabled()
    dialog.run_import()  # refused: there is nothing to import
    assert bench.repo.find("ragged") is None

    # A label the data set does not have, on line 3: refused at import, nothing added.
    typo = tmp_path / "typo.csv"
    write_csv(typo, ["text", "label"], [["good one", "positive"], ["bad one", "negativ"],
                                        ["fine", "positive"]])
    with qtbot.waitSignal(dialog.previewed, timeout=10_000):
        dialog.open_file(str(typo))
    assert not dialog.error_label.isVisible()
    dialog.dataset_box.setCurrentText("Reviews")
    with qtbot.waitSignal(dialog.failed, timeout=10_000) as failed:
        dialog.import_button.click()
    assert "typo.csv line 3" in failed.args[0] and "negativ" in failed.args[0]
    assert dialog.isVisible() and "line 3" in dialog.error_label.text()
    assert bench.repo.count(ds) == 12
    dialog.reject()


# -- export -------------------------------------------------------------------------------


def test_export_every_format_and_the_data_card(
        qtbot: Any, bench: Bench, tmp_path: Path) -> None:
    view = bench.view
    ds = bench.reviews(labelled=12)
    assert view.files.assign_splits(seed=0, fractions=(0.5, 0.0, 0.5))
    for fmt in formats.FORMATS:
        out = tmp_path / f"all.{fmt}"
        with qtbot.waitSignal(view.exported, timeout=10_000) as done:
            assert view.files.export_to(str(out), fmt)
        assert done.args == [str(out)]
        text = out.read_text(encoding="utf-8")
        assert text == formats.export(bench.db, "Reviews", fmt)
        if fmt == "csv":
            rows = list(csv.DictReader(text.splitlines()))
            assert [r["text"] for r in rows] == TEXTS and [r["label"] for r in rows] == GOLD
        else:
            records = [json.loads(line) for line in text.splitlines()]
            assert len(records) == 12
            if fmt == "openai":
                assert records[0]["messages"][-1] == {"role": "assistant",
                                                       "content": "positive"}
    # One split, with its data card.
    test = bench.repo.query(ds, split="test")
    out = tmp_path / "test.jsonl"
    with qtbot.waitSignal(view.exported, timeout=10_000):
        view.files.export_to(str(out), "jsonl", "test", card=True)
    assert [json.loads(x)["text"] for x in out.read_text().splitlines()] == [
        e.text for e in test]
    card = tmp_path / "test.md"
    assert card.read_text(encoding="utf-8") == formats.data_card(bench.db, "Reviews")
    assert "data card to test.md" in view.status.text()
    # A write error is shown, not raised.
    with qtbot.waitSignal(view.error_shown, timeout=10_000) as failed:
        view.files.export_to(str(tmp_path / "missing" / "out.csv"), "csv")
    assert "Cannot write out.csv" in failed.args[0]


def test_a_saved_confusion_matrix_is_a_png(qtbot: Any, bench: Bench, tmp_path: Path,
                                           qtmodeltester: Any) -> None:
    """Kept runs show again from the history; their matrix saves as a PNG picture."""
    view = bench.view
    ds = bench.reviews(labelled=12)
    assert not view.model_runs.save_png(str(tmp_path / "none.png"))  # nothing evaluated yet
    report = evaluate(GOLD[:6], ["positive", "positive", "positive", "negative",
                                 "positive", "negative"], ["positive", "negative"])
    spec = ClassifierSpec(labels=(Label("positive"), Label("negative")))
    evaluation.record_eval(bench.db, ds, model_name="a model", classifier_spec=spec,
                           report=report, split="test")
    view.model_runs.refresh_history()
    qtmodeltester.check(view.model_runs.history)
    assert view.model_runs.history.rowCount() == 1
    assert view.model_runs.history.index(0, 1).data() == "a model"
    assert view.model_runs.history.index(0, 5).data() == f"{report.accuracy:.1%}"
    view.model_runs.history_table.selectRow(0)
    assert view.confusion.labels == ["positive", "negative"]
    assert [[view.confusion.count(r, c) for c in range(2)] for r in range(2)] == (
        report.confusion)
    assert f"Accuracy {report.accuracy:.1%}" in view.eval_summary.text()
    out = tmp_path / "matrix.png"
    assert view.model_runs.save_png(str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(out))
    assert not image.isNull() and image.width() > 50 and image.height() > 50
    # The picture is the widget as drawn: a diagonal cell has the "correct" colour.
    rect = view.confusion.cell_rect(0, 0)
    ratio = image.width() / view.confusion.width()
    pixel = image.pixelColor(int((rect.left() + 3) * ratio), int((rect.top() + 3) * ratio))
    assert pixel.rgb() == view.confusion.cell_colour(0, 0).rgb()


# -- the real model: pre-label and evaluate -----------------------------------------------


@pytest.mark.model
def test_prelabel_with_cancel_then_confirm_and_correct(
        qtbot: Any, model_bench: Bench) -> None:
    bench = model_bench
    view = bench.view
    ds = bench.reviews(labelled=12)
    for text in MORE:
        bench.repo.add_labelled_text(ds, text, None, source="typed")
    view.reload()
    view.filters.unlabelled_box.setChecked(True)
    assert shown_texts(view) == MORE
    assert view.model_runs.prelabel_button.isEnabled()

    # Cancel after the first text: the suggestions so far are kept.
    seen: list[int] = []

    def on_live(index: int, _pred: Any) -> None:
        seen.append(index)
        if len(seen) == 1:
            view.cancel_button.click()

    stop_following = each_job(bench.engine, ClassifyJob, "classified", on_live)
    with qtbot.waitSignal(view.run_finished, timeout=120_000) as done:
        view.model_runs.prelabel_button.click()
        assert not view.model_runs.prelabel_button.isEnabled() and view.cancel_button.isEnabled()
    stop_following()
    assert done.args == ["prelabel", True]
    suggested = [e for e in bench.repo.query(ds, unlabelled=True) if e.model_label]
    assert 1 <= len(suggested) < len(MORE)
    assert "Cancelled after" in view.model_runs.run_status.text()
    assert view.model_runs.prelabel_button.isEnabled()

    # The whole way. Meanwhile the person goes on working: deletes the last example.
    deleted: list[int] = []

    def delete_last(_index: int, _pred: Any) -> None:
        if not deleted:
            view.select_row(len(MORE) - 1)
            deleted.append(view.annotator.delete_selected())

    stop_following = each_job(bench.engine, ClassifyJob, "classified", delete_last)
    with qtbot.waitSignal(view.run_finished, timeout=120_000) as done:
        view.model_runs.prelabel_button.click()
    stop_following()
    assert deleted == [1]
    assert done.args == ["prelabel", False]
    assert not view.banner.isVisible()
    unlabelled = bench.repo.query(ds, unlabelled=True)
    assert [e.text for e in unlabelled] == MORE[:-1]  # suggestions never label by themselves
    for e in unlabelled:
        assert e.model_label in ("positive", "negative")
        assert e.model_confidence is not None and 0.5 <= e.model_confidence <= 1.0
        assert e.model_name == bench.model.name
    for row, e in enumerate(view.shown_examples()):
        assert view.examples.index(row, SUGGESTION_COLUMN).data() == (
            f"{e.model_label} {100 * e.model_confidence:.1f} %")
    view.grab()  # the suggestion bars paint

    # Confirm the first suggestion (A), correct the second (the other label's key).
    view.select_row(0)
    first, second = view.shown_examples()[:2]
    key(qtbot, view, Qt.Key.Key_A)
    other = "negative" if second.model_label == "positive" else "positive"
    assert view.selected_examples()[0].id == second.id
    key(qtbot, view, Qt.Key.Key_1 if other == "positive" else Qt.Key.Key_2)
    assert bench.repo.get_example(first.id).label == first.model_label
    assert bench.repo.get_example(second.id).label == other
    view.filters.unlabelled_box.setChecked(False)
    view.filters.disagreement_box.setChecked(True)
    assert [e.id for e in view.shown_examples()] == [second.id]
    view.filters.disagreement_box.setChecked(False)

    # Accept the rest in bulk over 0 %: recorded as the model's labels; one undo.
    rest = bench.repo.query(ds, unlabelled=True)
    assert view.annotator.accept_suggestions_over(0.0) == len(rest)
    for e in rest:
        after = bench.repo.get_example(e.id)
        assert after.label == e.model_label
        assert after.labelled_by == f"model:{bench.model.name}"
    view.annotator.undo()
    assert len(bench.repo.query(ds, unlabelled=True)) == len(rest)


@pytest.mark.model
def test_evaluate_on_the_test_split_with_history(
        qtbot: Any, model_bench: Bench, tmp_path: Path, qtmodeltester: Any) -> None:
    bench = model_bench
    view = bench.view
    ds = bench.reviews(labelled=12)
    qtmodeltester.check(view.model_runs.history)
    # No test split yet: said, nothing runs.
    with qtbot.waitSignal(view.error_shown) as failed:
        view.evaluate_button.click()
    assert "test split has no labelled examples" in failed.args[0] and view.job is None
    view.files.assign_splits(seed=0, fractions=(0.5, 0.0, 0.5))
    test = bench.repo.query(ds, split="test")
    assert len(test) == 6

    predictions: list[Any] = []
    each_job(bench.engine, ClassifyJob, "finished",
             lambda preds, _cancelled: predictions.extend(preds))
    with qtbot.waitSignal(view.evaluated, timeout=120_000) as done:
        view.evaluate_button.click()
    run = done.args[0]
    assert [p.text for p in predictions] == [e.text for e in test]
    expected = evaluate([str(e.label) for e in test], [p.label for p in predictions],
                        ["positive", "negative"])
    assert run.accuracy == pytest.approx(expected.accuracy)
    assert run.macro_f1 == pytest.approx(expected.macro_f1)
    assert run.model_name == bench.model.name and run.split == "test"
    summary = view.eval_summary.text()
    assert f"Accuracy {expected.accuracy:.1%}" in summary
    assert f"macro-F1 {expected.macro_f1:.3f}" in summary
    for r, label in enumerate(["positive", "negative"]):
        assert view.per_label.item(r, 0).text() == label
        assert view.per_label.item(r, 1).text() == f"{expected.per_label[label]['precision']:.3f}"
        assert view.per_label.item(r, 2).text() == f"{expected.per_label[label]['recall']:.3f}"
    assert [[view.confusion.count(r, c) for c in range(2)] for r in range(2)] == (
        expected.confusion)
    assert view.model_runs.history.rowCount() == 1
    assert view.model_runs.history.index(0, 5).data() == f"{expected.accuracy:.1%}"

    # Another prompt, saved in Classify: a second run, side by side in the history. One
    # of its few-shot examples is a test text, which the report warns about.
    spec = ClassifierSpec(labels=(Label("positive", "a happy review"),
                                  Label("negative", "an unhappy review")),
                          instructions="Is the review positive or negative?",
                          examples=((str(test[0].text), str(test[0].label)),),
                          calibration="none")
    ClassifierRepository(bench.db).save("Sentiment", spec.to_json(), model_id=None)
    view.model_runs.refresh_classifiers()
    view.model_runs.classifier_box.setCurrentIndex(view.model_runs.classifier_box.findData("Sentiment"))
    with qtbot.waitSignal(view.evaluated, timeout=120_000) as done:
        view.evaluate_button.click()
    assert view.model_runs.history.rowCount() == 2
    assert done.args[0].classifier_name == "Sentiment"
    assert done.args[0].report["few_shot_overlap"] == 1
    assert "⚠ 1 of the texts are also the classifier's few-shot" in view.eval_summary.text()
    assert view.model_runs.history.index(0, 2).data().startswith("Sentiment · positive, negative")
    specs = [view.model_runs.history.index(r, 2).data() for r in range(2)]
    assert any("Is the review positive" in s for s in specs)
    assert any("Is the review" not in s for s in specs)
    assert len(evaluation.list_evals(bench.db, ds)) == 2

    # The matrix saves as a PNG.
    out = tmp_path / "confusion.png"
    assert view.model_runs.save_png(str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not QImage(str(out)).isNull()


def test_without_a_model_the_model_actions_wait(qtbot: Any, bench: Bench) -> None:
    view = bench.view
    bench.reviews()
    assert not view.model_runs.prelabel_button.isEnabled() and not view.evaluate_button.isEnabled()
    assert view.model_note.text() == "No model is ready."
    with qtbot.waitSignal(view.error_shown) as failed:
        view.model_runs.prelabel()
    assert "No model is loaded" in failed.args[0]
