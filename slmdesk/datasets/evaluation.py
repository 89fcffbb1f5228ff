"""Evaluate a model + classifier on a labelled data set's split, and keep every run.

A run stores the model, the classifier spec (labels, instructions, examples,
calibration), the split and the whole report (accuracy, macro-F1, per-label
precision/recall/F1, confusion matrix), so runs of different models and prompts can be
compared side by side later. Plain Python: the GUI runs ``evaluate_examples`` on the
engine thread and draws ``EvalRun.eval_report().confusion`` itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import sqlite_utils

from slmdesk.classify.evaluate import EvalReport, evaluate
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.errors import InvalidInputError
from slmdesk.store.datasets import SPLITS, UNASSIGNED, Dataset, DatasetRepository, Example
from slmdesk.store.evaluations import EvalRunRecord, EvalRunRepository

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Classifier, Prediction

EVAL_SPLITS = (*SPLITS, "all")


@dataclass(frozen=True)
class EvalRun(EvalRunRecord):
    """A stored run, whose report can be read back as an ``EvalReport``."""

    def eval_report(self) -> EvalReport:
        """The stored report as an ``EvalReport`` (for drawing the confusion matrix)."""
        r = self.report
        return EvalReport(
            accuracy=float(r["accuracy"]), macro_f1=float(r["macro_f1"]),
            per_label={k: dict(v) for k, v in r["per_label"].items()},
            confusion=[list(row) for row in r["confusion"]], labels=list(r["labels"]),
            n=int(r["n"]), seconds=float(r.get("seconds", 0.0)),
            texts_per_s=float(r.get("texts_per_s", 0.0)),
        )


def _run(record: EvalRunRecord) -> EvalRun:
    return EvalRun(**{f.name: getattr(record, f.name) for f in fields(record)})


def record_eval(
    db: sqlite_utils.Database, dataset: Dataset, *, model_name: str,
    classifier_spec: ClassifierSpec | Mapping[str, Any], report: EvalReport, split: str,
    classifier_name: str | None = None, model_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> EvalRun:
    """Keep one evaluation run; ``classifier_spec`` is a ``ClassifierSpec`` or its
    ``to_json()``. ``extra`` details (calibration used, notes) join the stored report
    without replacing its own keys."""
    if split not in EVAL_SPLITS:
        raise InvalidInputError(f"Unknown split '{split}' (use {', '.join(EVAL_SPLITS)}).")
    spec = (classifier_spec.to_json() if isinstance(classifier_spec, ClassifierSpec)
            else dict(classifier_spec))
    data = report.to_json()
    for key, value in (extra or {}).items():
        data.setdefault(key, value)
    return _run(EvalRunRepository(db).add(
        dataset_id=dataset.id, model_name=model_name, model_id=model_id,
        classifier_name=classifier_name, spec=spec, split=split, n=report.n,
        accuracy=report.accuracy, macro_f1=report.macro_f1, report=data,
    ))


def get_eval(db: sqlite_utils.Database, run_id: str) -> EvalRun:
    return _run(EvalRunRepository(db).get(run_id))


def list_evals(db: sqlite_utils.Database, dataset: Dataset) -> list[EvalRun]:
    """The data set's evaluation runs, newest first."""
    return [_run(r) for r in EvalRunRepository(db).for_dataset(dataset.id)]


def delete_eval(db: sqlite_utils.Database, run_id: str) -> None:
    EvalRunRepository(db).delete(run_id)


# -- running -------------------------------------------------------------------------------


def spec_for_dataset(dataset: Dataset, base: ClassifierSpec | None = None) -> ClassifierSpec:
    """The classifier to evaluate: ``base`` (a saved classifier), or a zero-shot one
    with the data set's labels."""
    if dataset.kind != "labels":
        raise InvalidInputError(f"'{dataset.name}' holds chat examples; evaluation needs "
                                "labelled texts.")
    if base is not None:
        return base.validate()
    if len(dataset.labels) < 2:
        raise InvalidInputError(
            f"'{dataset.name}' has {len(dataset.labels)} label(s); a classifier needs at "
            "least two.")
    return ClassifierSpec(labels=tuple(Label(name) for name in dataset.labels)).validate()


