"""`slmdesk classify`: the label of one TEXT, JSON lines for every text of --input FILE (or
into a resumable --output FILE), or an evaluation report on --eval FILE; a classifier can be
saved with --save-as."""

# The classifier, the store and the engine are imported inside the handlers: building the
# parser imports every command module, and only `classify` should pay for llama.cpp.

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from slmdesk.cli.common import check_at_least_one, open_core, sigint_cancels, split_labels
from slmdesk.cli.loading import add_load_options, check_load_options, load_engine
from slmdesk.cli.output import Progress, print_json
from slmdesk.errors import InvalidInputError

if TYPE_CHECKING:
    from slmdesk.classify.classifier import Prediction
    from slmdesk.classify.spec import ClassifierSpec


def add_parsers(sub: Any) -> None:
    c = sub.add_parser(
        "classify",
        help="classify a TEXT, every text of --input FILE, or evaluate on --eval FILE",
        description="Classify with a model: the label of TEXT; one JSON line per text of "
        "--input FILE (streamed as each text is scored, except with batch calibration, "
        "which needs every text first), on stdout or into --output FILE, which --resume "
        "continues after a stop; or a report on --eval FILE.",
    )
    c.add_argument("text", nargs="?", metavar="TEXT")
    c.add_argument("-m", "--model", help="model id, name or file name")
    c.add_argument("--labels", help="comma-separated labels, e.g. positive,negative")
    c.add_argument("--descriptions", metavar="FILE",
                   help="label descriptions: JSON {label: description} or CSV label,description")
    c.add_argument("--instructions", metavar="TEXT", help="what to classify, in words")
    c.add_argument("--examples", metavar="FILE",
                   help="few-shot examples: .csv/.tsv/.jsonl with text and label columns")
    c.add_argument("--calibration", choices=["none", "contextual", "batch", "auto"],
                   help="auto (default): contextual for one text, batch for 8 or more")
    c.add_argument("--prompt-style", choices=["auto", "chat", "completion"],
                   help="auto (default): chat when the model has a chat template")
    c.add_argument("--multi-label", action="store_true",
                   help="every label is a yes/no question; print all over --threshold")
    c.add_argument("--threshold", type=float, help="multi-label threshold (default 0.5)")
    c.add_argument("--explain", action="store_true",
                   help="add a short generated justification of the chosen label")
    c.add_argument("--classifier", metavar="NAME",
                   help="start from a saved classifier (other options override it)")
    c.add_argument("--save-as", metavar="NAME", help="save the classifier under NAME")
    c.add_argument("--input", metavar="FILE",
                   help="classify every text: .txt one per line, .csv/.tsv/.jsonl text column")
    c.add_argument("--column", help="the text column of --input (default: text)")
    c.add_argument("--output", metavar="FILE",
                   help="with --input: write the JSON lines to FILE instead (a header line, "
                   "then one line per text with its input index, flushed as it is scored)")
    c.add_argument("--resume", action="store_true",
                   help="with --output: continue FILE where a stopped run left it, "
                   "classifying only the texts not yet in it (same input, labels, settings "
                   "and model; not with batch calibration)")
    c.add_argument("--eval", metavar="FILE",
                   help="evaluate on .csv/.tsv/.jsonl with text and label columns")
    c.add_argument("--text-column", default="text", help="text column of --eval")
    c.add_argument("--label-column", default="label", help="label column of --eval")
    add_load_options(c)
    c.add_argument("--engine", metavar="NAME|URL",
                   help="score on a remote OpenAI-compatible engine (`slmdesk engines`) "
                   "instead of on this machine")
    c.add_argument("--api-key", metavar="KEY", help="the remote engine's key")
    c.add_argument("--concurrency", type=int, default=4, metavar="N",
                   help="requests at once against a remote engine (default 4)")
    c.add_argument("--json", action="store_true",
                   help="JSON output (--input always prints JSON lines)")
    c.set_defaults(func=_classify)


