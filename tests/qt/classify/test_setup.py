"""Tests of slmdesk/ui/classify/setup.py without a model: a trained classifier's training
survives the setup panel while its prompt is unchanged."""

from __future__ import annotations

from typing import Any

from slmdesk.classify.learned import TrainedScorer, fit_logistic
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.ui.classify.setup import SetupPanel


def test_a_trained_classifier_keeps_its_training_until_its_prompt_changes(qtbot: Any) -> None:
    model = fit_logistic([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.2]], [0, 1, 0, 1],
                         ("zorp", "blick"))
    trained = ClassifierSpec(
        labels=(Label("zorp"), Label("blick")), calibration="none", method="prompt",
        trained=TrainedScorer(features="label_logprobs", model=model),
        training={"method": "prompt"},
    )
    panel = SetupPanel()
    qtbot.addWidget(panel)
    panel.load_spec(trained)
    again = panel.spec()
    assert again.method == "prompt" and again.trained is not None
    assert again.to_json() == trained.to_json()
    panel.instructions.setPlainText("Which is it?")
    assert panel.spec().method == "zero_shot" and panel.spec().trained is None
