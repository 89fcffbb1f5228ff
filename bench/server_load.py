"""Server figures under load: chat throughput with concurrent clients (`slmdesk serve` ÷
llama-server --parallel N) and batch classification through a remote engine vs concurrency.

Both sides run the same model file with the same threads; rounds are interleaved (one round
of ours, then one of theirs) and each side's median is taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.stats import median

SUBJECTS = ("a lighthouse keeper", "a clockmaker", "a lost kite", "a river otter",
            "a night train", "a beekeeper", "an old map", "a snow leopard")

Log = Callable[[str], None]


def round_prompts(round_index: int, clients: int) -> list[list[dict[str, str]]]:
    """One chat request per client, each different, and different from every other round's,
    so that neither server answers from a cached prompt of an earlier request."""
    prompts = []
    for client in range(clients):
        subject = SUBJECTS[client % len(SUBJECTS)]
        prompts.append([{"role": "user", "content": f"Story {round_index}.{client}: write a "
                         f"long story about {subject}."}])
    return prompts


def aggregate_tokens_per_s(completion_tokens: Sequence[int], wall_s: float) -> float:
    """All clients' generated tokens ÷ the wall time from the first request to the last reply."""
    if wall_s <= 0:
        raise ValueError("wall time must be positive")
    return sum(completion_tokens) / wall_s


def concurrency_key(prefix: str, clients: int) -> str:
    """The latest.json key of a figure measured with ``clients`` at once (``..._c4``)."""
    return f"{prefix}_c{clients}"


def concurrent_round(client: Any, model: str, prompts: Sequence[list[dict[str, str]]],
                     max_tokens: int) -> float:
    """Send ``prompts`` at once (one thread each); aggregate completion tokens/s."""
    def ask(messages: list[dict[str, str]]) -> int:
        reply = client.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=0,
            extra_body={"repeat_penalty": 1.0, "min_p": 0.0})
        return int(reply.usage.completion_tokens)

    with ThreadPoolExecutor(len(prompts)) as pool:
        started = time.perf_counter()
        counts = list(pool.map(ask, prompts))
        wall = time.perf_counter() - started
    return aggregate_tokens_per_s(counts, wall)


def throughput_figures(ours_url: str, model_name: str, model_path: Path, *, threads: int,
                       rounds: int, max_tokens: int, clients: Sequence[int], log: Log
                       ) -> dict[str, Any]:
    """Aggregate tokens/s of ``clients`` concurrent chats: slmdesk serve ÷ llama-server with
    ``--parallel`` = clients (one llama-server per client count)."""
    from openai import OpenAI

    from bench.llama_server import LlamaServer

    ours_client = OpenAI(base_url=ours_url, api_key="none", max_retries=0, timeout=900)
    out: dict[str, Any] = {}
    for n in clients:
        ours, theirs = [], []
        with LlamaServer(model_path, threads=threads, parallel=n) as reference:
            their_client = OpenAI(base_url=reference.base_url, api_key="none", max_retries=0,
                                  timeout=900)
            concurrent_round(their_client, model_name, round_prompts(-1, n), 8)  # warm-up
            for r in range(rounds):
                prompts = round_prompts(r, n)
                ours.append(concurrent_round(ours_client, model_name, prompts, max_tokens))
                theirs.append(concurrent_round(their_client, "reference", prompts, max_tokens))
        out[concurrency_key("server_tokens_per_s", n)] = median(ours)
        out[concurrency_key("llama_server_tokens_per_s", n)] = median(theirs)
        out[concurrency_key("server_throughput_ratio", n)] = median(ours) / median(theirs)
        log(f"  {n} client(s): slmdesk serve {median(ours):7.1f} tok/s, llama-server "
            f"--parallel {n} {median(theirs):7.1f} tok/s, ratio "
            f"{out[concurrency_key('server_throughput_ratio', n)]:.3f}")
    return out


def classification_spec(task: Any) -> Any:
    """The task's classifier (labels, their descriptions and words, instructions), raw scores."""
    from slmdesk.classify.spec import ClassifierSpec, Label

    return ClassifierSpec(
        labels=tuple(Label(name, task.descriptions.get(name, ""),
                           task.verbalizers.get(name, ())) for name in task.labels),
        instructions=task.instructions, calibration="none")


def _texts_per_s(classify_many: Callable[[Sequence[str]], object], texts: Sequence[str]
                 ) -> float:
    started = time.perf_counter()
    classify_many(texts)
    return len(texts) / (time.perf_counter() - started)


def remote_classify_figures(model_path: Path, *, threads: int, rounds: int, n_texts: int,
                            concurrency: Sequence[int], task_name: str, log: Log
                            ) -> dict[str, Any]:
    """Texts/s of ``RemoteClassifier`` on llama-server (``--parallel`` = the highest
    concurrency) at each concurrency, and each ÷ the local classifier on the same texts."""
    from bench import data
    from bench.llama_server import LlamaServer
    from slmdesk.classify.classifier import Classifier
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams
    from slmdesk.engine.remote.client import RemoteEngine
    from slmdesk.remote.classify import RemoteClassifier

    task = data.load_task(task_name)
    texts = [t for t, _ in data.sample(task, n=n_texts, seed=0, max_chars=400)]
    spec = classification_spec(task)
    log(f"  {len(texts)} texts (at least {data.MIN_PER_CLASS} per class)")
    engine = LlamaEngine()
    engine.load(model_path, LoadParams(max_context=2048, n_threads=threads))
    local = Classifier(engine, spec)
    local_rates: list[float] = []
    remote_rates: dict[int, list[float]] = {c: [] for c in concurrency}
    try:
        with LlamaServer(model_path, threads=threads, parallel=max(concurrency)) as reference:
            remote = {c: RemoteClassifier(RemoteEngine(reference.base_url), spec,
                                          concurrency=c) for c in concurrency}
            remote[concurrency[0]].classify(texts[0])  # probe the engine, warm it up
            method = remote[concurrency[0]].method
            for _ in range(rounds):
                local_rates.append(_texts_per_s(local.classify_many, texts))
                for c in concurrency:
                    remote_rates[c].append(_texts_per_s(remote[c].classify_many, texts))
    finally:
        engine.unload()
    out: dict[str, Any] = {"remote_classify_method": method, "remote_classify_task": task_name,
                           "remote_classify_texts": len(texts),
                           "local_classify_per_s": median(local_rates)}
    for c in concurrency:
        out[concurrency_key("remote_classify_per_s", c)] = median(remote_rates[c])
        out[concurrency_key("remote_classify_ratio", c)] = (
            median(remote_rates[c]) / median(local_rates))
        log(f"  concurrency {c}: {median(remote_rates[c]):6.2f} texts/s through llama-server "
            f"({method}) vs {median(local_rates):6.2f} local, ratio "
            f"{out[concurrency_key('remote_classify_ratio', c)]:.3f}")
    return out