def _label_names(args: argparse.Namespace, base: ClassifierSpec | None,
                 examples: tuple[tuple[str, str], ...],
                 eval_pairs: list[tuple[str, str]] | None) -> list[str]:
    """--labels, else the saved classifier's, else those of --eval or --examples."""
    if args.labels:
        return split_labels(args.labels)
    if base is not None:
        return list(base.label_names)
    if eval_pairs:
        return sorted({label for _t, label in eval_pairs})
    if examples:
        return sorted({label for _t, label in examples})
    raise InvalidInputError(
        "Give the labels with --labels a,b (or start from --classifier NAME)."
    )


def _classify_spec(args: argparse.Namespace, base: ClassifierSpec | None,
                   eval_pairs: list[tuple[str, str]] | None) -> ClassifierSpec:
    """The spec from a saved classifier (or nothing) with the command's options on top."""
    from slmdesk.classify.io import read_descriptions, read_labelled
    from slmdesk.classify.spec import ClassifierSpec, Label

    old = {label.name: label for label in base.labels} if base else {}
    examples = base.examples if base else ()
    if args.examples:
        examples = tuple(read_labelled(args.examples))
    names = _label_names(args, base, examples, eval_pairs)
    labels = [old.get(n, Label(n)) for n in names]
    if args.descriptions:
        descriptions = read_descriptions(args.descriptions)
        unknown = [k for k in descriptions if k not in names]
        if unknown:
            raise InvalidInputError(
                f"{args.descriptions}: '{unknown[0]}' is not one of the labels "
                f"({', '.join(names)})."
            )
        labels = [
            Label(lab.name, descriptions.get(lab.name, lab.description), lab.verbalizers)
            for lab in labels
        ]
    spec = ClassifierSpec(
        labels=tuple(labels),
        instructions=args.instructions if args.instructions is not None
        else (base.instructions if base else ""),
        examples=examples,
        calibration=args.calibration or (base.calibration if base else "auto"),
        multi_label=args.multi_label or (base.multi_label if base else False),
        threshold=args.threshold if args.threshold is not None
        else (base.threshold if base else 0.5),
        prompt_style=args.prompt_style or (base.prompt_style if base else "auto"),
        explain=args.explain or (base.explain if base else False),
    )
    try:
        # A trained classifier keeps its training while its prompt is unchanged.
        return spec.validate().with_training_of(base)
    except InvalidInputError as exc:
        where = f"{args.examples}: " if args.examples and "example" in exc.message else ""
        raise InvalidInputError(where + exc.message) from exc


def _check_modes(args: argparse.Namespace) -> list[Any]:
    """The one mode given (TEXT, --input or --eval), or none with --save-as."""
    from slmdesk.classify.classifier import EMPTY_TEXT

    modes = [m for m in (args.text is not None, args.input, args.eval) if m]
    if len(modes) > 1:
        raise InvalidInputError("Give only one of TEXT, --input FILE and --eval FILE.")
    if not modes and not args.save_as:
        raise InvalidInputError("Give a TEXT, --input FILE or --eval FILE (or --save-as NAME).")
    if (args.output or args.resume) and not args.input:
        raise InvalidInputError("--output and --resume work with --input FILE.")
    if args.resume and not args.output:
        raise InvalidInputError("--resume needs --output FILE (the file to continue).")
    check_load_options(args)
    if args.text is not None and not args.text.strip():
        raise InvalidInputError(EMPTY_TEXT)
    return modes


def _check_eval_labels(path: str, spec: ClassifierSpec, pairs: list[tuple[str, str]]) -> None:
    if spec.multi_label:
        raise InvalidInputError("--eval works with single-label classifiers.")
    for i, (_text, label) in enumerate(pairs):
        if label not in spec.label_names:
            raise InvalidInputError(
                f"{path}: row {i + 1} is labelled '{label}', which is not one of "
                f"the labels ({', '.join(spec.label_names)})."
            )


