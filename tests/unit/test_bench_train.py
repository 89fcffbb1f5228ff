"""The training benchmark's pure helpers: cutting a task to a few classes, transformers'
label rows, seconds per epoch, accuracy and the command line (no model, no timing)."""

from __future__ import annotations

import pytest

from bench import data
from bench.train import (
    IGNORED,
    accuracy,
    bare_labels,
    keep_classes,
    parse_args,
    seconds_per_epoch_per_1k,
)

TASK = data.Task(
    name="toy", labels=("a", "b", "c", "d"),
    train=[("t1", "a"), ("t2", "b"), ("t3", "c"), ("t4", "a")],
    test=[("u1", "a"), ("u2", "d"), ("u3", "c"), ("u4", "b")],
)


def test_keep_classes_keeps_the_first_classes_with_train_texts() -> None:
    cut = keep_classes(TASK, 2)
    assert cut.labels == ("a", "b")
    assert cut.train == [("t1", "a"), ("t2", "b"), ("t4", "a")]
    assert cut.test == [("u1", "a"), ("u4", "b")]
    assert keep_classes(TASK, None) is TASK
    assert keep_classes(TASK, 3).labels == ("a", "b", "c")  # "d" has no train text
    assert keep_classes(TASK, 9).labels == ("a", "b", "c")
    assert keep_classes(keep_classes(TASK, 3), 3).labels == ("a", "b", "c")
    with pytest.raises(ValueError):
        keep_classes(TASK, 1)


def test_bare_labels_mask_the_prompt_and_the_first_token() -> None:
    assert bare_labels([5, 6, 7, 8], [False, False, True, True]) == [IGNORED, IGNORED, 7, 8]
    assert bare_labels([5, 6], [True, True]) == [IGNORED, 6]
    assert bare_labels([], []) == []


def test_seconds_per_epoch_per_1k_scales_a_step_to_1000_examples() -> None:
    assert seconds_per_epoch_per_1k(2.0, 8) == 250.0


def test_accuracy() -> None:
    assert accuracy(["a", "b", "a"], ["a", "a", "a"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy([], [])


def test_parse_args_splits_lists_and_keeps_quick_defaults() -> None:
    args = parse_args(["--tasks", "books, r8", "--lora-steps", "3"])
    assert args.tasks == ["books", "r8"]
    assert args.models == ["smollm2", "gemma"] and args.classes == 4
    assert args.lora_steps == 3 and args.threads == 1
    assert args.lora_epochs == 1.0


def test_stage_seconds_runs_each_stage_to_the_next_and_adds_repeats() -> None:
    from bench.train_auto import stage_seconds

    events = [
        {"event": "stage", "stage": "loading", "t": 0.0},
        {"event": "stage", "stage": "zero_shot", "t": 2.0},
        {"event": "progress", "t": 3.0},
        {"event": "stage", "stage": "testing", "t": 5.0},
        {"event": "stage", "stage": "zero_shot", "t": 6.5},
        {"event": "report", "t": 7.0},
    ]
    assert stage_seconds(events) == {"loading": 2.0, "zero_shot": 3.5, "testing": 1.5}
    assert stage_seconds([]) == {}


def test_per_1000_scales_only_the_stages_that_grow_with_the_texts() -> None:
    from bench.train_auto import per_1000

    # 250 texts: zero_shot 10 s and lora 20 s grow 4x; the other 5 s (loading) stay.
    assert per_1000({"loading": 5.0, "zero_shot": 10.0, "lora": 20.0}, 35.0, 250) == 125.0


def test_method_rows_scores_the_best_of_each_method_and_reuses_autos_predictions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import slmdesk.classify.classifier as classifier_module
    from bench.train import _method_rows

    def candidate(method: str, name: str, f1: float) -> SimpleNamespace:
        return SimpleNamespace(method=method, name=name, spec=name,
                               validation=SimpleNamespace(macro_f1=f1))

    test = [("t1", "a"), ("t2", "b"), ("t3", "a"), ("t4", "b")]
    report = SimpleNamespace(chosen="head last", candidates=[
        candidate("zero_shot", "zero", 0.4), candidate("prompt", "prompt batch", 0.6),
        candidate("head", "head last", 0.9), candidate("head", "head mean", 0.8)])
    fit = SimpleNamespace(report=report, test_predictions=["a", "b", "a", "b"],
                          baseline_predictions=["a", "a", "a", "a"])
    classified: list[str] = []

    class FakeClassifier:
        def __init__(self, engine: object, spec: str) -> None:
            classified.append(spec)

        def classify_many(self, texts: list[str]) -> list[SimpleNamespace]:
            return [SimpleNamespace(label="b") for _ in texts]

    monkeypatch.setattr(classifier_module, "Classifier", FakeClassifier)
    row = _method_rows(object(), fit, test, ("a", "b"))
    assert classified == ["prompt batch"]  # the head auto chose is not classified again
    assert row["zero_shot"]["accuracy"] == 0.5
    assert row["auto"] == {"accuracy": 1.0, "macro_f1": 1.0, "chosen": "head last"}
    assert row["head"]["chosen"] == "head last" and row["head"]["accuracy"] == 1.0
    assert row["prompt"]["chosen"] == "prompt batch" and row["prompt"]["accuracy"] == 0.5
    assert row["prompt"]["validation_macro_f1"] == 0.6
