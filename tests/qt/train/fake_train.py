"""A stand-in for `slmdesk train … --events`: prints the contract's events with small sleeps.

Usage: ``python fake_train.py SCENARIO [the train arguments…]``; the first stage event
echoes the train arguments, so that a test sees what the view asked for. Scenarios:
classifier, per_label, chat, failed, crash, cancel.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

LABELS = ["negative", "positive"]
STEPS = 6


def trained_name() -> str:
    return sys.argv[sys.argv.index("train") + 1]


def emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)
    time.sleep(0.01)


def metrics(accuracy: float, macro_f1: float, confusion: list[list[int]] | None,
            f1: list[float]) -> dict[str, Any]:
    per_label = {lab: {"f1": v} for lab, v in zip(LABELS, f1, strict=True)}
    out: dict[str, Any] = {"accuracy": accuracy, "macro_f1": macro_f1, "labels": LABELS,
                           "n": 40, "per_label": per_label}
    if confusion is not None:
        out["confusion"] = confusion
    return out


def lora_steps(until: int = STEPS) -> None:
    emit({"event": "stage", "stage": "lora", "message": "Fine-tuning with LoRA"})
    for step in range(1, until + 1):
        emit({"event": "progress", "method": "lora", "step": step, "total_steps": STEPS,
              "epoch": step / STEPS, "loss": 2.0 - 0.25 * step, "tokens_per_s": 900.0,
              "eta_s": 30.0 * (STEPS - step)})
        if step == 3:
            emit({"event": "checkpoint", "method": "lora", "step": 3, "job": "job-1"})


def classifier_report(with_confusion: bool) -> dict[str, Any]:
    return {
        "name": trained_name(), "kind": "classifier", "method": "lora",
        "methods": {"prompt": {"accuracy": 0.6, "macro_f1": 0.55},
                    "head": {"accuracy": 0.7, "macro_f1": 0.68},
                    "lora": {"accuracy": 0.85, "macro_f1": 0.84}},
        "test": metrics(0.875, 0.87, [[18, 2], [3, 17]] if with_confusion else None,
                        [0.88, 0.86]),
        "zero_shot_test": metrics(0.5, 0.42, [[20, 0], [20, 0]] if with_confusion else None,
                                  [0.67, 0.0]),
        "mcnemar": {"only_first_right": 16.0, "only_second_right": 1.0, "p_value": 0.000274},
        "adapter": "/tmp/adapter.gguf", "job": "job-1", "seconds": 90.0,
    }


def classifier(with_confusion: bool) -> int:
    emit({"event": "stage", "stage": "zero_shot", "message": "Scoring zero-shot"})
    for method, f1 in (("prompt", 0.55), ("head", 0.68)):
        emit({"event": "progress", "method": method, "done": 20, "total": 40})
        emit({"event": "evaluated", "method": method, "split": "validation",
              "accuracy": f1 + 0.05, "macro_f1": f1, "loss": None})
    lora_steps()
    emit({"event": "evaluated", "method": "lora", "split": "validation", "accuracy": 0.85,
          "macro_f1": 0.84, "loss": 0.7})
    emit({"event": "stage", "stage": "testing", "message": "Testing on the test split"})
    emit({"event": "finished", "report": classifier_report(with_confusion)})
    return 0


def chat() -> int:
    lora_steps()
    emit({"event": "finished", "report": {
        "name": trained_name(), "kind": "model", "method": "lora",
        "methods": {"lora": {"loss": 1.1}}, "test": {"loss": 1.2},
        "zero_shot_test": {"loss": 1.6}, "mcnemar": {}, "adapter": "/tmp/a.gguf",
        "job": "job-2", "seconds": 60.0}})
    return 0


def cancel() -> int:
    """Two steps, then wait: the view's SIGINT ends it (run() turns it into "cancelled")."""
    lora_steps(until=2)
    while True:
        time.sleep(0.02)


def main() -> int:
    scenario = sys.argv[1]
    emit({"event": "stage", "stage": "checking", "message": " ".join(sys.argv[2:])})
    if scenario in ("classifier", "per_label"):
        return classifier(with_confusion=scenario == "classifier")
    if scenario == "chat":
        return chat()
    if scenario == "cancel":
        return cancel()
    if scenario == "failed":
        print("Traceback: something deep went wrong", file=sys.stderr, flush=True)
        emit({"event": "failed", "message": "The label 'spam' has 1 example(s); training "
                                            "needs at least 4."})
        return 2
    print("Segmentation fault (core dumped)", file=sys.stderr, flush=True)
    return 139  # "crash": no event at all


def run() -> int:
    """main, and a Ctrl-C at any point is a cancelled run, as in `slmdesk train`: the view
    may cancel as soon as the first event arrives, while that event's emit still sleeps
    (the resume half of test_cancel_sends_sigint… failed that way in a CI run)."""
    try:
        return main()
    except KeyboardInterrupt:
        emit({"event": "cancelled", "job": "job-1"})
        return 130


if __name__ == "__main__":
    sys.exit(run())
