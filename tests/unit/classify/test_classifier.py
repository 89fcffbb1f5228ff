"""The classifier's calibration arithmetic and its predictions (no model)."""

from __future__ import annotations

import math

import pytest

from slmdesk.classify.classifier import (
    Prediction,
    batch_calibrate,
    calibrate,
    mean_distribution,
)


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