def _classify(args: argparse.Namespace) -> int:
    from slmdesk.catalog.registry import check_model_present, resolve_model
    from slmdesk.classify.io import read_labelled, read_texts
    from slmdesk.classify.spec import ClassifierSpec
    from slmdesk.store.classifiers import ClassifierRepository

    modes = _check_modes(args)
    core = open_core()
    repo = ClassifierRepository(core.db)
    saved = repo.get(args.classifier) if args.classifier else None
    base = ClassifierSpec.from_json(saved.spec) if saved else None
    # Read every file before the model loads, so a bad file fails fast.
    eval_pairs = read_labelled(args.eval, args.text_column, args.label_column) \
        if args.eval else None
    texts = read_texts(args.input, args.column) if args.input else None
    spec = _classify_spec(args, base, eval_pairs)
    if eval_pairs is not None:
        _check_eval_labels(args.eval, spec, eval_pairs)
    if args.engine and not args.save_as:
        # -m names the remote engine's model: no local model is needed.
        return _run_modes(_remote_scorer(args, core, spec), spec, args, texts, eval_pairs)
    model = resolve_model(
        core.db, args.model, conversation_model_id=saved.model_id if saved else None
    )
    if args.save_as:
        stored = repo.save(args.save_as, spec.to_json(), model_id=model.id)
        if not modes:
            print(f"Saved classifier {stored.name} ({', '.join(spec.label_names)}; "
                  f"model {model.name})")
            return 0
    if args.engine:
        return _run_modes(_remote_scorer(args, core, spec), spec, args, texts, eval_pairs)
    # The model's file is checked only now: saving a classifier needs no file.
    check_model_present(model)
    engine = load_engine(model, core.db, args)
    try:
        from slmdesk.classify.classifier import Classifier

        identity = {"id": model.id, "bytes": model.size_bytes, "sha256": model.sha256}
        return _run_modes(Scorer(Classifier(engine, spec), lambda p: p.to_json(), identity),
                          spec, args, texts, eval_pairs)
    finally:
        engine.unload()


class Scorer(NamedTuple):
    """A local or remote classifier, how one of its predictions is printed as JSON, and what
    identifies its model in a resumable --output file."""

    classifier: Any  # Classifier | RemoteClassifier: classify, classify_many, calibration_for
    to_json: Callable[[Prediction], dict[str, Any]]
    model_identity: dict[str, Any]


def _remote_scorer(args: argparse.Namespace, core: Any, spec: ClassifierSpec) -> Scorer:
    """--engine: the same classifier, its label log-probabilities from a remote engine."""
    from slmdesk.remote.classify import RemoteClassifier
    from slmdesk.remote.engines import open_remote_engine

    check_at_least_one("concurrency", args.concurrency)
    remote = RemoteClassifier(
        open_remote_engine(core.db, args.engine, args.api_key, args.model), spec,
        concurrency=args.concurrency)
    method = remote.method  # first: finding it may probe the engine for its model
    identity = {"engine": remote.engine.base_url, "model": remote.engine.model,
                "method": method}
    return Scorer(remote, remote.result_json, identity)


def _run_modes(scorer: Scorer, spec: ClassifierSpec, args: argparse.Namespace,
               texts: list[str] | None, eval_pairs: list[tuple[str, str]] | None) -> int:
    if args.text is not None:
        return _classify_one(scorer, spec, args.text, json_mode=args.json)
    if texts is not None:
        return _classify_input(scorer, spec, texts, args)
    assert eval_pairs is not None
    return _classify_eval(scorer, spec, eval_pairs, json_mode=args.json)


def _classify_one(scorer: Scorer, spec: ClassifierSpec, text: str, *, json_mode: bool) -> int:
    from slmdesk.engine.llama_engine import Cancelled

    cancel = threading.Event()
    try:
        with sigint_cancels(cancel):
            pred = scorer.classifier.classify(text, cancel=cancel)
    except Cancelled:
        raise KeyboardInterrupt from None
    if pred.error:
        raise InvalidInputError(pred.error)
    if json_mode:
        print_json(scorer.to_json(pred))
    else:
        if spec.multi_label:
            if pred.labels:
                print(", ".join(pred.labels))
            else:
                print(f"[no label reached the threshold {spec.threshold}]", file=sys.stderr)
        else:
            print(pred.label)
        if pred.explanation:
            print(pred.explanation)
    for note in pred.notes:
        print(f"[{note}]", file=sys.stderr)
    return 0


