"""The engine on the real SmolLM2-135M model through real llama-cpp-python."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from slmdesk.engine import llama_engine as engine_core
from slmdesk.engine import llama_state
from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.engine.params import LoadParams, SamplingParams
from slmdesk.errors import ContextOverflowError, ModelFileError
from slmdesk.settings import DEFAULT_SYSTEM_PROMPT

pytestmark = pytest.mark.model

SYSTEM = {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
GREEDY = SamplingParams(temperature=0, max_tokens=48)


def _long_text(words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    vocab = "river stone light quiet number garden window silver market paper cloud".split()
    return " ".join(rng.choice(vocab) for _ in range(words))


def test_load_reports_model_and_settings(engine: Any) -> None:
    info = engine.info
    assert info.architecture == "llama"
    assert info.n_ctx == 2048  # the cap from LoadParams, below the trained 8192
    assert info.n_ctx_train == 8192
    assert info.n_threads == 1
    assert info.n_gpu_layers == 0
    assert info.offloaded_layers == 0
    assert info.backend == "CPU"
    assert info.template_fallback is False
    assert info.quantization == "Q4_1"


def assert_a_reply(result: Any, pieces: list[str] | None = None) -> None:
    """What holds for any reply on any CPU: the words themselves do not (a 135M model's
    greedy reply flips with the processor's floating-point path, e.g. AVX2 vs AVX-512)."""
    assert result.error is None
    assert result.finish_reason in ("stop", "length")
    assert result.completion_tokens > 0
    assert result.text.strip()
    if pieces is not None:
        assert "".join(pieces) == result.text


def test_greedy_reply_streams_what_it_returns(engine: Any) -> None:
    pieces: list[str] = []
    result = engine.stream_chat(
        [SYSTEM, {"role": "user", "content": "What is the capital of France?"}],
        GREEDY,
        on_text=pieces.append,
    )
    assert_a_reply(result, pieces)
    assert len(pieces) >= 1
    assert result.completion_tokens <= GREEDY.max_tokens
    assert result.prompt_tokens > 10
    assert result.ttft_s is not None and result.ttft_s > 0


def test_greedy_reply_repeats_from_the_same_state(engine: Any) -> None:
    # Within one process and build, the same prompt from the same (empty) cache is the same
    # computation: greedy decoding repeats exactly. Across CPUs or builds it need not.
    messages = [SYSTEM, {"role": "user", "content": "Name three colours."}]
    engine.clear_cache()
    first = engine.stream_chat(messages, GREEDY)
    engine.clear_cache()
    second = engine.stream_chat(messages, GREEDY)
    assert_a_reply(first)
    assert second.text == first.text
    assert second.completion_tokens == first.completion_tokens


def test_the_model_prefers_the_right_answer_by_a_wide_margin(engine: Any) -> None:
    # "Answered sensibly" as a number, not words: after the question, the log-probability
    # of " Paris" over " Berlin". Measured margin (nats) on one AMD EPYC (Zen 4): native and
    # zen4 builds 9.83, haswell (AVX2) 9.67, sse42 9.72, x64 baseline 10.00 — a spread of 0.33
    # (docs/reliability.md); 2 nats leaves a wide margin for any correct build.
    prompt = engine.tokenize_prompt(engine.render(
        [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]
    ) + "The capital of France is")
    paris, berlin = engine.score_continuations(
        prompt, [([], engine.tokenize_piece(" Paris")), ([], engine.tokenize_piece(" Berlin"))]
    )
    assert paris - berlin > 2.0


def test_cancel_mid_stream_stops_within_one_token(engine: Any) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def on_text(_text: str) -> None:
        seen.append(1)
        if len(seen) == 5:
            cancel.set()

    result = engine.stream_chat(
        [SYSTEM, {"role": "user", "content": "Write a long story about a dragon."}],
        SamplingParams(temperature=0.8, seed=1, max_tokens=400),
        cancel=cancel,
        on_text=on_text,
    )
    assert result.finish_reason == "cancelled"
    # The cancel is seen before the next token is sampled.
    assert result.completion_tokens <= 6
    assert len(seen) == 5
    # The engine stays usable after a cancel.
    pieces: list[str] = []
    again = engine.stream_chat(
        [SYSTEM, {"role": "user", "content": "What is the capital of France?"}], GREEDY,
        on_text=pieces.append,
    )
    assert_a_reply(again, pieces)


def test_cancel_during_long_prompt_between_slices(engine: Any) -> None:
    cancel = threading.Event()
    progress: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        progress.append((done, total))
        cancel.set()  # cancel as soon as the first slice of the prompt is done

    engine.reset_perf()
    result = engine.stream_chat(
        [SYSTEM, {"role": "user", "content": _long_text(900, seed=1)}],
        GREEDY,
        cancel=cancel,
        on_prompt_progress=on_progress,
    )
    assert result.finish_reason == "cancelled"
    assert result.completion_tokens == 0
    total = progress[0][1]
    assert total > 600
    assert len(progress) == 1
    # llama.cpp's own counter: only one slice of the prompt was processed.
    assert engine.perf_counts()["n_p_eval"] <= engine_core.PROMPT_SLICE


def test_cancel_inside_a_decode_uses_llamas_abort_callback(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One huge slice: only llama.cpp's abort callback can stop it part-way.
    monkeypatch.setattr(llama_state, "PROMPT_SLICE", 100_000)
    cancel = threading.Event()
    first_batch = threading.Event()
    messages = [SYSTEM, {"role": "user", "content": _long_text(1400, seed=2)}]
    tokens, _ = engine.fit_messages(messages, 48)
    engine.reset_perf()
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    result = engine.stream_chat(messages, GREEDY, cancel=cancel)
    timer.cancel()
    first_batch.set()
    assert result.finish_reason == "cancelled"
    assert result.completion_tokens == 0
    # Fewer prompt tokens were decoded than the prompt holds.
    assert engine.perf_counts()["n_p_eval"] < len(tokens)
    pieces: list[str] = []
    again = engine.stream_chat(
        [SYSTEM, {"role": "user", "content": "What is the capital of France?"}], GREEDY,
        on_text=pieces.append,
    )
    assert_a_reply(again, pieces)


def test_same_seed_same_reply_other_seed_other_reply(model_path: Path) -> None:
    eng = LlamaEngine()
    eng.load(model_path, LoadParams(max_context=1024, n_threads=1))
    try:
        msgs = [SYSTEM, {"role": "user", "content": "Tell me a short poem about the sea."}]
        sp = SamplingParams(temperature=1.0, top_p=0.95, seed=1234, max_tokens=40)
        a = eng.stream_chat(msgs, sp).text
        eng.stream_chat([SYSTEM, {"role": "user", "content": "Something else."}], GREEDY)
        b = eng.stream_chat(msgs, sp).text
        others = {eng.stream_chat(msgs, sp.merged(seed=s)).text for s in (1, 2, 3)}
    finally:
        eng.unload()
    assert a == b
    assert len(a) > 20
    assert others - {a}, "three other seeds all gave the same reply"


def test_follow_up_turn_reuses_the_kv_cache(engine: Any) -> None:
    history = [SYSTEM, {"role": "user", "content": _long_text(300, seed=3)}]
    first = engine.stream_chat(history, GREEDY)
    history += [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "Summarise that in three words."},
    ]
    engine.reset_perf()
    second = engine.stream_chat(history, GREEDY)
    evaluated = engine.perf_counts()["n_p_eval"]
    # llama.cpp itself counts the prompt tokens it processed: only the new part
    # (its counter may include one extra token of bookkeeping).
    assert second.prompt_tokens_evaluated <= evaluated <= second.prompt_tokens_evaluated + 1
    assert second.prompt_tokens > first.prompt_tokens + 10
    assert evaluated < second.prompt_tokens - first.prompt_tokens + first.completion_tokens + 2
    assert evaluated < second.prompt_tokens / 3


def test_stop_strings_end_the_reply_and_are_not_shown(engine: Any) -> None:
    msgs = [SYSTEM, {"role": "user", "content": "Write a long story about a dragon."}]
    full = engine.stream_chat(msgs, SamplingParams(temperature=0, max_tokens=60)).text
    words = full.split()
    assert len(words) > 12
    stop = " ".join(words[8:10])  # a multi-token stop string from the middle of the reply
    pieces: list[str] = []
    result = engine.stream_chat(
        msgs, SamplingParams(temperature=0, max_tokens=60, stop=(stop,)), on_text=pieces.append
    )
    assert result.finish_reason == "stop"
    assert result.text == full[: full.index(stop)]
    assert "".join(pieces) == result.text  # nothing of the stop string was streamed


def test_max_tokens_gives_length(engine: Any) -> None:
    result = engine.stream_chat(
        [SYSTEM, {"role": "user", "content": "Write a long story about a dragon."}],
        SamplingParams(temperature=0, max_tokens=5),
    )
    assert result.finish_reason == "length"
    assert result.completion_tokens == 5


def test_single_message_longer_than_context_is_a_clear_error(model_path: Path) -> None:
    eng = LlamaEngine()
    eng.load(model_path, LoadParams(max_context=512, n_threads=1))
    try:
        with pytest.raises(ContextOverflowError, match="context holds 512"):
            eng.stream_chat([{"role": "user", "content": _long_text(2000)}], GREEDY)
    finally:
        eng.unload()


def test_overflowing_conversation_drops_oldest_turns_keeps_system(model_path: Path) -> None:
    eng = LlamaEngine()
    eng.load(model_path, LoadParams(max_context=512, n_threads=1))
    try:
        history: list[dict[str, str]] = [SYSTEM]
        for i in range(8):
            history += [
                {"role": "user", "content": f"Question {i}: " + _long_text(40, seed=i)},
                {"role": "assistant", "content": f"Answer {i}: " + _long_text(40, seed=99 + i)},
            ]
        history.append({"role": "user", "content": "What is the capital of France?"})
        result = eng.stream_chat(history, GREEDY)
        _tokens, dropped = eng.fit_messages(history, GREEDY.max_tokens)
    finally:
        eng.unload()
    assert result.dropped_messages > 0
    assert result.dropped_messages % 2 == 0  # whole turns go
    assert result.prompt_tokens <= 512 - 48
    assert any("left out" in n for n in result.notes)
    assert dropped == result.dropped_messages


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["truncated", "wrong_magic", "random", "huge_counts", "empty"])
def test_bad_files_give_user_facing_errors(model_path: Path, tmp_path: Path, kind: str) -> None:
    real = model_path.read_bytes()
    if kind == "truncated":
        data = real[: len(real) // 3]
    elif kind == "wrong_magic":
        data = b"GGML" + real[4:4096]
    elif kind == "random":
        data = random.Random(7).randbytes(65536)
    elif kind == "huge_counts":
        huge = (2**62).to_bytes(8, "little")
        data = real[:8] + huge + huge + real[24:4096]
    else:
        data = b""
    bad = _write(tmp_path / f"{kind}.gguf", data)
    eng = LlamaEngine()
    with pytest.raises(ModelFileError) as info:
        eng.load(bad)
    assert bad.name in str(info.value)
    assert not eng.is_loaded


def test_missing_file_and_directory(tmp_path: Path) -> None:
    eng = LlamaEngine()
    with pytest.raises(ModelFileError, match="not found"):
        eng.load(tmp_path / "nope.gguf")
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(ModelFileError, match="directory"):
        eng.load(tmp_path / "dir.gguf")


def test_threads_default_to_physical_cores() -> None:
    from slmdesk.engine.params import physical_cores

    cores = physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    assert LoadParams().resolved_threads() == cores


def test_fingerprint_matches_the_starters_recorded_reference(engine: Any) -> None:
    from slmdesk.catalog.curated import reference_for_file
    from slmdesk.engine.fingerprint import FingerprintCheck

    entry = reference_for_file(engine.gguf.size_bytes, engine.gguf.architecture)
    assert entry is not None and entry.fingerprint_logprob is not None
    assert entry.fingerprint_tolerance is not None
    engine.stream_chat([SYSTEM, {"role": "user", "content": "Hello"}], GREEDY)
    first = engine.fingerprint()
    assert engine.cached_tokens() == 0  # the next job starts from an empty cache
    check = FingerprintCheck(first, entry.fingerprint_logprob, entry.fingerprint_tolerance)
    assert check.ok, check.describe()
    assert 200 <= first.tokens <= 260
    # Same build, same batches: the same number to the last bit.
    assert engine.fingerprint() == first


def test_fingerprint_of_a_damaged_weight_block_is_far_off(
    engine: Any, model_path: Path, tmp_path: Path
) -> None:
    from slmdesk.engine.fingerprint import FingerprintCheck
    from tests.gguf_factory import damage_one_weight_block

    healthy = engine.fingerprint()
    damaged_path = tmp_path / "damaged.gguf"
    damage_one_weight_block(model_path, damaged_path)
    eng = LlamaEngine()
    eng.load(damaged_path, LoadParams(max_context=1024, n_threads=1))
    try:
        damaged = eng.fingerprint()
    finally:
        eng.unload()
    # Measured: -24.96 against -2.79 (one bit of one block of blk.0.ffn_down: its scale
    # 0.135 became 8872).
    check = FingerprintCheck(damaged, healthy.mean_logprob, 0.05)
    assert not check.ok, check.describe()


def test_hidden_states_leave_label_scores_as_they_were_and_the_prompt_cached(
    engine: LlamaEngine,
) -> None:
    import numpy as np

    from slmdesk.engine.llama_engine import Cancelled

    prefix = engine.tokenize_prompt("<|im_start|>user\nText:")
    text = engine.tokenize_piece(" I loved this movie, it was great")
    after = engine.tokenize_piece("<|im_end|>\n<|im_start|>assistant\nLabel:", special=True)
    conts = [([], engine.tokenize_piece(" positive")), ([], engine.tokenize_piece(" negative"))]
    tokens = prefix + text + after
    engine.clear_cache()
    before = engine.score_continuations(tokens, conts)
    engine.clear_cache()
    states = engine.hidden_states(tokens, len(prefix))
    assert states.shape == (len(text) + len(after), 576)  # SmolLM2-135M: 576 dimensions
    assert np.all(np.isfinite(states))
    assert engine.cached_tokens() == len(tokens)
    engine.reset_perf()
    # Same numbers to the last bit, and only the last token is decoded again.
    assert engine.score_continuations(tokens, conts) == before
    assert engine.perf_counts()["n_p_eval"] <= 1
    again = engine.hidden_states(tokens, len(prefix))
    assert np.array_equal(again, states)
    cancel = threading.Event()
    cancel.set()
    engine.clear_cache()
    with pytest.raises(Cancelled):
        engine.hidden_states(tokens, len(prefix), cancel=cancel)
    with pytest.raises(ValueError):
        engine.hidden_states(tokens, len(tokens))
