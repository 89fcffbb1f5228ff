"""Classifier specs: JSON round trip and validation."""

from __future__ import annotations

import pytest

from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.errors import InvalidInputError


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
