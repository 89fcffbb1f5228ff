"""Soak: 200 consecutive stored chat generations and 2,000 classifications in one process
with the real 135M model. Resident memory after warm-up grows by less than 5%; speed is
recorded (first vs last quarter) and only a gross slowdown fails.

Why speed is not held to the issue's 10%: wall-clock time on shared CI machines varies
by more than that from one minute to the next, and this suite keeps timing thresholds out
of its tests. The ratio is printed and written to bench/results/soak.json (and the test's
tmp dir) for people and benchmarks to follow; the test fails only past 3x, which noise
cannot produce but a leak that makes each call slower (a growing cache, a list walked per
token) does. Memory is not noisy: the same work in the same process should need the same
pages. Marked ``soak``: CI runs it in its own pytest invocation (see .ci/run).
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from slmdesk.engine.params import LoadParams, SamplingParams

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.soak]

GENERATIONS = int(os.environ.get("SLMDESK_SOAK_GENERATIONS", "200"))
CLASSIFICATIONS = int(os.environ.get("SLMDESK_SOAK_CLASSIFICATIONS", "2000"))
WARM_UP = 0.1  # the first tenth of each phase fills caches, allocator pools and page tables
MAX_MEMORY_GROWTH = 0.05
GROSS_SLOWDOWN = 3.0
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "soak.json"

PROMPTS = [
    "Say hello.", "Name a colour.", "What is 2 + 2?", "Name a fruit.", "Say goodbye.",
    "Name an animal.", "What day follows Monday?", "Name a country.", "Say thanks.",
    "Name a planet.",
]
TEXTS = [
    "I love it.", "This is awful.", "Great value, works well.", "Broke after a day.",
    "Best purchase ever.", "Terrible support.", "Very happy with it.", "Not worth it.",
    "Wonderful film.", "Boring and too long.",
]


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _quarters(durations: list[float]) -> dict[str, float]:
    quarter = max(1, len(durations) // 4)
    first = statistics.fmean(durations[:quarter])
    last = statistics.fmean(durations[-quarter:])
    return {"first_quarter_mean_s": first, "last_quarter_mean_s": last,
            "last_over_first": last / first}


def test_soak_generations_and_classifications(model_path: Path, tmp_path: Path) -> None:
    from slmdesk.chat import ChatService, ReplyWriter
    from slmdesk.classify import Classifier, ClassifierSpec, Label
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.paths import get_paths
    from slmdesk.store.chats import ChatRepository
    from slmdesk.store.db import open_database
    from slmdesk.store.models import ModelRepository

    db = open_database(get_paths().ensure().database)
    from slmdesk.catalog.registry import ensure_starter_model

    model = ensure_starter_model(db) or ModelRepository(db).list()[0]
    service = ChatService(db)
    chats = ChatRepository(db)
    engine = LlamaEngine()
    engine.load(model_path, LoadParams(max_context=1024, n_threads=1))
    sampling = SamplingParams(temperature=0.7, seed=7, max_tokens=12)
    report: dict[str, Any] = {"generations": GENERATIONS, "classifications": CLASSIFICATIONS}
    try:
        # -- generations: each a stored turn in a fresh conversation, as the app does it.
        durations: list[float] = []
        tokens = 0
        rss_warm = 0
        for i in range(GENERATIONS):
            if i == int(GENERATIONS * WARM_UP):
                rss_warm = _rss()
            started = time.perf_counter()
            conversation = service.new_conversation(model=model, sampling=sampling)
            turn = service.start_turn(conversation, PROMPTS[i % len(PROMPTS)], model=model,
                                      sampling=sampling)
            writer = ReplyWriter(chats, turn.reply.id)
            result = engine.stream_chat(turn.history, turn.sampling, on_text=writer.append)
            message = writer.finish(result, model=model)
            durations.append(time.perf_counter() - started)
            assert message.content == result.text and message.status == "complete"
            tokens += result.completion_tokens
        rss_end = _rss()
        report["generation"] = {
            **_quarters(durations), "tokens": tokens,
            "rss_after_warm_up": rss_warm, "rss_end": rss_end,
            "rss_growth": (rss_end - rss_warm) / rss_warm,
        }
        assert chats.count_conversations() == GENERATIONS
        assert tokens > GENERATIONS  # they really generated

        # -- classifications: one text at a time, two short labels.
        # Completion-style prompts: the same scoring path as chat style (shared KV-cached
        # prefix, label continuations) with fewer tokens per text, to fit CI's time.
        classifier = Classifier(engine, ClassifierSpec(
            labels=(Label("positive"), Label("negative")), calibration="none",
            prompt_style="completion"))
        durations = []
        labels = []
        for i in range(CLASSIFICATIONS):
            if i == int(CLASSIFICATIONS * WARM_UP):
                rss_warm = _rss()
            started = time.perf_counter()
            labels.append(classifier.classify(TEXTS[i % len(TEXTS)]).label)
            durations.append(time.perf_counter() - started)
        rss_end = _rss()
        report["classification"] = {
            **_quarters(durations), "rss_after_warm_up": rss_warm, "rss_end": rss_end,
            "rss_growth": (rss_end - rss_warm) / rss_warm,
        }
        # Deterministic scoring: the same text gets the same label every time.
        for k in range(len(TEXTS)):
            assert len(set(labels[k :: len(TEXTS)])) == 1
    finally:
        engine.unload()
        db.close()

    text = json.dumps(report, indent=2)
    print("\nsoak:", text)
    (tmp_path / "soak.json").write_text(text, encoding="utf-8")
    if RESULTS.parent.is_dir():
        RESULTS.write_text(text, encoding="utf-8")
    for phase in ("generation", "classification"):
        growth = report[phase]["rss_growth"]
        assert growth < MAX_MEMORY_GROWTH, f"{phase}: resident memory grew {growth:.1%}"
        ratio = report[phase]["last_over_first"]
        assert ratio < GROSS_SLOWDOWN, f"{phase}: last quarter {ratio:.2f}x the first"
