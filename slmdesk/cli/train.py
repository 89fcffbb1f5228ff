"""`slmdesk train`: a labelled data set to classifier NAME, a chat data set to model NAME
(base + LoRA adapter), through ``slmdesk.training.run`` (the Train view runs the same)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from slmdesk.cli.common import THREADS_HELP, add_command, check_at_least_one, open_core
from slmdesk.cli.output import print_json
from slmdesk.errors import UserFacingError

METHOD_CHOICES = ("auto", "prompt", "head", "lora")
# Hidden LoRA options (tests and experiments): --lora-OPTION sets LoraSettings.OPTION.
HIDDEN_LORA_OPTIONS = {"max-steps": int, "rank": int, "batch-size": int,
                       "learning-rate": float, "checkpoint-every": int}


def add_parsers(sub: Any) -> None:
    t = add_command(sub, "train", _train, "train a classifier (labelled data set) or a "
                    "fine-tuned model (chat data set) from a data set", "NAME",
                    json_output=True)
    t.add_argument("--data", required=True, metavar="DATASET", help="the data set's name")
    t.add_argument("-m", "--model", help="base model id, name or file name")
    t.add_argument("--method", choices=METHOD_CHOICES, default="auto",
                   help="auto (default): prompt and head (the head unless a prompt beats it "
                        "on validation by more than chance), then LoRA when the data set is "
                        "large enough and time allows (kept when best on validation)")
    t.add_argument("--epochs", type=float, help="LoRA epochs (default 1)")
    t.add_argument("--max-minutes", type=float, default=30.0,
                   help="time budget (default 30)")
    t.add_argument("--threads", type=int, help=THREADS_HELP)
    t.add_argument("--events", action="store_true",
                   help="print one JSON event per line while training, the report last")
    t.add_argument("--resume", action="store_true",
                   help="continue NAME's newest interrupted LoRA job from its last checkpoint")
    for option, kind in HIDDEN_LORA_OPTIONS.items():
        t.add_argument(f"--lora-{option}", type=kind, help=argparse.SUPPRESS)


@contextmanager
def _signals_cancel(cancel: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM cancel the run (a LoRA job keeps its checkpoint)."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        cancel.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def _event_printer(enabled: bool) -> Any:
    def emit(event: dict[str, Any]) -> None:
        if enabled:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif event.get("event") == "stage" and event["stage"] != "checking":
            # Checking takes no time; a refusal then is the only line printed.
            print(f"{event['stage']}: {event['message']}", file=sys.stderr, flush=True)
    return emit


def _request(args: argparse.Namespace) -> Any:
    from slmdesk.training.run import TrainRequest

    check_at_least_one("threads", args.threads)
    overrides = {}
    for option in HIDDEN_LORA_OPTIONS:
        value = getattr(args, "lora_" + option.replace("-", "_"))
        if value is not None:
            overrides[option.replace("-", "_")] = value
    return TrainRequest(name=args.name, dataset=args.data, model=args.model,
                        method=args.method, epochs=args.epochs, max_minutes=args.max_minutes,
                        threads=args.threads, resume=args.resume, lora_overrides=overrides)


def _train(args: argparse.Namespace) -> int:
    from slmdesk.training.run import TrainingCancelled, run_training

    emit = _event_printer(args.events)
    cancel = threading.Event()
    try:
        request = _request(args)
        core = open_core()
        with _signals_cancel(cancel):
            report = run_training(core.db, request, emit, cancel)
    except TrainingCancelled as stop:
        if args.events:
            emit({"event": "cancelled", "job": stop.job})
        else:
            kept = "; its checkpoint is kept (--resume continues it)" if stop.job else ""
            print(f"slmdesk: training cancelled{kept}", file=sys.stderr)
        return 130
    except UserFacingError as exc:
        if not args.events:
            raise
        emit({"event": "failed", "message": exc.message})
        return exc.exit_code
    except Exception as exc:  # a bug: still a last event for whoever reads them
        if args.events:
            emit({"event": "failed", "message": f"{type(exc).__name__}: {exc}"})
        raise
    if args.events:
        emit({"event": "finished", "report": report})
    elif args.json:
        print_json(report)
    else:
        print(_summary(report))
    return 0


def _summary(report: dict[str, Any]) -> str:
    """The report in a few lines for a terminal."""
    lines = [f"Trained {report['kind']} {report['name']} ({report['method']}) from "
             f"{report['dataset']} on {report['model']} in {report['seconds']:.0f} s."]
    if report["kind"] == "classifier":
        test, zero = report["test"], report["zero_shot_test"]
        lines.append(f"test: accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}"
                     f" (zero-shot {zero['accuracy']:.3f}, {zero['macro_f1']:.3f}; McNemar "
                     f"p = {report['mcnemar']['p_value']:.3g})")
        for method, metrics in report["methods"].items():
            lines.append(f"  validation {method}: macro-F1 {metrics['macro_f1']:.3f}")
        lines += [f"note: {note}" for note in report.get("notes") or []]
        lines.append(f"Use it: slmdesk classify --classifier '{report['name']}' TEXT")
    else:
        loss = report["test"]
        lines.append(f"held-out assistant-token loss {loss['held_out_loss_before']:.3f} → "
                     f"{loss['held_out_loss_after']:.3f}")
        lines.append(f"Use it: slmdesk chat -m '{report['name']}'")
    return "\n".join(lines)