class _PrintedResults:
    """--input without --output: each result a JSON line on stdout (nothing to resume)."""

    def __init__(self) -> None:
        self.done: set[int] = set()

    def write(self, _index: int, result: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        pass


def _open_results(scorer: Scorer, spec: ClassifierSpec, texts: list[str],
                  args: argparse.Namespace, calibration: str) -> Any:
    """Where the results go: stdout, or the --output file (started, or resumed)."""
    from slmdesk.classify.results_file import file_identity, open_results, run_header

    if not args.output:
        return _PrintedResults()
    if args.resume and calibration == "batch":
        raise InvalidInputError(
            "--resume cannot continue a run with batch calibration: it divides every score "
            "by the mean over all the texts, so no result is final until every text is "
            "scored (\"auto\" uses it from 8 texts on). Add --calibration contextual (or "
            "none) for a run that can be resumed.")
    source = {**file_identity(args.input), "column": args.column or "text"}
    header = run_header(source, spec.to_json(), scorer.model_identity, len(texts), calibration)
    return open_results(args.output, header, resume=args.resume)


def _classify_input(scorer: Scorer, spec: ClassifierSpec, texts: list[str],
                    args: argparse.Namespace) -> int:
    classifier = scorer.classifier
    calibration = classifier.calibration_for(len(texts))
    streamed = calibration != "batch"
    results = _open_results(scorer, spec, texts, args, calibration)
    todo = [i for i in range(len(texts)) if i not in results.done]
    skipped = len(texts) - len(todo)
    progress = Progress(len(texts))
    cancel = threading.Event()

    def on_result(j: int, pred: Prediction) -> None:
        if streamed:
            results.write(todo[j], scorer.to_json(pred))

    def on_progress(done: int, total: int) -> None:
        progress(skipped + done, skipped + total)

    try:
        if todo:
            with sigint_cancels(cancel):
                preds = classifier.classify_many(
                    [texts[i] for i in todo], cancel=cancel, on_result=on_result,
                    on_progress=on_progress)
        else:
            preds = []
        if not streamed:
            for i, pred in zip(todo, preds, strict=False):
                results.write(i, scorer.to_json(pred))
    finally:
        results.close()
    if len(preds) < len(todo):
        progress.stopped(skipped + len(preds))
        if args.output:
            print(f"slmdesk: {args.output} keeps them; add --resume to continue",
                  file=sys.stderr)
        return 130
    if args.output:
        print(f"{args.output}: {len(texts)} of {len(texts)} texts classified "
              f"({skipped} there already)", file=sys.stderr)
    return 0


def _classify_eval(
    scorer: Scorer, spec: ClassifierSpec, pairs: list[tuple[str, str]], *, json_mode: bool
) -> int:
    from slmdesk.classify.evaluate import evaluate, format_report

    classifier = scorer.classifier
    texts = [t for t, _label in pairs]
    cancel = threading.Event()
    progress = Progress(len(texts))
    started = time.perf_counter()
    with sigint_cancels(cancel):
        preds = classifier.classify_many(texts, cancel=cancel, on_progress=progress)
    seconds = time.perf_counter() - started
    if len(preds) < len(texts):
        progress.stopped(len(preds))
        return 130
    report = evaluate([label for _t, label in pairs], [p.label for p in preds],
                      spec.label_names)
    report.seconds = seconds
    report.texts_per_s = len(texts) / seconds if seconds > 0 else 0.0
    calibration = preds[0].calibration if preds else "none"
    if json_mode:
        print_json({**report.to_json(), "calibration": calibration})
    else:
        print(format_report(report))
        print(f"\ncalibration: {calibration}")
    return 0
