"""The Classify workbench, driven with qtbot on the real 135M model: run a batch with progress
and cancel, filter and sort, review into a data set, export, evaluate, save classifiers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from slmdesk.classify.evaluate import evaluate
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.engine.params import LoadParams
from slmdesk.store.classifiers import ClassifierRepository
from slmdesk.store.datasets import DatasetRepository
from slmdesk.ui.common.model_choice import ModelChoice
from tests.qt.reviews import GOLD, TEXTS

pytestmark = pytest.mark.model



class Workbench:
    """A ClassifyView on a fresh home with the real 135M model loaded on the engine thread."""

    def __init__(self, qtbot: Any) -> None:
        from slmdesk.catalog.registry import resolve_model
        from slmdesk.startup import open_core
        from slmdesk.ui.classify.view import ClassifyView
        from slmdesk.ui.engine_thread import EngineClient

        self.core = open_core()
        self.model = resolve_model(self.core.db)
        self.engine = EngineClient()
        with qtbot.waitSignal(self.engine.model_loaded, timeout=60_000) as loaded:
            # One thread is steadier than two on the shared CI cores.
            self.engine.load(self.model.path, LoadParams(max_context=1024, n_threads=1))
        self.info = loaded.args[0]
        self.view = ClassifyView(self.core.db, self.engine)
        qtbot.addWidget(self.view)
        self.view.resize(1300, 800)
        self.view.show()
        self.view.set_model(ModelChoice(self.model, self.info))

    def close(self) -> None:
        self.engine.shutdown()
        for _ in range(3):
            QApplication.processEvents()
        self.core.db.close()


@pytest.fixture
def bench(qtbot: Any, model_path: Path) -> Iterator[Workbench]:
    b = Workbench(qtbot)
    yield b
    b.close()


def pick_starter(view: Any, title: str = "positive, negative") -> None:
    [action] = [a for a in view.setup.starter_button.menu().actions() if a.text() == title]
    action.trigger()


def classify(qtbot: Any, view: Any, texts: list[str] = TEXTS) -> None:
    view.text_input.texts.setPlainText("\n".join(texts))
    with qtbot.waitSignal(view.run_finished, timeout=120_000) as done:
        view.run_button.click()
    assert done.args == [False]


def shown(view: Any) -> list[Any]:
    """The ResultRows in the order the table shows them."""
    proxy = view.proxy
    return [view.results.result(proxy.mapToSource(proxy.index(r, 0)).row())
            for r in range(proxy.rowCount())]


def test_batch_runs_with_progress_live_rows_cancel_and_rerun(
        qtbot: Any, bench: Workbench, qtmodeltester: Any) -> None:
    view = bench.view
    # The model tester watches every insert and change from here on.
    qtmodeltester.check(view.results)
    pick_starter(view)
    assert view.setup.label_names() == ["positive", "negative"]
    view.text_input.texts.setPlainText("\n".join(TEXTS))
    qtbot.waitUntil(lambda: "12 texts" in view.text_input.count_label.text(), timeout=2_000)

    # Cancel mid-way: the rows classified so far stay, the view goes back to idle.
    live_rows: list[int] = []

    def on_live(index: int, _pred: Any) -> None:
        live_rows.append(view.results.rowCount())
        if len(live_rows) == 2:
            view.cancel_button.click()

    progress: list[str] = []
    view.progress.valueChanged.connect(lambda _v: progress.append(view.progress.text()))
    with qtbot.waitSignal(view.run_finished, timeout=120_000) as done:
        view.run_button.click()
        assert not view.run_button.isEnabled() and view.cancel_button.isEnabled()
        # After the view's own handler (it connected when the job started).
        view.job.classified.connect(on_live)
    assert done.args == [True]
    kept = view.results.rowCount()
    assert 2 <= kept < len(TEXTS)
    assert live_rows[:2] == [1, 2]  # rows appeared one by one, before the end
    assert "Cancelled after" in view.status.text()
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()
    assert progress and progress[0] == "1 / 12"
    assert [r.text for r in view.results.rows] == TEXTS[:kept]

    # Again, to the end: the final (batch-calibrated) results replace the live ones.
    progress.clear()
    classify(qtbot, view)
    assert view.results.rowCount() == len(TEXTS)
    assert view.progress.text() == "12 / 12" and progress[-1] == "12 / 12"
    assert "Done: 12 texts" in view.status.text()
    for row in view.results.rows:
        assert row.prediction.label in ("positive", "negative")
        assert sum(row.prediction.probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert row.confidence == pytest.approx(max(row.prediction.probs.values()))
    assert [r.text for r in view.results.rows] == TEXTS
    qtmodeltester.check(view.proxy)

    # The details pane shows every label's probability for the selected row.
    view.review.select_result(4)
    row = view.results.result(4)
    assert view.details_title.text().startswith("Line 5: ")
    assert view.details_text.toPlainText() == TEXTS[4]
    assert [b[0] for b in view.chart.bars()] == ["positive", "negative"]
    assert [b[1] for b in view.chart.bars()] == pytest.approx(
        [row.prediction.probs["positive"], row.prediction.probs["negative"]])
    assert "raw" in view.details_probs.text()
    view.grab()  # paints the bars delegate and the chart


def test_filter_sort_review_into_a_data_set_and_export(
        qtbot: Any, bench: Workbench, tmp_path: Path) -> None:
    view = bench.view
    pick_starter(view)
    classify(qtbot, view)
    rows = view.results.rows
    positives = [r for r in rows if r.prediction.label == "positive"]

    # Filter by label.
    view.label_filter.setCurrentIndex(view.label_filter.findData("positive"))
    assert [r.text for r in shown(view)] == [r.text for r in positives]
    assert view.shown_label.text() == f"{len(positives)} of 12 shown"
    view.label_filter.setCurrentIndex(view.label_filter.findData(""))
    assert len(shown(view)) == 12

    # Filter by minimum confidence.
    confidences = sorted(r.confidence for r in rows)
    cut = confidences[6]
    view.min_confidence.setValue(round(cut * 100))
    assert shown(view) and all(r.confidence >= round(cut * 100) / 100 for r in shown(view))
    assert len(shown(view)) < 12
    view.min_confidence.setValue(0)

    # Sort by confidence, both ways, by clicking the header.
    from slmdesk.ui.classify.table_models import CONFIDENCE_COLUMN

    header = view.table.horizontalHeader()
    x = header.sectionViewportPosition(CONFIDENCE_COLUMN) + 5
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    first = [r.confidence for r in shown(view)]
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    second = [r.confidence for r in shown(view)]
    assert first == sorted(first) and second == sorted(second, reverse=True)
    assert header.sortIndicatorSection() == CONFIDENCE_COLUMN
    view.table.sortByColumn(CONFIDENCE_COLUMN, Qt.SortOrder.DescendingOrder)
    ordered = [r.confidence for r in shown(view)]
    assert ordered == sorted(ordered, reverse=True)
    view.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # back to input order

    # Accept one row, correct another: both land in a new "labels" data set.
    view.review.select_result(0)
    view.review.accept_button.click()
    accepted = view.results.result(0)
    view.review.select_result(1)
    corrected = view.results.result(1)
    other = "negative" if corrected.prediction.label == "positive" else "positive"
    view.review.correct_box.setCurrentText(other)
    view.review.correct_button.click()
    datasets = DatasetRepository(bench.core.db)
    [ds] = datasets.all()
    assert ds.kind == "labels" and ds.name == "Reviewed labels"
    assert set(ds.labels) <= {"positive", "negative"}
    first_example, second_example = datasets.examples(ds)
    assert (first_example.text, first_example.label, first_example.model_label) == (
        TEXTS[0], accepted.prediction.label, accepted.prediction.label)
    assert first_example.model_confidence == pytest.approx(accepted.confidence)
    assert (first_example.source, first_example.labelled_by) == ("classification", "person")
    assert (second_example.text, second_example.label, second_example.model_label) == (
        TEXTS[1], other, corrected.prediction.label)
    from slmdesk.ui.classify.table_models import REVIEWED_COLUMN

    def reviewed_cell(row: int) -> str:
        return str(view.results.index(row, REVIEWED_COLUMN).data())

    assert reviewed_cell(0) == f"✓ {accepted.prediction.label}"
    assert reviewed_cell(1) == f"✎ {other}"
    assert reviewed_cell(2) == ""
    assert "Saved 1 to “Reviewed labels” (2 texts)" in view.review.note.text()
    # Saving the same row twice is refused, with a reason.
    view.review.select_result(0)
    assert view.review.accept_selected() == 0
    assert view.banner.isVisible() and "already saved" in view.banner.text()
    assert datasets.count(ds) == 2
    # A new data set made on the spot, then keyboard review: "2" = the second label.
    assert view.review.create_dataset("Second pass") is not None
    assert view.review.dataset_box.currentText() == "Second pass"
    view.review.select_result(5)
    view.activateWindow()
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus, timeout=5_000)
    qtbot.keyClick(view.table, Qt.Key.Key_2)
    second_set = datasets.get("Second pass")
    [typed] = datasets.examples(second_set)
    assert (typed.text, typed.label) == (TEXTS[5], "negative")
    assert view.results.result(6) is shown(view)[view.table.currentIndex().row()]
    # Reviewed texts come back as few-shot examples.
    assert view.saved.add_examples_from("Reviewed labels") == 2
    assert view.setup.spec().examples == (
        (TEXTS[0], accepted.prediction.label), (TEXTS[1], other))

    # Export: CSV and JSONL, written off the GUI thread, read back.
    out_csv, out_jsonl = tmp_path / "out.csv", tmp_path / "out.jsonl"
    with qtbot.waitSignal(view.exported, timeout=10_000):
        view.review.export_to(str(out_csv), "csv")
    with qtbot.waitSignal(view.exported, timeout=10_000):
        view.review.export_to(str(out_jsonl), "jsonl")
    with out_csv.open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    lines = [json.loads(line) for line in out_jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in table] == TEXTS == [r["text"] for r in lines]
    for row, from_csv, from_jsonl in zip(rows, table, lines, strict=True):
        probs = row.prediction.probs
        assert from_csv["label"] == from_jsonl["label"] == row.prediction.label
        assert float(from_csv["confidence"]) == pytest.approx(row.confidence, abs=1e-5)
        for label in ("positive", "negative"):
            assert float(from_csv[f"p_{label}"]) == pytest.approx(probs[label], abs=1e-5)
            assert from_jsonl[f"p_{label}"] == pytest.approx(probs[label], abs=1e-5)
    assert table[0]["reviewed_label"] == accepted.prediction.label
    assert lines[1]["reviewed_label"] == other and "reviewed_label" not in lines[2]
    # Only the shown rows, when asked.
    view.label_filter.setCurrentIndex(view.label_filter.findData("positive"))
    only = tmp_path / "positive.jsonl"
    with qtbot.waitSignal(view.exported, timeout=10_000):
        view.review.export_to(str(only), "jsonl", only_shown=True)
    assert [json.loads(x)["label"] for x in only.read_text().splitlines()] == [
        "positive"] * len(positives)
    # A write error is reported in the banner, not raised.
    with qtbot.waitSignal(view.error_shown, timeout=10_000) as failed:
        view.review.export_to(str(tmp_path / "missing" / "out.csv"), "csv")
    assert "Cannot write out.csv" in failed.args[0] and view.banner.isVisible()


def test_evaluate_on_a_labelled_file(qtbot: Any, bench: Workbench, tmp_path: Path) -> None:
    view = bench.view
    pick_starter(view)
    labelled = tmp_path / "gold.csv"
    with labelled.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review", "sentiment"])
        for i, (text, label) in enumerate(zip(TEXTS[:8], GOLD[:8], strict=True)):
            writer.writerow([i, text, label])
    with qtbot.waitSignal(view.evaluated, timeout=120_000) as evaluated:
        view.text_input.evaluate_file(str(labelled))
    report = evaluated.args[0]
    predicted = [p.label for p in view.results.predictions()]
    expected = evaluate(GOLD[:8], predicted, ["positive", "negative"])
    assert report.accuracy == pytest.approx(expected.accuracy)
    assert report.confusion == expected.confusion
    assert report.texts_per_s > 0
    assert view.tabs.currentIndex() == 1
    summary = view.eval_summary.text()
    assert f"Accuracy {expected.accuracy:.1%}" in summary
    assert f"macro-F1 {expected.macro_f1:.3f}" in summary
    assert "text: “review”, label: “sentiment”" in summary
    for r, label in enumerate(["positive", "negative"]):
        assert view.per_label.item(r, 0).text() == label
        assert view.per_label.item(r, 1).text() == f"{expected.per_label[label]['precision']:.3f}"
        assert view.per_label.item(r, 2).text() == f"{expected.per_label[label]['recall']:.3f}"
        assert view.per_label.item(r, 4).text() == str(int(
            expected.per_label[label]["support"]))

    # The confusion matrix is a picture: each cell painted in its colour, with its count.
    matrix = view.confusion
    assert matrix.labels == ["positive", "negative"]
    image = matrix.grab().toImage()
    colours = set()
    for r in range(2):
        for c in range(2):
            assert matrix.count(r, c) == expected.confusion[r][c]
            rect = matrix.cell_rect(r, c)
            pixel = image.pixelColor(rect.left() + 3, rect.top() + 3)
            assert pixel.rgb() == matrix.cell_colour(r, c).rgb()
            colours.add(pixel.rgb())
    assert len(colours) >= 2  # not one flat colour
    assert sum(map(sum, expected.confusion)) == 8

    # The results table shows the expected label, and can show only the mistakes.
    from slmdesk.ui.classify.table_models import EXPECTED_COLUMN

    assert not view.table.isColumnHidden(EXPECTED_COLUMN)
    view.mistakes_only.setChecked(True)
    mistakes = [r for r in view.results.rows if r.gold != r.prediction.label]
    assert [r.text for r in shown(view)] == [r.text for r in mistakes]
    view.mistakes_only.setChecked(False)

    # A label the classifier does not know is reported, and nothing runs.
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"text": "meh", "label": "neutral"}) + "\n", encoding="utf-8")
    with qtbot.waitSignal(view.error_shown, timeout=10_000) as failed:
        view.text_input.evaluate_file(str(odd))
    assert "neutral" in failed.args[0] and view.job is None
    # A file without a label column.
    nolabel = tmp_path / "nolabel.csv"
    nolabel.write_text("text,score\nhello,1\n", encoding="utf-8")
    with qtbot.waitSignal(view.error_shown, timeout=10_000) as failed:
        view.text_input.evaluate_file(str(nolabel))
    assert "no 'label' column" in failed.args[0]


def test_open_a_csv_and_pick_its_text_column(qtbot: Any, bench: Workbench,
                                             tmp_path: Path) -> None:
    view = bench.view
    pick_starter(view)
    data = tmp_path / "reviews.csv"
    with data.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review", "stars"])
        for i, text in enumerate(TEXTS[:4]):
            writer.writerow([f"r{i}", text, 5 - i])
    with qtbot.waitSignal(view.input_loaded, timeout=10_000) as loaded:
        view.text_input.open_file(str(data))
    assert loaded.args == [str(data), 4]
    columns = view.text_input.column_box
    assert [columns.itemText(i) for i in range(columns.count())] == ["id", "review", "stars"]
    assert columns.currentText() == "review"  # guessed
    assert view.text_input.file_bar.isVisible() and not view.text_input.texts.isEnabled()
    assert "4 texts from reviews.csv" in view.text_input.file_label.text()
    with qtbot.waitSignal(view.input_loaded, timeout=10_000):
        view.text_input.choose_column("id")
    assert view.file_texts == ["r0", "r1", "r2", "r3"]
    with qtbot.waitSignal(view.input_loaded, timeout=10_000):
        view.text_input.choose_column("review")
    with qtbot.waitSignal(view.run_finished, timeout=120_000):
        view.run_button.click()
    assert [r.text for r in view.results.rows] == TEXTS[:4]
    # Back to the box: the box's texts are used again.
    view.text_input.close_file()
    assert view.text_input.texts.isEnabled() and not view.text_input.file_bar.isVisible()


def test_save_load_and_delete_a_classifier(qtbot: Any, bench: Workbench) -> None:
    view = bench.view
    setup = view.setup
    setup.instructions.setPlainText("Is the review positive or negative?")
    setup.set_labels([Label("positive", "happy", ("good", "great")),
                      Label("negative", "unhappy", ("bad",))])
    setup.add_example_row("Loved it.", "positive")
    setup.add_example_row("Hated it.", "negative")
    setup.calibration.setCurrentIndex(setup.calibration.findData("batch"))
    setup.prompt_style.setCurrentIndex(setup.prompt_style.findData("completion"))
    setup.multi_label.setChecked(True)
    setup.threshold.setValue(0.4)
    setup.explain.setChecked(True)
    before = setup.spec()
    assert view.saved.save_classifier("Sentiment")
    saved = ClassifierRepository(bench.core.db).get("Sentiment")
    assert saved.model_id == bench.model.id
    assert ClassifierSpec.from_json(saved.spec) == before

    # Clear everything, then open it again from the picker (one click).
    setup.load_spec(ClassifierSpec(labels=(Label("a"), Label("b"))))
    assert setup.spec() != before
    index = view.saved.box.findData("Sentiment")
    assert index >= 0
    view.saved.box.setCurrentIndex(index)
    view.saved.box.activated.emit(index)
    assert setup.spec() == before
    assert setup.instructions.toPlainText() == "Is the review positive or negative?"
    assert setup.label_names() == ["positive", "negative"]
    assert setup.labels_table.item(0, 2).text() == "good, great"
    assert setup.examples_table.rowCount() == 2
    assert setup.calibration.currentData() == "batch" and setup.threshold.value() == 0.4
    assert setup.multi_label.isChecked() and setup.explain.isChecked()
    assert setup.threshold.isEnabled()
    assert not view.saved.model_note.isVisible()  # saved with the loaded model

    # Under another model the view says so, and offers to load the saved one.
    from slmdesk.store.models import ModelRepository

    other = ModelRepository(bench.core.db).add(
        name="Other", path="/nowhere/other.gguf", size_bytes=1, architecture="llama",
        quantization=None, parameter_count=None, context_length=None, licence=None,
        source="import")
    view.set_model(ModelChoice(other, bench.info))
    assert view.saved.model_note.isVisible()
    assert bench.model.name in view.saved.model_note.text()
    with qtbot.waitSignal(view.model_requested) as requested:
        view.saved.use_model_button.click()
    assert requested.args == [bench.model.id]
    view.set_model(ModelChoice(bench.model, bench.info))

    # Saving again under the same name replaces it; deleting removes it from the picker.
    setup.explain.setChecked(False)
    assert view.saved.save_classifier("sentiment")
    assert ClassifierRepository(bench.core.db).get("Sentiment").spec["explain"] is False
    assert view.saved.box.count() == 1
    view.saved.delete_classifier("Sentiment")
    assert view.saved.box.count() == 0
    assert ClassifierRepository(bench.core.db).find("Sentiment") is None


def test_bad_input_is_explained_in_the_banner(qtbot: Any, bench: Workbench, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    view = bench.view
    view.text_input.texts.setPlainText("hello")

    def run_error() -> str:
        view.clear_error()
        view.run()
        assert view.job is None
        assert view.banner.isVisible()
        return str(view.banner.text())

    assert "Define the labels" in run_error()
    view.setup.set_labels([Label("positive"), Label("Positive")])
    assert "defined twice" in run_error()
    view.setup.set_labels([Label("positive")])
    assert "at least two labels" in run_error()
    view.setup.set_labels([Label("positive"), Label("negative")])
    view.setup.add_label_row("", "a description but no name")
    assert "row 3 has no name" in run_error()
    view.setup.set_labels([Label("yes", verbalizers=("ok",)), Label("no", verbalizers=("ok",))])
    assert "used by both" in run_error()
    # The starter replaces labels typed before only once the person agrees.
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *_a: QMessageBox.StandardButton.Yes)
    pick_starter(view)
    assert view.setup.label_names() == ["positive", "negative"]
    view.setup.add_example_row("An example", "maybe")
    assert "Example 1 has “maybe”" in run_error()
    view.setup.examples_table.setRowCount(0)
    view.text_input.texts.setPlainText("  \n\n ")
    assert "nothing to classify" in run_error()

    # Bad files: the message names the file and the problem; the app keeps going.
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"text\n\xff\xfe\x00bad")
    with qtbot.waitSignal(view.error_shown, timeout=10_000) as failed:
        view.text_input.open_file(str(binary))
    assert "not UTF-8" in failed.args[0]
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nfine,positive\ntoo,many,fields\n", encoding="utf-8")
    with qtbot.waitSignal(view.error_shown, timeout=10_000) as failed:
        view.text_input.open_file(str(ragged))
    assert "line 3" in failed.args[0]
    with qtbot.waitSignal(view.error_shown, timeout=10_000) as failed:
        view.text_input.open_file(str(tmp_path / "model.gguf"))
    assert "unsupported file type" in failed.args[0]
    assert not view.text_input.file_bar.isVisible() and view.text_input.open_button.isEnabled()

    # No model: Run is disabled, and says why if called anyway.
    view.set_model(ModelChoice())
    assert not view.run_button.isEnabled() and not view.evaluate_button.isEnabled()
    assert "No model" in view.model_note.text()
    view.text_input.texts.setPlainText("hello")
    assert "No model is loaded" in run_error()
    view.set_model(ModelChoice(bench.model, bench.info))
    assert view.run_button.isEnabled()

    # The whole box as one text.
    view.text_input.whole_box.setChecked(True)
    view.text_input.texts.setPlainText("first line\nsecond line")
    with qtbot.waitSignal(view.run_finished, timeout=120_000):
        view.run_button.click()
    assert [r.text for r in view.results.rows] == ["first line\nsecond line"]
    assert view.results.index(0, 0).data() == "first line ⏎ second line"
