"""The training methods: prompt search with learned calibration, and a linear head.

Everything here works on features already computed by the model (``Classifier.features``):
the label log-probabilities of a prompt and the pooled hidden states. Choosing a
calibration, fitting a learned calibration or a head, and scoring them on validation then
costs milliseconds, so the search is cheap once the texts are scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slmdesk.classify.classifier import TextFeatures, calibrate, mean_distribution
from slmdesk.classify.evaluate import EvalReport, evaluate, mcnemar_exact
from slmdesk.classify.learned import LinearModel, TrainedScorer, fit_logistic
from slmdesk.classify.spec import ClassifierSpec

# L2 strengths tried for every logistic regression, chosen on validation.
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)
HEAD_FEATURES = ("hidden_last", "hidden_mean")
CALIBRATION_MODES = ("none", "contextual", "batch")


@dataclass
class Candidate:
    """One way to classify, measured on validation."""

    method: str  # "zero_shot" | "prompt" | "head"
    name: str  # what it is, for people: "prompt: default instructions, batch calibration"
    spec: ClassifierSpec
    validation: EvalReport
    # Its label for each validation text, to compare two candidates text by text.
    predictions: list[str]
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method, "name": self.name,
            "accuracy": self.validation.accuracy, "macro_f1": self.validation.macro_f1,
            **self.details,
        }


def label_probs(rows: Sequence[TextFeatures], labels: Sequence[str]) -> list[dict[str, float]]:
    """The uncalibrated label distribution of each text (from its log-probabilities)."""
    out = []
    for row in rows:
        values = [math.exp(v) for v in row.logprobs]
        total = sum(values)
        out.append({name: v / total for name, v in zip(labels, values, strict=True)})
    return out


def argmax(probs: dict[str, float]) -> str:
    return max(probs, key=lambda name: probs[name])


def calibrated_predictions(
    probs: Sequence[dict[str, float]], mode: str, content_free: dict[str, float]
) -> list[str]:
    """Labels after calibration ``mode`` ("none", "contextual", "batch")."""
    if mode == "none":
        return [argmax(p) for p in probs]
    reference = content_free if mode == "contextual" else mean_distribution(probs)
    return [argmax(calibrate(p, reference)) for p in probs]


def calibration_candidates(
    base: ClassifierSpec, prompt_name: str, validation: Sequence[TextFeatures],
    gold: Sequence[str], content_free: dict[str, float], method: str = "prompt",
) -> list[Candidate]:
    """The prompt with each fixed calibration, measured on validation."""
    labels = base.label_names
    probs = label_probs(validation, labels)
    out = []
    for mode in CALIBRATION_MODES:
        predicted = calibrated_predictions(probs, mode, content_free)
        out.append(Candidate(
            method=method, name=f"{prompt_name}, {mode} calibration",
            spec=base.with_changes(calibration=mode, method=method),
            validation=evaluate(gold, predicted, labels), details={"calibration": mode},
            predictions=predicted,
        ))
    return out


def _matrix(rows: Sequence[TextFeatures], features: str) -> np.ndarray[Any, Any]:
    """Feature rows: the label log-probabilities, after a hidden state when asked."""
    if features == "label_logprobs":
        return np.asarray([r.logprobs for r in rows], dtype=np.float64)
    return np.asarray([getattr(r, features) + r.logprobs for r in rows], dtype=np.float64)


def _fit_best(
    labels: Sequence[str], features: str, train: Sequence[TextFeatures],
    train_gold: Sequence[str], validation: Sequence[TextFeatures], gold: Sequence[str],
) -> tuple[LinearModel, EvalReport, float, list[str]]:
    """Fit one model per L2 strength; keep the best on validation macro-F1 (with its
    validation predictions)."""
    index = {name: i for i, name in enumerate(labels)}
    x_train, x_val = _matrix(train, features), _matrix(validation, features)
    y = [index[g] for g in train_gold]
    best: tuple[LinearModel, EvalReport, float, list[str]] | None = None
    for l2 in L2_GRID:
        model = fit_logistic(x_train, y, labels, l2=l2)
        probs = model.probabilities(x_val)
        predicted = [labels[int(i)] for i in probs.argmax(axis=1)]
        report = evaluate(gold, predicted, labels)
        if best is None or report.macro_f1 > best[1].macro_f1:
            best = (model, report, l2, predicted)
    assert best is not None
    return best


def learned_candidate(
    base: ClassifierSpec, prompt_name: str, train: Sequence[TextFeatures],
    train_gold: Sequence[str], validation: Sequence[TextFeatures], gold: Sequence[str],
) -> Candidate:
    """The prompt with a learned calibration (logistic regression on its log-probabilities)."""
    model, report, l2, predicted = _fit_best(
        base.label_names, "label_logprobs", train, train_gold, validation, gold)
    return Candidate(
        method="prompt", name=f"{prompt_name}, learned calibration",
        spec=base.with_changes(
            calibration="none", method="prompt",
            trained=TrainedScorer(features="label_logprobs", model=model)),
        validation=report, details={"calibration": "learned", "l2": l2}, predictions=predicted,
    )


def head_candidates(
    base: ClassifierSpec, train: Sequence[TextFeatures], train_gold: Sequence[str],
    validation: Sequence[TextFeatures], gold: Sequence[str],
) -> list[Candidate]:
    """A linear head on each pooling of the hidden state (plus the label log-probabilities)."""
    out = []
    for features in HEAD_FEATURES:
        model, report, l2, predicted = _fit_best(
            base.label_names, features, train, train_gold, validation, gold)
        pooling = "last token" if features == "hidden_last" else "mean over the text"
        out.append(Candidate(
            method="head", name=f"head on the hidden state ({pooling})",
            spec=base.with_changes(
                calibration="none", method="head",
                trained=TrainedScorer(features=features, model=model)),
            validation=report,
            details={"pooling": features.removeprefix("hidden_"), "l2": l2,
                     "n_features": model.n_features},
            predictions=predicted,
        ))
    return out


def best(candidates: Sequence[Candidate]) -> Candidate:
    """The highest validation macro-F1; ties go to the earlier (simpler) candidate."""
    top = candidates[0]
    for c in candidates[1:]:
        if c.validation.macro_f1 > top.validation.macro_f1 + 1e-12:
            top = c
    return top


# ``auto`` keeps the best head unless the best other candidate beats it on the validation
# texts by more than chance: higher macro-F1, more texts right only by it than only by the
# head, and an exact McNemar p below AUTO_SWITCH_P divided by the number of other candidates
# (Bonferroni: the best of a dozen was chosen on these same texts). Measured with
# bench/train.py (SmolLM2-135M and Gemma 3 270M; books, tweets, 20 newsgroups, R8; 13-25
# validation texts; docs/measurements/train-accuracy.md): the head had the best test accuracy
# on all 8, and choosing by validation macro-F1 alone picked a prompt three times, losing
# 0.16-0.47 test accuracy. The prompt search measures a dozen candidates on the same few
# texts, so its best validation score is largely luck; a larger set can still show a lead.
AUTO_SWITCH_P = 0.05


@dataclass(frozen=True)
class AutoChoice:
    """What ``auto`` chose, and a note when a candidate that led on validation was passed
    over (empty otherwise)."""

    chosen: Candidate
    note: str = ""


def choose_auto(candidates: Sequence[Candidate], gold: Sequence[str]) -> AutoChoice:
    """``auto``'s choice among ``candidates`` (validation labels ``gold``): see
    AUTO_SWITCH_P. Without a head, or with nothing else, the best on validation."""
    heads = [c for c in candidates if c.method == "head"]
    others = [c for c in candidates if c.method != "head"]
    if not heads or not others:
        return AutoChoice(best(candidates))
    head, other = best(heads), best(others)
    if other.validation.macro_f1 <= head.validation.macro_f1:
        return AutoChoice(head)
    test = mcnemar_exact(gold, other.predictions, head.predictions)
    only_other, only_head = int(test["only_first_right"]), int(test["only_second_right"])
    led = (f"Kept the {head.name}: {other.name} led on validation (macro-F1 "
           f"{other.validation.macro_f1:.3f} vs {head.validation.macro_f1:.3f})")
    if only_other <= only_head:
        return AutoChoice(head, f"{led}, but the head got more of the {len(gold)} texts right "
                                f"({only_head} only by the head, {only_other} only by it).")
    if test["p_value"] < AUTO_SWITCH_P / len(others):
        return AutoChoice(other)
    among = ("1 other candidate" if len(others) == 1
             else f"the best of {len(others)} other candidates")
    return AutoChoice(head, f"{led} by no more than chance on {len(gold)} texts (McNemar "
                            f"p = {test['p_value']:.2g}, {among}).")
