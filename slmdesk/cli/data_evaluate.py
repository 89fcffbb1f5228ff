"""`slmdesk data evaluate`: a model and classifier scored on a split of a data set; the run is
kept with the data set (`data evals` lists the runs)."""

# The classifier, the store and the engine are imported inside the handler: building the
# parser imports every command module, and only this command should pay for llama.cpp.

from __future__ import annotations

import argparse
import sys
import threading
from typing import TYPE_CHECKING, Any

from slmdesk.cli.common import open_core, sigint_cancels
from slmdesk.cli.loading import (
    add_load_options,
    check_load_options,
    load_engine,
    resolve_present_model,
)
from slmdesk.cli.output import Progress, print_json
from slmdesk.errors import InvalidInputError

if TYPE_CHECKING:
    from slmdesk.classify.spec import ClassifierSpec
    from slmdesk.store.datasets import Dataset, Example


def add_parsers(dsub: Any, *, splits: list[str]) -> None:
    dev = dsub.add_parser(
        "evaluate", help="evaluate a model + classifier on a split; the run is kept")
    dev.add_argument("name", metavar="NAME")
    dev.add_argument("-m", "--model", help="model id, name or file name")
    dev.add_argument("--classifier", metavar="NAME",
                     help="a saved classifier (default: zero-shot with the data set's labels)")
    dev.add_argument("--split", choices=splits, default="test")
    add_load_options(dev)
    dev.add_argument("--json", action="store_true")
    dev.set_defaults(func=_evaluate)


def _check_labels(ds: Dataset, spec: ClassifierSpec, examples: list[Example]) -> None:
    """Every example's label is one of the classifier's, and it picks one label."""
    missing = sorted({str(e.label) for e in examples if e.label not in spec.label_names})
    if missing:
        raise InvalidInputError(
            f"'{ds.name}' has examples labelled '{missing[0]}', which is not one of the "
            f"classifier's labels ({', '.join(spec.label_names)}).")
    if spec.multi_label:
        raise InvalidInputError("Evaluation works with single-label classifiers.")


def _evaluate(args: argparse.Namespace) -> int:
    from slmdesk.classify.classifier import Classifier
    from slmdesk.classify.evaluate import format_report
    from slmdesk.classify.spec import ClassifierSpec
    from slmdesk.datasets.evaluation import (
        eval_examples,
        evaluate_examples,
        few_shot_overlap,
        record_eval,
        spec_for_dataset,
    )
    from slmdesk.store.classifiers import ClassifierRepository
    from slmdesk.store.datasets import DatasetRepository

    check_load_options(args)
    core = open_core()
    ds = DatasetRepository(core.db).get(args.name)
    saved = ClassifierRepository(core.db).get(args.classifier) if args.classifier else None
    spec = spec_for_dataset(ds, ClassifierSpec.from_json(saved.spec) if saved else None)
    # Everything that can be checked is checked before the model loads.
    examples = eval_examples(core.db, ds, args.split)
    _check_labels(ds, spec, examples)
    model = resolve_present_model(core.db, args.model,
                                  remembered_id=saved.model_id if saved else None)
    engine = load_engine(model, core.db, args)
    try:
        classifier = Classifier(engine, spec)
        progress = Progress(len(examples))
        cancel = threading.Event()
        with sigint_cancels(cancel):
            report = evaluate_examples(classifier, examples, cancel=cancel,
                                       on_progress=progress)
        if report is None:
            progress.stopped(progress.done)
            return 130
        calibration = classifier.calibration_for(len(examples))
    finally:
        engine.unload()
    overlap = few_shot_overlap(spec, examples)
    run = record_eval(
        core.db, ds, model_name=model.name, model_id=model.id, classifier_spec=spec.to_json(),
        report=report, split=args.split, classifier_name=saved.name if saved else None,
        extra={"calibration": calibration, "few_shot_overlap": overlap},
    )
    if args.json:
        print_json(run.to_json())
        return 0
    print(format_report(report))
    print(f"\ncalibration: {calibration}; model {model.name}; split {args.split}; run {run.id}")
    if overlap:
        print(f"[{overlap} evaluated text(s) are also few-shot examples of the classifier; "
              "the score is optimistic]", file=sys.stderr)
    return 0
