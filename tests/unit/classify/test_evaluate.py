"""Evaluation metrics: confusion matrix, accuracy, macro-F1, the report (no model)."""

from __future__ import annotations

import math

import pytest

from slmdesk.classify.evaluate import EvalReport, evaluate, format_report, mcnemar_exact
from slmdesk.errors import InvalidInputError

# -- evaluation ---------------------------------------------------------------------------

LABELS = ["cat", "dog", "bird"]
GOLD = ["cat", "cat", "cat", "cat", "dog", "dog", "dog", "bird", "bird", "bird"]
PRED = ["cat", "cat", "dog", "bird", "dog", "dog", "cat", "bird", "dog", "bird"]


def test_confusion_matrix_and_metrics_equal_a_hand_computation() -> None:
    report = evaluate(GOLD, PRED, LABELS)
    # rows gold, columns predicted (cat, dog, bird), counted by hand from GOLD/PRED
    assert report.confusion == [
        [2, 1, 1],
        [1, 2, 0],
        [0, 1, 2],
    ]
    assert report.labels == LABELS
    assert report.n == 10
    assert report.accuracy == pytest.approx(6 / 10)
    # cat: tp 2, predicted 3, support 4 -> p 2/3, r 1/2, f1 4/7
    # dog: tp 2, predicted 4, support 3 -> p 1/2, r 2/3, f1 4/7
    # bird: tp 2, predicted 3, support 3 -> p 2/3, r 2/3, f1 2/3
    expected = {
        "cat": (2 / 3, 1 / 2, 4 / 7, 4),
        "dog": (1 / 2, 2 / 3, 4 / 7, 3),
        "bird": (2 / 3, 2 / 3, 2 / 3, 3),
    }
    for name, (p, r, f1, support) in expected.items():
        got = report.per_label[name]
        assert got["precision"] == pytest.approx(p)
        assert got["recall"] == pytest.approx(r)
        assert got["f1"] == pytest.approx(f1)
        assert got["support"] == support
    assert report.macro_f1 == pytest.approx((4 / 7 + 4 / 7 + 2 / 3) / 3)


def test_missing_predictions_count_as_wrong_but_fill_no_cell() -> None:
    report = evaluate(["a", "a", "b"], ["a", None, "b"], ["a", "b"])
    assert report.confusion == [[1, 0], [0, 1]]
    assert evaluate(["a", "a", "b"], ["a", "", "b"], ["a", "b"]) == report
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.per_label["a"]["recall"] == pytest.approx(1 / 2)
    assert report.per_label["a"]["precision"] == pytest.approx(1.0)


def test_a_listed_label_that_never_occurs_does_not_lower_macro_f1() -> None:
    report = evaluate(["a", "b"], ["a", "b"], ["a", "b", "c"])
    assert report.per_label["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0.0}
    assert report.macro_f1 == pytest.approx(1.0)
    assert report.confusion == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_a_label_predicted_but_never_gold_counts_in_macro_f1() -> None:
    report = evaluate(["a", "a"], ["a", "b"], ["a", "b"])
    assert report.per_label["b"]["f1"] == 0.0
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.0) / 2)


def test_unknown_labels_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="gold label 'x'"):
        evaluate(["x"], ["a"], ["a", "b"])
    with pytest.raises(InvalidInputError, match="predicted label 'x'"):
        evaluate(["a"], ["x"], ["a", "b"])
    with pytest.raises(ValueError):
        evaluate(["a"], [], ["a", "b"])


def test_report_json_and_text() -> None:
    report = evaluate(GOLD, PRED, LABELS)
    report.seconds, report.texts_per_s = 2.0, 5.0
    data = report.to_json()
    assert set(data) == {
        "accuracy", "macro_f1", "per_label", "confusion", "labels", "n", "seconds",
        "texts_per_s",
    }
    assert data["confusion"][0] == [2, 1, 1]
    text = format_report(report)
    assert "accuracy 0.600" in text
    assert "bird" in text and "rows: gold" in text
    assert isinstance(report, EvalReport)


def test_mcnemar_exact_equals_the_binomial_tail() -> None:
    # 10 texts only the first gets right, 2 only the second: discordant n = 12,
    # p = 2 · P(X ≤ 2 | Binomial(12, 1/2)) = 2 · (1 + 12 + 66) / 4096.
    gold = ["a"] * 20
    first = ["a"] * 10 + ["b"] * 2 + ["a"] * 5 + ["b"] * 3
    second = ["b"] * 10 + ["a"] * 2 + ["a"] * 5 + ["b"] * 3
    result = mcnemar_exact(gold, first, second)
    assert result["only_first_right"] == 10 and result["only_second_right"] == 2
    assert math.isclose(result["p_value"], 2 * 79 / 4096)
    # Symmetric in the two classifiers.
    assert math.isclose(mcnemar_exact(gold, second, first)["p_value"], 2 * 79 / 4096)


def test_mcnemar_exact_without_disagreement_or_when_balanced_is_one() -> None:
    gold = ["a", "b", "a", "b"]
    assert mcnemar_exact(gold, gold, gold)["p_value"] == 1.0
    first = ["a", "a", "a", "a"]  # right on 0 and 2
    second = ["b", "b", "b", "b"]  # right on 1 and 3
    assert mcnemar_exact(gold, first, second)["p_value"] == 1.0
    assert mcnemar_exact(gold, [None] * 4, gold)["only_second_right"] == 4
    with pytest.raises(ValueError):
        mcnemar_exact(gold, gold, gold[:3])
