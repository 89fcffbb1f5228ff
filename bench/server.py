"""Server overhead: streamed tokens/s and time to first token through `slmdesk serve` ÷ direct.

    python -m bench.server [--rounds 3] [--tokens 128] [--threads N]

Both sides use the same loaded engine (the server's), the same prompt, the same sampling and
the same threads, interleaved round by round, with the KV cache cleared before each run so
that both process the whole prompt. Direct: ``LlamaEngine.stream_chat`` on the engine
thread. Served: the official ``openai`` client streaming /v1/chat/completions on 127.0.0.1.
Prints the ratios of the medians (goal: tokens/s ratio >= 0.95).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from bench.stats import median

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    os.environ["SLMDESK_HOME"] = tempfile.mkdtemp(prefix="slmdesk-bench-server-")

    from openai import OpenAI

    from slmdesk.catalog.registry import resolve_model
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import GenerationResult
    from slmdesk.server.config import ServerConfig
    from slmdesk.server.models import LoadOptions
    from slmdesk.server.runner import LocalServer
    from slmdesk.settings import Settings
    from slmdesk.startup import open_core

    core = open_core()
    model = resolve_model(core.db)
    core.db.close()
    sampling = Settings().sampling.merged(temperature=0, max_tokens=args.tokens,
                                          repeat_penalty=1.0, min_p=0.0)
    server = LocalServer(ServerConfig(port=0), model,
                         load_options=LoadOptions(n_threads=args.threads)).start()
    client = OpenAI(base_url=server.base_url, api_key="none", max_retries=0)

    def direct(engine: LlamaEngine) -> GenerationResult:
        return engine.stream_chat(PROMPT, sampling)

    direct_tps, direct_ttft, served_tps, served_ttft = [], [], [], []
    try:
        for _ in range(args.rounds):
            server.worker.call(lambda e: e.clear_cache())
            r = server.worker.call(direct)
            assert r.tokens_per_s and r.ttft_s is not None
            direct_tps.append(r.tokens_per_s)
            direct_ttft.append(r.ttft_s)
            server.worker.call(lambda e: e.clear_cache())
            tps, ttft = served_run(client, model.name, args.tokens)
            served_tps.append(tps)
            served_ttft.append(ttft)
    finally:
        server.stop()
    threads = server.worker.engine.info.n_threads if server.worker.engine.info else args.threads
    print(f"model {model.name}, {args.tokens} tokens, threads {threads}, "
          f"{args.rounds} rounds (medians)")
    print(f"direct  {median(direct_tps):7.1f} tok/s  ttft {median(direct_ttft) * 1000:7.1f} ms")
    print(f"served  {median(served_tps):7.1f} tok/s  ttft {median(served_ttft) * 1000:7.1f} ms")
    print(f"server_overhead_ratio (tok/s served / direct, goal >= 0.95): "
          f"{median(served_tps) / median(direct_tps):.3f}")
    print(f"server_ttft_ratio (served / direct): {median(served_ttft) / median(direct_ttft):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