def eval_examples(db: sqlite_utils.Database, dataset: Dataset, split: str = "test"
                  ) -> list[Example]:
    """The labelled examples of a split ("all": every labelled example), in id order."""
    if split not in EVAL_SPLITS:
        raise InvalidInputError(f"Unknown split '{split}' (use {', '.join(EVAL_SPLITS)}).")
    repo = DatasetRepository(db)
    examples = [e for e in (repo.examples(dataset) if split == "all"
                            else repo.query(dataset, split=split)) if e.label is not None]
    if not examples:
        where = "" if split == "all" else f" in the {split} split"
        detail = hint = ""
        if split != "all":
            stats = repo.stats(dataset)
            if stats.total and stats.per_split[UNASSIGNED] == stats.total:
                hint = " Assign splits first (`slmdesk data split NAME`)."
            else:
                detail = " (splits: " + ", ".join(
                    f"{k} {v}" for k, v in stats.per_split.items()) + ")"
        raise InvalidInputError(
            f"'{dataset.name}' has no labelled examples{where}{detail}.{hint}")
    return examples


def few_shot_overlap(spec: ClassifierSpec, examples: Sequence[Example]) -> int:
    """How many evaluated texts are also the classifier's few-shot examples (which makes
    the score look better than it is)."""
    shots = {text.strip() for text, _label in spec.examples}
    return sum(1 for e in examples if (e.text or "").strip() in shots)


def evaluate_examples(
    classifier: Classifier, examples: Sequence[Example], *,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_result: Callable[[int, Prediction], None] | None = None,
) -> EvalReport | None:
    """Classify the examples and compare with their labels; None when cancelled.

    Every gold label must be one of the classifier's labels.
    """
    spec = classifier.spec
    gold = [e.label for e in examples]
    missing = sorted({g for g in gold if g is not None and g not in spec.label_names})
    if missing or any(g is None for g in gold):
        raise InvalidInputError(
            f"The label '{missing[0]}' of the data set is not one of the classifier's labels "
            f"({', '.join(spec.label_names)})." if missing else "An example has no label.")
    if spec.multi_label:
        raise InvalidInputError("Evaluation works with single-label classifiers.")
    texts = [e.text or "" for e in examples]
    started = time.perf_counter()
    preds = classifier.classify_many(texts, cancel=cancel, on_progress=on_progress,
                                     on_result=on_result)
    seconds = time.perf_counter() - started
    if len(preds) < len(texts):
        return None
    report = evaluate([g for g in gold if g is not None], [p.label for p in preds],
                      spec.label_names)
    report.seconds = seconds
    report.texts_per_s = len(texts) / seconds if seconds > 0 else 0.0
    return report


def format_evals(runs: Sequence[EvalRun]) -> str:
    """Runs side by side for a terminal: one line each, then F1 per label and run."""
    if not runs:
        return "No evaluation runs."
    lines = [f"{'run':<26}  {'when':<16}  {'model':<24}  {'classifier':<14}  "
             f"{'split':<10}  {'n':>5}  {'acc':>5}  {'F1':>5}"]
    for r in runs:
        lines.append(
            f"{r.id:<26}  {r.created_at[:16].replace('T', ' '):<16}  {r.model_name[:24]:<24}  "
            f"{(r.classifier_name or '-')[:14]:<14}  {r.split:<10}  {r.n:>5}  "
            f"{r.accuracy:>5.3f}  {r.macro_f1:>5.3f}")
    labels: list[str] = []
    for r in runs:
        labels += [lab for lab in r.report.get("labels", []) if lab not in labels]
    if labels:
        width = max(len("label"), *(len(lab) for lab in labels))
        lines += ["", "F1 per label (columns: runs above, in order)"]
        for lab in labels:
            cells = []
            for r in runs:
                metrics = r.report.get("per_label", {}).get(lab)
                cells.append(f"{metrics['f1']:>5.3f}" if metrics else f"{'-':>5}")
            lines.append(f"{lab:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)
