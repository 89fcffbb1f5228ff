"""Train a classifier on a labelled data set and save it by name (``train_classifier``).

The run: check the data set and split it (before any model time is spent); score the
train, validation and test texts with the default zero-shot prompt, keeping the label
log-probabilities and the hidden states; build every candidate of the methods asked for
(``methods.py``) and measure it on validation; take the best by macro-F1 (``auto``: the
head unless another candidate beats it by more than chance, ``methods.choose_auto``);
classify the test split with the chosen classifier and with the zero-shot one, and compare
them with McNemar's exact test; only then save the classifier (a cancelled run saves
nothing).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from slmdesk.classify.classifier import Classifier, TextFeatures
from slmdesk.classify.evaluate import EvalReport, evaluate, mcnemar_exact
from slmdesk.classify.learned import logprob_features
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.engine.llama_engine import Cancelled, LlamaEngine
from slmdesk.errors import InvalidInputError, ModelNotLoadedError
from slmdesk.store.classifiers import ClassifierRepository
from slmdesk.store.datasets import DatasetRepository
from slmdesk.training import methods
from slmdesk.training.data import Example, TrainingData, load_training_data
from slmdesk.training.methods import Candidate

METHODS = ("auto", "prompt", "head")
MAX_FIT_EXAMPLES = 1000  # train texts scored for fitting; more adds time, little accuracy
MAX_VALIDATION = 500  # validation texts scored for choosing (stratified sample beyond that)
FEW_SHOT_MAX_CHARS = 300
SAMPLE_SEED = 0

# progress(stage, done, total): stage is "train", "validation", "test" or "search".
ProgressCallback = Callable[[str, int, int], None]


class TrainingMethodError(InvalidInputError):
    """The training method asked for does not exist or cannot run here."""


@dataclass
class TrainReport:
    """What a training run did and measured."""

    name: str
    dataset: str
    model: str
    method: str  # the chosen method: "zero_shot" | "prompt" | "head"
    chosen: str  # the chosen candidate, in words
    candidates: list[Candidate]
    test: EvalReport  # the chosen classifier on the test split
    baseline_test: EvalReport  # the zero-shot classifier on the same texts
    mcnemar: dict[str, float]  # chosen vs zero-shot on test
    counts: dict[str, int]  # texts per split (train: those scored for fitting)
    split_made: bool
    seconds: float
    notes: list[str] = field(default_factory=list)

    def methods_json(self) -> dict[str, Any]:
        """The best validation metrics of each method tried, and every candidate."""
        out: dict[str, Any] = {}
        for c in self.candidates:
            best = out.get(c.method)
            if best is None or c.validation.macro_f1 > best["macro_f1"]:
                out[c.method] = c.to_json()
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "dataset": self.dataset, "model": self.model,
            "method": self.method, "chosen": self.chosen,
            "methods": self.methods_json(),
            "candidates": [c.to_json() for c in self.candidates],
            "test": self.test.to_json(), "zero_shot_test": self.baseline_test.to_json(),
            "mcnemar": dict(self.mcnemar), "counts": dict(self.counts),
            "split_made": self.split_made, "seconds": self.seconds, "notes": list(self.notes),
        }

    def spec_record(self) -> dict[str, Any]:
        """What the saved classifier keeps of this run (its ``training`` entry)."""
        return {
            "dataset": self.dataset, "model": self.model, "method": self.method,
            "chosen": self.chosen, "methods": self.methods_json(),
            "test": {"accuracy": self.test.accuracy, "macro_f1": self.test.macro_f1,
                     "n": self.test.n},
            "zero_shot_test": {"accuracy": self.baseline_test.accuracy,
                               "macro_f1": self.baseline_test.macro_f1},
            "mcnemar_p": self.mcnemar["p_value"], "counts": dict(self.counts),
        }


def sample_for_fit(examples: Sequence[Example], limit: int, seed: int = SAMPLE_SEED
                   ) -> list[Example]:
    """At most ``limit`` examples, stratified by label (proportional, at least one each)."""
    if len(examples) <= limit:
        return list(examples)
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = {}
    for e in examples:
        groups.setdefault(e[1], []).append(e)
    out: list[Example] = []
    for group in groups.values():
        share = max(1, round(limit * len(group) / len(examples)))
        out += rng.sample(group, min(share, len(group)))
    rng.shuffle(out)
    return out[:limit] if len(out) > limit else out


def few_shot_examples(train: Sequence[Example], labels: Sequence[str]
                      ) -> tuple[tuple[str, str], ...]:
    """One short train text per label, for the few-shot prompt candidate."""
    out = []
    for label in labels:
        texts = sorted((t for t, g in train if g == label), key=len)
        out.append((texts[0][:FEW_SHOT_MAX_CHARS], label))
    return tuple(out)


class _Run:
    """One training run's state: the engine, the data, the clock, progress and cancel."""

    def __init__(self, engine: LlamaEngine, data: TrainingData, *, max_minutes: float,
                 progress: ProgressCallback | None, cancel: threading.Event) -> None:
        self.engine = engine
        self.data = data
        self.started = time.perf_counter()
        self.deadline = self.started + max_minutes * 60.0
        self.progress = progress
        self.cancel = cancel
        self.notes: list[str] = []

    def over_half_budget(self) -> bool:
        return time.perf_counter() > self.started + (self.deadline - self.started) / 2

    def features(self, spec: ClassifierSpec, examples: Sequence[Example], stage: str
                 ) -> list[TextFeatures]:
        clf = Classifier(self.engine, spec)
        out = []
        for i, (text, _label) in enumerate(examples):
            if self.cancel.is_set():
                raise Cancelled
            out.append(clf.features(text, self.cancel))
            if self.progress is not None:
                self.progress(stage, i + 1, len(examples))
        return out

    def predict(self, spec: ClassifierSpec, examples: Sequence[Example], stage: str
                ) -> list[str | None]:
        clf = Classifier(self.engine, spec)

        def report(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(stage, done, total)

        preds = clf.classify_many([t for t, _ in examples], cancel=self.cancel,
                                  on_progress=report)
        if len(preds) < len(examples):
            raise Cancelled
        return [p.label for p in preds]


def _search(run: _Run, base: ClassifierSpec, method: str, train: Sequence[Example],
            description: str) -> list[Candidate]:
    """Every candidate of the methods asked for, measured on validation."""
    data = run.data
    gold = [g for _, g in data.validation]
    train_gold = [g for _, g in train]
    train_rows = run.features(base, train, "train")
    val_rows = run.features(base, data.validation, "validation")
    content_free = Classifier(run.engine, base).content_free_prediction(run.cancel)
    zero = base.with_changes(calibration="auto")
    auto_mode = Classifier(run.engine, zero).calibration_for(len(data.validation))
    zero_predicted = methods.calibrated_predictions(
        methods.label_probs(val_rows, base.label_names), auto_mode, content_free)
    candidates = [Candidate(
        method="zero_shot", name=f"zero-shot, {auto_mode} calibration", spec=zero,
        validation=evaluate(gold, zero_predicted, base.label_names),
        details={"calibration": auto_mode}, predictions=zero_predicted,
    )]
    if method in ("auto", "prompt"):
        candidates += methods.calibration_candidates(
            base, "default instructions", val_rows, gold, content_free)
        candidates.append(methods.learned_candidate(
            base, "default instructions", train_rows, train_gold, val_rows, gold))
        candidates += _other_prompts(run, base, train, description, gold)
    if method in ("auto", "head"):
        candidates += methods.head_candidates(base, train_rows, train_gold, val_rows, gold)
    return candidates


def _other_prompts(run: _Run, base: ClassifierSpec, train: Sequence[Example],
                   description: str, gold: Sequence[str]) -> list[Candidate]:
    """The data set's description as instructions, and one example per label."""
    variants: list[tuple[str, ClassifierSpec]] = []
    if description.strip():
        variants.append(("the data set's description as instructions",
                         base.with_changes(instructions=description.strip())))
    variants.append(("one example per label",
                     base.with_changes(examples=few_shot_examples(train, base.label_names))))
    out: list[Candidate] = []
    for name, spec in variants:
        if run.over_half_budget():
            run.notes.append(f"Skipped the prompt with {name}: half the time budget is spent.")
            continue
        rows = _logprob_rows(run, spec, run.data.validation)
        content_free = Classifier(run.engine, spec).content_free_prediction(run.cancel)
        out += methods.calibration_candidates(spec, name, rows, gold, content_free)
    return out


def _logprob_rows(run: _Run, spec: ClassifierSpec, examples: Sequence[Example]
                  ) -> list[TextFeatures]:
    """Label log-probabilities only (no hidden state), through the classifier's own path."""
    clf = Classifier(run.engine, spec.with_changes(calibration="none"))
    preds = clf.classify_many([t for t, _ in examples], cancel=run.cancel)
    if len(preds) < len(examples):
        raise Cancelled
    names = spec.label_names
    return [TextFeatures(logprobs=logprob_features(p.raw_probs, names), hidden_last=[],
                         hidden_mean=[], truncated=p.truncated) for p in preds]


@dataclass
class FitResult:
    """A training run before it is saved: its report, the classifier to save (its
    ``training`` entry filled in), and the test predictions of it and of zero-shot."""

    report: TrainReport
    spec: ClassifierSpec
    test_predictions: list[str | None]
    baseline_predictions: list[str | None]


def train_classifier(
    db: sqlite_utils.Database, engine: LlamaEngine, dataset: str, name: str, *,
    method: str = "auto", model_id: str | None = None, epochs: int | None = None,
    max_minutes: float = 30.0, max_fit_examples: int = MAX_FIT_EXAMPLES,
    progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
) -> TrainReport:
    """Train classifier ``name`` on data set ``dataset`` with the engine's loaded model.

    ``method`` is "prompt", "head" or "auto" (both: the head unless another candidate beats
    it on validation by more than chance, ``methods.choose_auto``).
    ``epochs`` is accepted for the fine-tuning methods and unused by these (their fits
    converge in one go). Bad input (unknown method, a data set that cannot be trained on,
    no name, no model) raises a ``UserFacingError`` before the model does any work;
    ``Cancelled`` when ``cancel`` is set, and then nothing is saved.
    """
    del epochs  # prompt and head have no epochs; LoRA (slmdesk.training.run) has
    fit = fit_classifier(db, engine, dataset, name, method=method, max_minutes=max_minutes,
                         max_fit_examples=max_fit_examples, progress=progress, cancel=cancel)
    ClassifierRepository(db).save(fit.report.name, fit.spec.to_json(), model_id=model_id)
    return fit.report


def fit_classifier(
    db: sqlite_utils.Database, engine: LlamaEngine, dataset: str, name: str, *,
    method: str = "auto", max_minutes: float = 30.0,
    max_fit_examples: int = MAX_FIT_EXAMPLES, progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> FitResult:
    """``train_classifier`` without saving: what it would save, and the test predictions."""
    if method not in METHODS:
        raise TrainingMethodError(
            f"Unknown training method '{method}' (use {', '.join(METHODS)})."
        )
    if not " ".join(name.split()):
        raise InvalidInputError("A trained classifier needs a name.")
    ds = DatasetRepository(db).get(dataset)
    data = load_training_data(db, ds)
    if engine.info is None:
        raise ModelNotLoadedError("Load a model to train with first.")
    run = _Run(engine, data, max_minutes=max_minutes, progress=progress,
               cancel=cancel or threading.Event())
    base = ClassifierSpec(labels=tuple(Label(n) for n in data.labels))
    train = sample_for_fit(data.train, max_fit_examples)
    if len(train) < len(data.train):
        run.notes.append(f"Fitted on {len(train)} of the {len(data.train)} train texts.")
    validation = sample_for_fit(data.validation, MAX_VALIDATION)
    if len(validation) < len(data.validation):
        run.notes.append(f"Chose on {len(validation)} of the {len(data.validation)} "
                         "validation texts.")
        data = dataclasses.replace(data, validation=validation)
        run.data = data
    candidates = _search(run, base, method, train, ds.description or "")
    allowed = [c for c in candidates if method == "auto" or c.method == method
               or (method == "prompt" and c.method == "zero_shot")]
    if method == "auto":
        choice = methods.choose_auto(allowed, [g for _, g in data.validation])
        chosen = choice.chosen
        if choice.note:
            run.notes.append(choice.note)
    else:
        chosen = methods.best(allowed)
    record_spec = chosen.spec if chosen.method != "zero_shot" else chosen.spec.with_changes(
        method="prompt" if method == "prompt" else "zero_shot")
    gold = [g for _, g in data.test]
    chosen_pred = run.predict(record_spec, data.test, "test")
    baseline_pred = run.predict(base.with_changes(calibration="auto"), data.test, "test")
    labels = list(data.labels)
    report = TrainReport(
        name=" ".join(name.split()), dataset=ds.name, model=engine.info.name,
        method=record_spec.method, chosen=chosen.name, candidates=candidates,
        test=evaluate(gold, chosen_pred, labels),
        baseline_test=evaluate(gold, baseline_pred, labels),
        mcnemar=mcnemar_exact(gold, chosen_pred, baseline_pred),
        counts={**data.counts(), "train": len(train)}, split_made=data.split_made,
        seconds=time.perf_counter() - run.started, notes=run.notes,
    )
    saved = record_spec.with_changes(training=report.spec_record())
    return FitResult(report, saved, chosen_pred, baseline_pred)
