"""Fit estimates: the KV-cache arithmetic, verdicts, rough estimates, the memory refusal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slmdesk.catalog import fit
from slmdesk.catalog.curated import load_catalog
from slmdesk.catalog.fit import (
    GIB,
    MIB,
    MemoryBudget,
    check_fit,
    effective_context,
    estimate,
    estimate_for_entry,
    estimate_for_file,
    estimate_for_gguf,
    estimate_for_record,
)
from slmdesk.catalog.hub import HubFile
from slmdesk.engine.gguf import read_gguf
from slmdesk.errors import NotEnoughMemoryError
from slmdesk.store.db import open_database
from tests.gguf_factory import GGML_F32, Typed, write_gguf

PLENTY = MemoryBudget(total_ram=64 * GIB, available_ram=48 * GIB)


def _gguf(tmp_path: Path, **extra: object) -> Path:
    """A tiny valid llama GGUF: 4 layers, embedding 64, 8 heads, 2 KV heads, vocab 10."""
    path = tmp_path / "tiny.gguf"
    meta: dict[str | bytes, object] = {
        "general.architecture": "llama",
        "general.name": "Tiny",
        "llama.context_length": 4096,
        "llama.block_count": 4,
        "llama.embedding_length": 64,
        "llama.attention.head_count": 8,
        "llama.attention.head_count_kv": 2,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": [f"t{i}" for i in range(10)],
        **extra,
    }
    write_gguf(path, metadata=meta, tensors=[("token_embd.weight", (64, 10), GGML_F32)])
    return path


def test_kv_cache_is_k_and_v_for_every_layer_and_token() -> None:
    # SmolLM2-135M: 30 layers, 576 wide, 9 heads, 3 KV heads -> 2*30*4096*192*2 bytes = 90 MiB
    est = estimate(weights_bytes=96_576_768, n_layers=30, n_embd=576, n_head=9, n_head_kv=3,
                   context=4096, n_vocab=49152, budget=PLENTY)
    assert est.kv == 2 * 30 * 4096 * 3 * 64 * 2 == 90 * MIB
    assert est.total == est.weights + est.kv + est.overhead
    # What is resident at load leaves out only the prompt scratch.
    assert est.weights + est.kv < est.at_load < est.total
    assert est.verdict == "fits"
    # The KV cache doubles with the context, the weights do not.
    bigger = estimate(weights_bytes=96_576_768, n_layers=30, n_embd=576, n_head=9, n_head_kv=3,
                      context=8192, n_vocab=49152, budget=PLENTY)
    assert bigger.kv == 2 * est.kv and bigger.weights == est.weights
    # Quantized KV (q8_0 is about one byte per element) halves it.
    q8 = estimate(weights_bytes=1, n_layers=30, n_embd=576, n_head=9, n_head_kv=3,
                  context=4096, kv_bytes_per_element=1, budget=PLENTY)
    assert q8.kv == est.kv // 2


def test_verdicts_against_the_budget() -> None:
    def at(available: int) -> str:
        budget = MemoryBudget(total_ram=available * 2, available_ram=available)
        return estimate(weights_bytes=GIB, n_layers=16, n_embd=2048, n_head=32, n_head_kv=8,
                        context=4096, budget=budget).verdict

    need = estimate(weights_bytes=GIB, n_layers=16, n_embd=2048, n_head=32, n_head_kv=8,
                    context=4096, budget=PLENTY).total
    assert at(need * 2) == "fits"
    assert at(int(need / 0.9)) == "tight"
    assert at(need - 1) == "wont_fit"
    # Memory the current model gives back when it is unloaded counts as available.
    small = MemoryBudget(total_ram=need, available_ram=need // 2)

    def with_reclaimable(reclaimable: int) -> str:
        return estimate(weights_bytes=GIB, n_layers=16, n_embd=2048, n_head=32, n_head_kv=8,
                        context=4096, budget=small, reclaimable=reclaimable).verdict

    assert with_reclaimable(0) == "wont_fit"
    assert with_reclaimable(need - need // 2) == "tight"


def test_gpu_budget_compares_with_gpu_memory() -> None:
    budget = MemoryBudget(total_ram=64 * GIB, available_ram=60 * GIB,
                          total_vram=8 * GIB, free_vram=512 * MIB)
    est = estimate(weights_bytes=GIB, n_layers=16, n_embd=2048, n_head=32, n_head_kv=8,
                   context=4096, budget=budget)
    assert est.where == "GPU memory" and est.available == 512 * MIB
    assert est.verdict == "wont_fit"
    assert "of GPU memory is available" in est.sentence


def test_estimate_from_a_gguf_uses_its_numbers(tmp_path: Path) -> None:
    info = read_gguf(_gguf(tmp_path))
    est = estimate_for_gguf(info, 1024, budget=PLENTY)
    assert not est.rough
    assert est.weights == info.size_bytes - info.tensor_data_offset
    assert est.kv == 2 * 4 * 1024 * 2 * (64 // 8) * 2
    # An explicit head size (Gemma: key_length 256) wins over embedding / heads.
    gemma_like = read_gguf(_gguf(tmp_path, **{"llama.attention.key_length": Typed(4, 32)}))
    assert estimate_for_gguf(gemma_like, 1024, budget=PLENTY).kv == 2 * 4 * 1024 * 2 * 32 * 2


def test_rough_estimate_without_the_shape(tmp_path: Path) -> None:
    path = tmp_path / "shapeless.gguf"
    write_gguf(path, metadata={"general.architecture": "llama"},
               tensors=[("token_embd.weight", (64, 10), GGML_F32)])
    est = estimate_for_gguf(read_gguf(path), 2048, budget=PLENTY)
    assert est.rough
    assert "rough" in est.sentence


def test_every_catalog_entry_gets_an_estimate_that_grows_with_size() -> None:
    entries = load_catalog()
    ests = {e.id: estimate_for_entry(e, 4096, budget=PLENTY) for e in entries}
    assert all(not est.rough for est in ests.values())
    assert ests["smollm2-135m-instruct-q4_1"].total < ests["smollm2-360m-instruct-q8_0"].total
    assert ests["llama-3.2-1b-instruct-q4_k_m"].total < ests["llama-3.2-3b-instruct-q4_k_m"].total
    # The context is capped by what the model was trained for.
    tiny = next(e for e in entries if e.id == "smollm2-135m-instruct-q4_1")
    assert estimate_for_entry(tiny, 100_000, budget=PLENTY).context == 8192


def test_hub_file_estimate_uses_the_catalog_when_it_can() -> None:
    catalog = load_catalog()
    known = HubFile("bartowski/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
                    "a" * 40, 807_694_464, None, "Q4_K_M", "llama")
    est = estimate_for_file(known, 4096, budget=PLENTY, catalog=catalog)
    assert not est.rough and est.weights == 807_694_464
    unknown = HubFile("someone/Other-GGUF", "other-Q4_K_M.gguf", "a" * 40, 500_000_000,
                      None, "Q4_K_M", None)
    rough = estimate_for_file(unknown, 4096, budget=PLENTY, catalog=catalog)
    assert rough.rough and rough.weights == 500_000_000


def test_effective_context_matches_the_engine() -> None:
    assert effective_context(4096, 8192) == 4096
    assert effective_context(4096, 2048) == 2048
    assert effective_context(4096, None) == 4096
    assert effective_context(100, 100) == 256


def test_memory_refusal_with_the_numbers_and_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slmdesk.catalog.registry import import_model

    db = open_database(tmp_path / "t.db")
    record = import_model(db, _gguf(tmp_path))
    # The machine "has" 1 MiB free: every real model is refused.
    monkeypatch.setattr(fit, "system_memory",
                        lambda: MemoryBudget(total_ram=2 * MIB, available_ram=MIB))
    with pytest.raises(NotEnoughMemoryError) as info:
        check_fit(record, 1024)
    message = info.value.message
    assert message.startswith("Not enough memory for Tiny: it needs about ")
    assert "KV cache" in message and "at 1,024 tokens" in message
    assert "only 1 MiB of RAM is available" in message and "--force" in message
    # Overridden: the estimate comes back, verdict unchanged.
    est = check_fit(record, 1024, force=True)
    assert est.verdict == "wont_fit"
    # With enough memory nothing is refused; a GGUFInfo works as well as a record.
    monkeypatch.setattr(fit, "system_memory", lambda: PLENTY)
    assert check_fit(record, 1024).verdict == "fits"
    assert check_fit(read_gguf(record.path), 1024).verdict == "fits"
    db.close()


def test_record_estimate_without_the_file_uses_stored_numbers(tmp_path: Path) -> None:
    from slmdesk.catalog.registry import import_model

    db = open_database(tmp_path / "t.db")
    path = _gguf(tmp_path)
    record = import_model(db, path)
    on_disk = estimate_for_record(record, 1024, budget=PLENTY)
    path.unlink()
    stored = estimate_for_record(record, 1024, budget=PLENTY)
    assert not stored.rough
    assert stored.kv == on_disk.kv
    db.close()


def test_a_load_whose_memory_cannot_be_told_apart_is_not_measured() -> None:
    from slmdesk.engine.llama_engine import meaningful_growth

    weights = 80 * 2**20
    assert meaningful_growth(95 * 2**20, weights, offloaded_layers=0) == 95 * 2**20
    # Memory freed during the load (a previous model) or pages already mapped: not 0.
    assert meaningful_growth(0, weights, offloaded_layers=0) is None
    assert meaningful_growth(-5 * 2**20, weights, offloaded_layers=0) is None
    assert meaningful_growth(10 * 2**20, weights, offloaded_layers=0) is None
    # With layers on a GPU the RAM growth may be small, but not nothing.
    assert meaningful_growth(10 * 2**20, weights, offloaded_layers=31) == 10 * 2**20
    assert meaningful_growth(0, weights, offloaded_layers=31) is None


def test_not_measured_is_said_in_words_never_as_zero(tmp_path: Path) -> None:
    from slmdesk.catalog.fit import accuracy_note
    from slmdesk.store.models import ModelRepository

    assert accuracy_note(200 * 2**20, None) is None
    assert accuracy_note(200 * 2**20, 0) is None
    db = open_database(tmp_path / "t.db")
    repo = ModelRepository(db)
    record = repo.add(
        name="m", path=str(tmp_path / "m.gguf"), size_bytes=1, architecture="llama",
        quantization=None, parameter_count=None, context_length=None, licence=None,
        source="import",
    )
    repo.record_memory(record.id, estimated=200 * 2**20, measured=0, context=1024)
    stored = repo.get(record.id)
    assert stored.measured_memory_bytes is None and stored.last_loaded_at is not None
    db.close()


def test_the_accuracy_note_says_which_way_the_estimate_was_off() -> None:
    """The estimate is judged: above the measurement it was high, below it low (issue 16:
    "estimated 207, measured 202 (2 % over)" read as the measurement being over)."""
    from slmdesk.catalog.fit import accuracy_note

    mib = 2**20
    assert accuracy_note(207 * mib, 202 * mib, 4096) == (
        "202 MiB once loaded at 4,096 tokens (estimated 207 MiB, 2 % high)")
    assert accuracy_note(180 * mib, 200 * mib, 512) == (
        "200 MiB once loaded at 512 tokens (estimated 180 MiB, 10 % low)")
    assert accuracy_note(200 * mib + 1, 200 * mib) == "200 MiB once loaded (as estimated)"
    assert accuracy_note(None, 200 * mib, 512) == "200 MiB once loaded at 512 tokens"


def test_the_cell_and_the_sentence_give_the_same_figure() -> None:
    from slmdesk.catalog.fit import MemoryBudget, estimate, format_bytes

    est = estimate(weights_bytes=100 * 2**20 + 654_321, n_layers=30, n_embd=576, n_head=9,
                   n_head_kv=3, context=4096, n_vocab=49152,
                   budget=MemoryBudget(total_ram=16 * 2**30, available_ram=8 * 2**30))
    figure = format_bytes(est.total)
    assert est.figure == est.total and est.measured is None
    assert est.cell == f"fits · {figure}"
    assert est.sentence.startswith(f"Fits: needs about {figure} at 4,096 tokens (estimated: ")
    # One total only: the parts are named as parts, the at-load figure is not shown.
    assert "once loaded" not in est.sentence
    assert format_bytes(est.at_load) not in est.sentence.replace(figure, "")


def test_a_measured_load_gives_the_one_figure_and_the_verdict() -> None:
    """Issue 16, defect 6: "fits · 251 MiB" beside "208 MiB once loaded". With a load
    measured at the same context, the figure is the measurement plus what a long prompt
    adds, and the verdict is judged on it; at another context the estimate stays."""
    from slmdesk.catalog.fit import MemoryBudget, estimate, format_bytes, with_measurement

    mib = 2**20
    est = estimate(weights_bytes=100 * mib, n_layers=30, n_embd=576, n_head=9, n_head_kv=3,
                   context=4096, n_vocab=49152,
                   budget=MemoryBudget(total_ram=16 * 2**30, available_ram=8 * 2**30))
    prompt_part = est.total - est.at_load
    measured = with_measurement(est, 150 * mib, 4096)
    assert measured.measured == 150 * mib and measured.figure == 150 * mib + prompt_part
    figure = format_bytes(measured.figure)
    assert measured.cell == f"fits · {figure}" and measured.total_bytes == measured.figure
    assert measured.sentence.startswith(
        f"Fits: needs about {figure} at 4,096 tokens (measured when it was last loaded")
    assert measured.to_json()["figure"] == measured.figure
    # Another context, or nothing measured: the estimate unchanged.
    assert with_measurement(est, 150 * mib, 2048) is est
    assert with_measurement(est, None, 4096) is est
    # The verdict follows the figure: available memory between the estimate and the
    # measured figure turns "won't fit" into a fit.
    squeezed = dataclasses.replace(est, available=est.total - mib, verdict="wont_fit")
    assert with_measurement(squeezed, est.at_load - 60 * mib, 4096).verdict != "wont_fit"
    heavy = with_measurement(est, est.available, 4096)
    assert heavy.verdict == "wont_fit"


def test_a_record_uses_its_measurement_in_the_estimate_and_the_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slmdesk.catalog.registry import import_model
    from slmdesk.store.models import ModelRepository

    db = open_database(tmp_path / "t.db")
    record = import_model(db, _gguf(tmp_path))
    plain = estimate_for_record(record, 1024, budget=PLENTY)
    ModelRepository(db).record_memory(record.id, estimated=plain.at_load,
                                      measured=plain.at_load + 5 * MIB, context=1024)
    record = ModelRepository(db).get(record.id)
    measured = estimate_for_record(record, 1024, budget=PLENTY)
    assert measured.figure == plain.total + 5 * MIB
    assert estimate_for_record(record, 512, budget=PLENTY).measured is None
    monkeypatch.setattr(fit, "system_memory",
                        lambda: MemoryBudget(total_ram=2 * MIB, available_ram=MIB))
    with pytest.raises(NotEnoughMemoryError) as info:
        check_fit(record, 1024)
    assert f"it needs about {fit.format_bytes(measured.figure)} at 1,024 tokens (measured " \
        in info.value.message
    db.close()
