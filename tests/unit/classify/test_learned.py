"""Tests of slmdesk/classify/learned.py: the logistic regression and its saved form."""

from __future__ import annotations

import random

import numpy as np
import pytest

from slmdesk.classify.learned import (
    LOGPROB_FLOOR,
    LinearModel,
    TrainedScorer,
    fit_logistic,
    logprob_features,
)
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.errors import InvalidInputError


def _blobs(n: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Three well separated clusters in 5 dimensions, with an uninformative constant column."""
    rng = random.Random(seed)
    centres = [(4, 0, 0, 0), (0, 4, 0, 0), (0, 0, 4, 0)]
    rows, ys = [], []
    for i in range(n):
        y = i % 3
        rows.append([c + rng.gauss(0, 1) for c in centres[y]] + [7.0])
        ys.append(y)
    return np.asarray(rows), ys


def test_fit_separates_clusters_and_generalises() -> None:
    x, y = _blobs(150)
    model = fit_logistic(x, y, ("a", "b", "c"), l2=1e-2)
    x_test, y_test = _blobs(90, seed=1)
    predicted = model.probabilities(x_test).argmax(axis=1)
    assert (predicted == np.asarray(y_test)).mean() > 0.95
    assert np.allclose(model.probabilities(x_test).sum(axis=1), 1.0)


def test_balanced_weights_do_not_follow_the_majority() -> None:
    # 90 % of the rows are "a"; the feature carries the class. Without class weights an
    # overly regularised fit would call everything "a"; balanced weights keep "b" found.
    rng = random.Random(3)
    rows = [[rng.gauss(0, 1)] for _ in range(90)] + [[rng.gauss(2, 1)] for _ in range(10)]
    ys = [0] * 90 + [1] * 10
    model = fit_logistic(np.asarray(rows), ys, ("a", "b"), l2=1.0)
    assert model.predict([2.0])["b"] > 0.5
    assert model.predict([0.0])["a"] > 0.5


def test_linear_model_round_trips_through_json() -> None:
    x, y = _blobs(60)
    model = fit_logistic(x, y, ("a", "b", "c"))
    again = LinearModel.from_json(model.to_json())
    assert again.labels == model.labels
    # float32 storage: the probabilities agree to float32 precision.
    assert np.allclose(again.probabilities(x), model.probabilities(x), atol=1e-5)


@pytest.mark.parametrize("damage", [
    {"weights": "not base64!"},
    {"bias": ""},
    {"n_features": 0},
    {"labels": "a"},
])
def test_damaged_model_is_a_clear_error(damage: dict[str, object]) -> None:
    x, y = _blobs(30)
    data = {**fit_logistic(x, y, ("a", "b", "c")).to_json(), **damage}
    with pytest.raises(InvalidInputError):
        LinearModel.from_json(data)


def test_predict_refuses_features_of_another_size() -> None:
    x, y = _blobs(30)
    model = fit_logistic(x, y, ("a", "b", "c"))
    with pytest.raises(InvalidInputError, match="expects 5 features"):
        model.predict([1.0, 2.0])


def test_logprob_features_floor_impossible_labels() -> None:
    assert logprob_features({"a": 1.0, "b": 0.0}, ("a", "b")) == [0.0, LOGPROB_FLOOR]


def test_trained_spec_round_trips_and_checks_its_labels() -> None:
    x, y = _blobs(30)
    model = fit_logistic(x[:, :2], [v % 2 for v in y], ("yes", "no"))
    spec = ClassifierSpec(
        labels=(Label("yes"), Label("no")), method="prompt",
        trained=TrainedScorer(features="label_logprobs", model=model),
        training={"method": "prompt", "methods": {}},
    )
    data = spec.to_json()
    assert data["method"] == "prompt"
    again = ClassifierSpec.from_json(data)
    assert again.method == "prompt" and again.trained is not None
    assert again.training == {"method": "prompt", "methods": {}}
    assert again.trained.model.labels == ("yes", "no")
    with pytest.raises(InvalidInputError, match="labels do not match"):
        ClassifierSpec.from_json({**data, "labels": ["no", "yes"]})
    with pytest.raises(InvalidInputError, match="Unknown method"):
        ClassifierSpec.from_json({**data, "method": "magic"})
    with pytest.raises(InvalidInputError, match="head classifier needs"):
        ClassifierSpec.from_json({"labels": ["a", "b"], "method": "head"})


def test_plain_spec_json_says_zero_shot() -> None:
    spec = ClassifierSpec(labels=(Label("a"), Label("b")))
    assert spec.to_json()["method"] == "zero_shot"
    assert "trained" not in spec.to_json()
    assert ClassifierSpec.from_json(spec.to_json()) == spec


def _trained_spec() -> ClassifierSpec:
    x, y = _blobs(30)
    model = fit_logistic(x[:, :2], [v % 2 for v in y], ("yes", "no"))
    return ClassifierSpec(
        labels=(Label("yes"), Label("no")), instructions="Answer.", method="head",
        trained=TrainedScorer(features="label_logprobs", model=model),
        training={"method": "head"},
    )


def test_a_rebuilt_spec_keeps_the_training_while_the_prompt_is_the_same() -> None:
    trained = _trained_spec()
    rebuilt = ClassifierSpec(labels=trained.labels, instructions="Answer.",
                             calibration="batch", explain=True)
    kept = rebuilt.with_training_of(trained)
    assert kept.method == "head" and kept.trained is trained.trained
    assert kept.training == {"method": "head"} and kept.explain
    edited = ClassifierSpec(labels=trained.labels, instructions="Something else.")
    assert edited.with_training_of(trained) == edited  # a plain classifier again
    relabelled = ClassifierSpec(labels=(Label("yes"), Label("no", verbalizers=("nope",))),
                                instructions="Answer.")
    assert relabelled.with_training_of(trained).trained is None
    assert rebuilt.with_training_of(None) is rebuilt
