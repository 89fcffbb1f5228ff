"""Classification through a remote engine: the local classifier with remote label scores."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from slmdesk.classify.classifier import Classifier, Prediction
from slmdesk.classify.spec import ClassifierSpec
from slmdesk.engine.remote.client import RemoteEngine
from slmdesk.engine.remote.scoring import DEFAULT_TOP_N, RemoteScorer
from slmdesk.errors import UnsupportedFeatureError


def classify_refusal(engine: RemoteEngine) -> str | None:
    """Why ``engine`` cannot classify, as its last check found it (the label scores need
    tokenization and token log-probabilities); None when it can, or when it was not checked
    yet (then a run finds out). Sends nothing."""
    if engine.known_capabilities is None:
        return None
    try:
        RemoteScorer(engine)
    except UnsupportedFeatureError as exc:
        return exc.message
    return None


class RemoteClassifier:
    """A ``Classifier`` whose label log-probabilities come from ``engine``.

    ``method`` is "prompt-logprobs" (echo, vLLM) or "top-n" (llama-server's n_probs); None
    picks the exact one when the engine has it. ``concurrency`` is how many requests run at
    once against the engine (the positions and labels of one text).
    """

    def __init__(self, engine: RemoteEngine, spec: ClassifierSpec, *, method: str | None = None,
                 concurrency: int = 4, top_n: int = DEFAULT_TOP_N) -> None:
        self.engine = engine
        self.scorer = RemoteScorer(engine, method=method, top_n=top_n, concurrency=concurrency)
        self.classifier = Classifier(self.scorer, spec)

    @property
    def method(self) -> str:
        return self.scorer.method

    def result_json(self, pred: Prediction) -> dict[str, Any]:
        """A prediction as JSON, saying which engine, model and scoring method gave it."""
        return {**pred.to_json(), "method": self.method, "engine": self.engine.base_url,
                "model": self.engine.model}

    def calibration_for(self, n: int) -> str:
        return self.classifier.calibration_for(n)

    def classify(self, text: str, *, cancel: threading.Event | None = None) -> Prediction:
        return self.classifier.classify(text, cancel=cancel)

    def classify_many(
        self, texts: Sequence[str], *, cancel: threading.Event | None = None,
        on_result: Callable[[int, Prediction], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """As ``Classifier.classify_many``: in order, with progress; cancel keeps what is done."""
        return self.classifier.classify_many(texts, cancel=cancel, on_result=on_result,
                                             on_progress=on_progress)
