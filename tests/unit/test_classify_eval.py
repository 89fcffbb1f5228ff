"""Classifier specs, calibration arithmetic and evaluation metrics (no model)."""

from __future__ import annotations

import math

import pytest

from slmdesk.classify.classifier import (
    Prediction,
    batch_calibrate,
    calibrate,
    mean_distribution,
)
from slmdesk.classify.evaluate import EvalReport, evaluate, format_report, mcnemar_exact
from slmdesk.classify.spec import ClassifierSpec, Label
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


# -- calibration ------------------------------------------------------------------------


def test_batch_calibration_divides_out_the_mean_distribution() -> None:
    rows = [
        {"a": 0.9, "b": 0.1},
        {"a": 0.6, "b": 0.4},
        {"a": 0.3, "b": 0.7},
    ]
    assert mean_distribution(rows) == pytest.approx({"a": 0.6, "b": 0.4})
    out = batch_calibrate(rows)
    # (0.9/0.6, 0.1/0.4) = (1.5, 0.25) -> (6/7, 1/7)
    assert out[0] == pytest.approx({"a": 6 / 7, "b": 1 / 7})
    # the row equal to the mean becomes uniform
    assert out[1] == pytest.approx({"a": 0.5, "b": 0.5})
    # (0.3/0.6, 0.7/0.4) = (0.5, 1.75) -> (2/9, 7/9)
    assert out[2] == pytest.approx({"a": 2 / 9, "b": 7 / 9})
    for row in out:
        assert sum(row.values()) == pytest.approx(1.0)


def test_batch_calibration_removes_a_constant_bias() -> None:
    # A model that likes "a" twice as much whatever the text prefers "a" every time;
    # after batch calibration the text that leans to "b" gets "b".
    truth = [{"a": 0.5, "b": 0.5}, {"a": 0.4, "b": 0.6}, {"a": 0.7, "b": 0.3}]
    biased = [
        {"a": 2 * r["a"] / (2 * r["a"] + r["b"]), "b": r["b"] / (2 * r["a"] + r["b"])}
        for r in truth
    ]
    assert all(r["a"] > r["b"] for r in biased)
    out = batch_calibrate(biased)
    assert out[1]["b"] > out[1]["a"]
    assert out[2]["a"] > out[2]["b"]


def test_contextual_calibration_divides_by_the_content_free_prediction() -> None:
    out = calibrate({"a": 0.7, "b": 0.3}, {"a": 0.8, "b": 0.2})
    # (0.7/0.8, 0.3/0.2) = (0.875, 1.5)
    assert out == pytest.approx({"a": 0.875 / 2.375, "b": 1.5 / 2.375})
    assert calibrate({"a": 0.7, "b": 0.3}, {"a": 0.5, "b": 0.5}) == pytest.approx(
        {"a": 0.7, "b": 0.3}
    )


def test_multi_label_calibration_is_per_label_yes_no() -> None:
    out = calibrate({"x": 0.6, "y": 0.2}, {"x": 0.6, "y": 0.1}, multi_label=True)
    assert out["x"] == pytest.approx(0.5)
    # yes 0.2/0.1 = 2, no 0.8/0.9 -> 2 / (2 + 8/9)
    assert out["y"] == pytest.approx(2 / (2 + 0.8 / 0.9))
    rows = [{"x": 0.2}, {"x": 0.4}]
    cal = batch_calibrate(rows, multi_label=True)
    # mean 0.3: 0.2 -> (0.2/0.3) / (0.2/0.3 + 0.8/0.7)
    assert cal[0]["x"] == pytest.approx((2 / 3) / (2 / 3 + 0.8 / 0.7))
    assert cal[1]["x"] > 0.5 > cal[0]["x"]


def test_calibration_survives_tiny_probabilities() -> None:
    out = calibrate({"a": 1e-320, "b": 1.0}, {"a": 0.0, "b": 1.0})
    assert all(math.isfinite(v) for v in out.values())
    assert sum(out.values()) == pytest.approx(1.0)


# -- specs and predictions ------------------------------------------------------------------


def _spec(**kw: object) -> ClassifierSpec:
    base: dict[str, object] = {
        "labels": (Label("positive", "good things", ("positive", "great")), Label("negative")),
        "instructions": "Sentiment.",
        "examples": (("Nice!", "positive"), ("Bad.", "negative")),
        "calibration": "batch",
        "threshold": 0.4,
        "prompt_style": "completion",
        "explain": True,
    }
    base.update(kw)
    return ClassifierSpec(**base)  # type: ignore[arg-type]


def test_spec_json_round_trip() -> None:
    spec = _spec()
    data = spec.to_json()
    assert data["labels"][0] == {
        "name": "positive", "description": "good things", "verbalizers": ["positive", "great"]
    }
    assert data["examples"][0] == {"text": "Nice!", "label": "positive"}
    assert ClassifierSpec.from_json(data) == spec
    assert spec.label_names == ("positive", "negative")
    assert spec.labels[1].words == ("negative",)


def test_spec_from_json_accepts_plain_label_names() -> None:
    spec = ClassifierSpec.from_json({"labels": ["a", "b"], "examples": [["x", "a"]]})
    assert spec.label_names == ("a", "b")
    assert spec.examples == (("x", "a"),)
    assert spec.calibration == "auto"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"labels": ["a"]}, "at least two labels"),
        ({"labels": [], "multi_label": True}, "at least one label"),
        ({"labels": ["a", "a"]}, "given twice"),
        ({"labels": ["a", "A"]}, "given twice"),
        ({"labels": ["a", " "]}, "empty"),
        ({"labels": ["a", "b"], "examples": [{"text": "t", "label": "c"}]}, "labelled 'c'"),
        ({"labels": ["a", "b"], "calibration": "magic"}, "Unknown calibration"),
        ({"labels": ["a", "b"], "prompt_style": "poem"}, "Unknown prompt style"),
        ({"labels": ["a", "b"], "threshold": 1.5}, "between 0 and 1"),
        ({"labels": ["a", "b"], "threshold": "x"}, "must be a number"),
        ({"labels": "a,b"}, "list of labels"),
        ([1, 2], "JSON object"),
        (
            {"labels": [{"name": "a", "verbalizers": ["yes"]},
                        {"name": "b", "verbalizers": ["yes"]}]},
            "used by both",
        ),
    ],
)
def test_spec_validation_errors(data: object, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        ClassifierSpec.from_json(data)


def test_single_label_multi_label_spec_is_fine() -> None:
    spec = ClassifierSpec.from_json({"labels": ["urgent"], "multi_label": True})
    assert spec.multi_label and spec.label_names == ("urgent",)


def test_prediction_json_and_confidence() -> None:
    pred = Prediction(
        text="t", label="a", labels=("a",), probs={"a": 0.75, "b": 0.25},
        raw_probs={"a": 0.6, "b": 0.4}, calibration="contextual",
    )
    assert pred.confidence == 0.75
    data = pred.to_json()
    assert data == {
        "text": "t", "label": "a", "labels": ["a"], "scores": {"a": 0.75, "b": 0.25},
        "raw_scores": {"a": 0.6, "b": 0.4}, "calibration": "contextual", "truncated": False,
        "notes": [], "explanation": None, "error": None,
    }
    empty = Prediction("", None, (), {}, {}, "none", error="The text is empty.")
    assert empty.confidence == 0.0


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
