"""Server figures: `slmdesk serve`'s overhead over its engine, its throughput against
llama-server, and classification through a remote engine.

    python -m bench.server [--rounds 3] [--tokens 128] [--threads N] [--clients 1,2,4]

Overhead: both sides use the same loaded engine (the server's), the same prompt, the same
sampling and the same threads, interleaved round by round, with the KV cache cleared before
each run so that both process the whole prompt. Direct: ``LlamaEngine.stream_chat`` on the
engine thread. Served: the official ``openai`` client streaming /v1/chat/completions on
127.0.0.1 (goal: tokens/s ratio >= 0.95). Throughput and remote classification:
bench/server_load.py. The server runs as `slmdesk serve` does by default: its engine decodes
up to ``server_parallel`` requests together, whatever the number of clients.
``./dev bench --only server`` runs all of them into latest.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.home import temporary_home
from bench.stats import median

Log = Callable[[str], None]
CLIENTS = (1, 2, 4)

PROMPT = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


def served_run(client: Any, model: str, n: int) -> tuple[float, float]:
    """(tokens/s after the first token, time to first token) through the server."""
    started = time.perf_counter()
    first = last = None
    tokens = 0
    for chunk in client.chat.completions.create(
            model=model, messages=PROMPT, stream=True, max_tokens=n, temperature=0,
            stream_options={"include_usage": True},
            extra_body={"repeat_penalty": 1.0, "min_p": 0.0}):
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = first or now
            last = now
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    assert first is not None and last is not None and tokens > 1
    return (tokens - 1) / max(last - first, 1e-9), first - started


def overhead_figures(server: Any, model_name: str, threads: int | None, rounds: int,
                     tokens: int, log: Log) -> dict[str, Any]:
    """Streamed tokens/s and time to first token: served ÷ the server's engine directly."""
    from openai import OpenAI

    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import GenerationResult
    from slmdesk.settings import Settings

    sampling = Settings().sampling.merged(temperature=0, max_tokens=tokens,
                                          repeat_penalty=1.0, min_p=0.0)
    client = OpenAI(base_url=server.base_url, api_key="none", max_retries=0)

    def direct(engine: LlamaEngine) -> GenerationResult:
        return engine.stream_chat(PROMPT, sampling)

    direct_tps, direct_ttft, served_tps, served_ttft = [], [], [], []
    for _ in range(rounds):
        server.worker.call(lambda e: e.clear_cache())
        r = server.worker.call(direct)
        assert r.tokens_per_s and r.ttft_s is not None
        direct_tps.append(r.tokens_per_s)
        direct_ttft.append(r.ttft_s)
        server.worker.call(lambda e: e.clear_cache())
        tps, ttft = served_run(client, model_name, tokens)
        served_tps.append(tps)
        served_ttft.append(ttft)
    log(f"model {model_name}, {tokens} tokens, threads {threads}, {rounds} rounds (medians)")
    log(f"direct  {median(direct_tps):7.1f} tok/s  ttft {median(direct_ttft) * 1000:7.1f} ms")
    log(f"served  {median(served_tps):7.1f} tok/s  ttft {median(served_ttft) * 1000:7.1f} ms")
    out = {
        "server_direct_tokens_per_s": median(direct_tps),
        "server_streamed_tokens_per_s": median(served_tps),
        "server_overhead_ratio": median(served_tps) / median(direct_tps),
        "server_ttft_ratio": median(served_ttft) / median(direct_ttft),
    }
    log(f"server_overhead_ratio (tok/s served / direct, goal >= 0.95): "
        f"{out['server_overhead_ratio']:.3f}")
    log(f"server_ttft_ratio (served / direct): {out['server_ttft_ratio']:.3f}")
    return out


def run(*, threads: int | None, rounds: int, tokens: int, clients: Sequence[int] = CLIENTS,
        classify_texts: int = 40, classify_task: str = "r8", log: Log = print
        ) -> dict[str, Any]:
    """Every server figure (overhead, throughput vs llama-server, remote classification),
    with `slmdesk serve` on a temporary home; ``threads`` None: the engine's choice, which
    llama-server then gets too."""
    from bench import server_load
    from slmdesk.catalog.registry import resolve_model
    from slmdesk.server.config import ServerConfig
    from slmdesk.server.models import LoadOptions
    from slmdesk.server.runner import LocalServer
    from slmdesk.startup import open_core

    with temporary_home("slmdesk-bench-server-"):
        core = open_core()
        model = resolve_model(core.db)
        core.db.close()
        server = LocalServer(ServerConfig(port=0, queue_size=max(8, max(clients))), model,
                             load_options=LoadOptions(n_threads=threads)).start()
        try:
            info = server.worker.engine.info
            used = info.n_threads if info is not None else threads
            assert used is not None
            out: dict[str, Any] = {"server_threads": used, "server_model": model.name,
                                   "server_parallel": server.worker.engine.parallel_sequences}
            out.update(overhead_figures(server, model.name, used, rounds, tokens, log))
            log(f"throughput: {', '.join(map(str, clients))} concurrent clients, "
                f"{tokens}-token replies, slmdesk serve vs llama-server --parallel N")
            out.update(server_load.throughput_figures(
                server.base_url, model.name, Path(model.path), threads=used, rounds=rounds,
                max_tokens=tokens, clients=clients, log=log))
        finally:
            server.stop()
        if classify_texts <= 0:
            log("remote classification: skipped (--server-texts 0)")
            return out
        log(f"remote classification: {classify_task} texts (a stratified sample of about "
            f"{classify_texts}) through llama-server (RemoteClassifier) vs the local classifier")
        out.update(server_load.remote_classify_figures(
            Path(model.path), threads=used, rounds=rounds, n_texts=classify_texts,
            concurrency=clients, task_name=classify_task, log=log))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clients", default="1,2,4",
                        help="concurrent clients (and remote classification concurrency)")
    parser.add_argument("--classify-texts", type=int, default=40)
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    out = run(threads=args.threads, rounds=args.rounds, tokens=args.tokens,
              clients=parse_clients(args.clients), classify_texts=args.classify_texts)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def parse_clients(text: str) -> tuple[int, ...]:
    """"1,2,4" -> (1, 2, 4): distinct positive counts, ascending."""
    counts = sorted({int(part) for part in text.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise ValueError(f"client counts must be positive integers: {text!r}")
    return tuple(counts)


if __name__ == "__main__":
    raise SystemExit(main())
