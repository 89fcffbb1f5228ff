"""Evaluation on a data set's test split: metrics against a hand-computed confusion
matrix, and the history of runs (no model: a stand-in classifier answers)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest
import sqlite_utils

from slmdesk.classify.classifier import Prediction
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.datasets.evaluation import (
    delete_eval,
    eval_examples,
    evaluate_examples,
    few_shot_overlap,
    format_evals,
    get_eval,
    list_evals,
    record_eval,
    spec_for_dataset,
)
from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.store.datasets import Dataset, DatasetRepository, NewExample

LABELS = ["spam", "ham", "promo"]
# (text, gold label, what the stand-in model answers), all in the test split
ROWS = [
    ("win money now", "spam", "spam"),
    ("free prize", "spam", "spam"),
    ("cheap pills", "spam", "promo"),
    ("lunch at noon?", "ham", "ham"),
    ("meeting notes", "ham", "ham"),
    ("see you soon", "ham", "spam"),
    ("summer sale", "promo", "promo"),
    ("new arrivals", "promo", "ham"),
]


class StandIn:
    """Answers from a table, like ``Classifier.classify_many`` does."""

    def __init__(self, spec: ClassifierSpec, answers: dict[str, str | None],
                 stop_after: int | None = None) -> None:
        self.spec = spec
        self.answers = answers
        self.stop_after = stop_after

    def classify_many(
        self, texts: Sequence[str], *, cancel: threading.Event | None = None,
        on_result: Callable[[int, Prediction], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        out = []
        for i, text in enumerate(texts):
            if self.stop_after is not None and i >= self.stop_after:
                break
            label = self.answers[text]
            pred = Prediction(text=text, label=label, labels=(label,) if label else (),
                              probs={label: 0.9} if label else {}, raw_probs={},
                              calibration="none")
            out.append(pred)
            if on_result:
                on_result(i, pred)
            if on_progress:
                on_progress(i + 1, len(texts))
        return out




@pytest.fixture
def dataset(db: sqlite_utils.Database) -> Dataset:
    repo = DatasetRepository(db)
    ds = repo.create("Mail", kind="labels", labels=LABELS)
    repo.add_examples(ds, [NewExample(text=t, label=g, split="test") for t, g, _p in ROWS])
    repo.add_examples(ds, [NewExample(text="train only", label="ham", split="train"),
                           NewExample(text="unlabelled test", label=None, split="test")])
    return repo.get("Mail")


def test_metrics_match_a_hand_computed_confusion_matrix(
    db: sqlite_utils.Database, dataset: Dataset
) -> None:
    spec = spec_for_dataset(dataset)
    assert spec.label_names == tuple(LABELS)
    examples = eval_examples(db, dataset)  # the test split's labelled examples
    assert [e.text for e in examples] == [t for t, _g, _p in ROWS]
    progress: list[tuple[int, int]] = []
    report = evaluate_examples(StandIn(spec, {t: p for t, _g, p in ROWS}), examples,
                               on_progress=lambda d, n: progress.append((d, n)))
    assert report is not None
    assert progress[-1] == (8, 8)
    # rows: gold spam, ham, promo; columns: predicted spam, ham, promo (counted by hand)
    assert report.confusion == [[2, 0, 1],
                                [1, 2, 0],
                                [0, 1, 1]]
    assert report.n == 8
    assert report.accuracy == pytest.approx(5 / 8)
    # spam: tp 2, predicted 3, gold 3 -> p 2/3, r 2/3, f1 2/3
    # ham: tp 2, predicted 3, gold 3 -> p 2/3, r 2/3, f1 2/3
    # promo: tp 1, predicted 2, gold 2 -> p 1/2, r 1/2, f1 1/2
    expected = {"spam": (2 / 3, 2 / 3, 2 / 3, 3), "ham": (2 / 3, 2 / 3, 2 / 3, 3),
                "promo": (1 / 2, 1 / 2, 1 / 2, 2)}
    for label, (p, r, f1, support) in expected.items():
        m = report.per_label[label]
        assert (m["precision"], m["recall"], m["f1"], m["support"]) == pytest.approx(
            (p, r, f1, support))
    assert report.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)


def test_runs_are_kept_and_listed_newest_first(
    db: sqlite_utils.Database, dataset: Dataset
) -> None:
    spec = spec_for_dataset(dataset)
    examples = eval_examples(db, dataset)
    good = evaluate_examples(StandIn(spec, {t: g for t, g, _p in ROWS}), examples)
    bad = evaluate_examples(StandIn(spec, {t: p for t, _g, p in ROWS}), examples)
    assert good is not None and bad is not None
    first = record_eval(db, dataset, model_name="Big", classifier_spec=spec, report=good,
                        split="test", extra={"calibration": "batch", "accuracy": -1})
    second = record_eval(db, dataset, model_name="Small", classifier_spec=spec.to_json(),
                         report=bad, split="test", classifier_name="mail-v2",
                         model_id="not-a-registered-model")
    assert [r.id for r in list_evals(db, dataset)] == [second.id, first.id]
    assert (first.accuracy, first.macro_f1, first.n) == (1.0, 1.0, 8)
    assert first.report["calibration"] == "batch"
    assert first.report["accuracy"] == 1.0  # extra never replaces the report's own keys
    assert first.spec == spec.to_json() == second.spec
    assert (second.classifier_name, second.model_id) == ("mail-v2", None)
    assert second.eval_report().confusion == bad.confusion
    assert second.eval_report().per_label == bad.per_label
    assert get_eval(db, first.id) == first
    table = format_evals(list_evals(db, dataset))
    assert "Small" in table and "Big" in table and "0.625" in table
    assert "F1 per label" in table and "promo" in table
    delete_eval(db, first.id)
    with pytest.raises(NotFoundError):
        get_eval(db, first.id)
    DatasetRepository(db).delete_dataset(dataset)
    assert db["eval_runs"].count == 0


def test_cancelled_evaluation_returns_none(db: sqlite_utils.Database, dataset: Dataset
                                           ) -> None:
    spec = spec_for_dataset(dataset)
    stand_in = StandIn(spec, {t: g for t, g, _p in ROWS}, stop_after=3)
    assert evaluate_examples(stand_in, eval_examples(db, dataset)) is None


def test_evaluation_errors(db: sqlite_utils.Database, dataset: Dataset) -> None:
    repo = DatasetRepository(db)
    with pytest.raises(InvalidInputError, match="validation split"):
        eval_examples(db, dataset, "validation")
    assert len(eval_examples(db, dataset, "all")) == 9
    with pytest.raises(InvalidInputError, match="Unknown split"):
        eval_examples(db, dataset, "dev")
    fresh = repo.create("Fresh", kind="labels", labels=["a", "b"])
    repo.add_labelled_text(fresh, "x", "a", source="typed")
    with pytest.raises(InvalidInputError, match="Assign splits first"):
        eval_examples(db, fresh)
    with pytest.raises(InvalidInputError, match="at least two"):
        spec_for_dataset(repo.create("One", kind="labels", labels=["a"]))
    with pytest.raises(InvalidInputError, match="chat"):
        spec_for_dataset(repo.create("Chat", kind="chat"))
    narrow = ClassifierSpec(labels=(Label("spam"), Label("ham")),
                            examples=(("free prize", "spam"),))
    with pytest.raises(InvalidInputError, match="'promo' of the data set"):
        evaluate_examples(StandIn(narrow, {}), eval_examples(db, dataset))
    assert few_shot_overlap(narrow, eval_examples(db, dataset)) == 1
    with pytest.raises(InvalidInputError, match="Unknown split"):
        record_eval(db, dataset, model_name="m", classifier_spec={},
                    report=evaluate_examples(StandIn(narrow, {}), []) or _never(),
                    split="dev")


def _never():  # type: ignore[no-untyped-def]
    raise AssertionError("an empty evaluation is a report, not None")
