"""LoRA fine-tunes of the real 135M model in the trainer process, and their adapters in the
engine: a few steps on a few examples (the numbers they reach are in the closing note)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.classify import Classifier, ClassifierSpec, Label
from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.engine.params import LoadParams, LoraAdapter
from slmdesk.training.lora import (
    LoraJob,
    LoraSettings,
    chat_examples,
    create_chat_job,
    create_classification_job,
    missing_trainer_packages,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

# Adapter scale 0 against the base model: 0.0 difference in the fingerprint on this build
# (llama.cpp adds scale x B(A x), exactly zero); the tolerance leaves room for other builds.
SCALE_ZERO_TOLERANCE = 1e-4
FAST = LoraSettings(rank=8, alpha=16, batch_size=4, learning_rate=1e-3, max_steps=6,
                    checkpoint_every=3, threads=2)


def _reply(i: int) -> list[dict[str, str]]:
    a, b = i % 7 + 2, i % 5 + 3
    return [
        {"role": "user", "content": f"What is {a} plus {b}? Answer in the secret style."},
        {"role": "assistant", "content": f"Zorp! {a} plus {b} makes {a + b}. Zorp!"},
    ]


TRAIN_CHATS = [_reply(i) for i in range(24)]
HELD_OUT_CHATS = [_reply(i) for i in range(100, 106)]
# Labels the base model cannot guess from the words: fruit are "left", tools "right".
FRUIT = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "pear"]
TOOLS = ["hammer", "saw", "wrench", "drill", "chisel", "pliers", "spanner", "axe"]
SIDES = ClassifierSpec(labels=(Label("left"), Label("right")))


@pytest.fixture(scope="session")
def training_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trainer's cache (float32 base copy, converter), shared by the session; set
    SLMDESK_TEST_TRAINING_CACHE to keep it between sessions."""
    if missing_trainer_packages():
        pytest.skip(f"the trainer packages are not installed: {missing_trainer_packages()}")
    kept = os.environ.get("SLMDESK_TEST_TRAINING_CACHE")
    return Path(kept) if kept else tmp_path_factory.mktemp("training-cache")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLMDESK_HOME", str(tmp_path_factory.mktemp("lora-home")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def chat_run(home: None, model_path: Path, training_cache: Path) -> dict[str, Any]:
    """A chat fine-tune killed with SIGKILL after step 5 (last checkpoint: step 3), then
    resumed to the end."""
    job = create_chat_job("zorp", model_path, TRAIN_CHATS, HELD_OUT_CHATS, FAST, training_cache)
    first = job.start()
    before_kill = []
    for event in first.events():
        before_kill.append(event)
        if event["event"] == "progress" and event["step"] == 5:
            os.kill(first.pid, signal.SIGKILL)
        assert event["event"] != "failed", event
    first.wait()
    after_kill = {"status": job.status(), "checkpoints": job.checkpoint_steps()}
    second = job.start()
    resumed = list(second.events())
    assert second.wait() == 0, resumed[-1]
    return {"job": job, "before_kill": before_kill, "after_kill": after_kill,
            "resumed": resumed, "result": second.outcome()}


def _losses(events: list[dict[str, Any]]) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e["event"] == "progress"}


def test_kill_9_then_resume_continues_from_the_checkpoint_step(chat_run: dict[str, Any]) -> None:
    assert chat_run["after_kill"] == {"status": "stopped", "checkpoints": [3]}
    resumed = chat_run["resumed"]
    assert resumed[1] == {**resumed[1], "event": "resumed", "step": 3, "total_steps": 6}
    first, again = _losses(chat_run["before_kill"]), _losses(resumed)
    assert sorted(again) == [4, 5, 6]
    # Steps 4 and 5 ran twice, before the kill and after the resume: the same batches,
    # weights, optimiser moments and dropout draws give the same loss (measured: equal to
    # about 1e-6; threads may sum in another order).
    for step in (4, 5):
        assert again[step] == pytest.approx(first[step], rel=1e-3)
    result = chat_run["result"]
    assert result["resumed_from_step"] == 3 and result["steps"] == 6
    assert chat_run["job"].status() == "finished"
    assert all(e["event"] != "failed" for e in chat_run["job"].history())


def test_a_chat_fine_tune_lowers_held_out_assistant_token_loss(chat_run: dict[str, Any]) -> None:
    result = chat_run["result"]
    assert result["held_out_loss_after"] <= 0.9 * result["held_out_loss_before"]
    assert result["tokens_per_s"] > 0 and result["seconds_per_step"] > 0
    progress = [e for e in chat_run["resumed"] if e["event"] == "progress"]
    assert progress[-1]["eta_s"] == 0 and progress[0]["eta_s"] > 0


def test_adapter_scale_0_is_the_base_model_and_scale_1_is_not(
    chat_run: dict[str, Any], model_path: Path
) -> None:
    adapter = Path(chat_run["result"]["adapter"])
    engine = LlamaEngine()
    try:
        engine.load(model_path, LoadParams(max_context=1024, n_threads=1))
        base = engine.fingerprint().mean_logprob
        info = engine.load(model_path, LoadParams(max_context=1024, n_threads=1,
                                                  lora_path=str(adapter), lora_scale=0.0))
        assert info.adapter == LoraAdapter(str(adapter), 0.0)
        assert engine.fingerprint().mean_logprob == pytest.approx(base, abs=SCALE_ZERO_TOLERANCE)
        engine.set_adapter_scale(1.0)
        assert engine.info is not None and engine.info.adapter == LoraAdapter(str(adapter), 1.0)
        assert abs(engine.fingerprint().mean_logprob - base) > 10 * SCALE_ZERO_TOLERANCE
    finally:
        engine.unload()


def _held_out_reply_logprob(engine: LlamaEngine) -> float:
    """Log-probability per token of the held-out replies, through llama.cpp."""
    total = count = 0.0
    for example in chat_examples(engine, HELD_OUT_CHATS):
        cut = example.targets.index(True)
        target = example.tokens[cut:]
        [score] = engine.score_continuations(list(example.tokens[:cut]), [([], list(target))])
        total, count = total + score, count + len(target)
    return total / count


def test_the_chat_adapter_works_in_llama_cpp_as_it_did_in_torch(
    chat_run: dict[str, Any], model_path: Path
) -> None:
    engine = LlamaEngine()
    try:
        engine.load(model_path, LoadParams(max_context=1024, n_threads=1,
                                           lora_path=chat_run["result"]["adapter"], lora_scale=0))
        base = _held_out_reply_logprob(engine)
        engine.set_adapter_scale(1.0)
        tuned = _held_out_reply_logprob(engine)
    finally:
        engine.unload()
    assert tuned > base + 0.5  # nats per token
    # Trained on the dequantized float32 weights, used on the Q4_1 file with an f16 adapter:
    # the held-out loss through llama.cpp matches torch's (measured: 2.7264 vs 2.7068 before,
    # 0.02282 vs 0.02272 after).
    result = chat_run["result"]
    assert -base == pytest.approx(result["held_out_loss_before"], rel=0.05, abs=0.01)
    assert -tuned == pytest.approx(result["held_out_loss_after"], rel=0.05, abs=0.01)


def test_a_classification_adapter_moves_scores_towards_the_trained_labels(
    home: None, model_path: Path, training_cache: Path
) -> None:
    def labelled(items: list[str], side: str) -> list[tuple[str, str]]:
        return [(f"I picked up the {w}.", side) for w in items]

    train = labelled(FRUIT[:6], "left") + labelled(TOOLS[:6], "right")
    held_out = labelled(FRUIT[6:], "left") + labelled(TOOLS[6:], "right")
    settings = LoraSettings(rank=8, alpha=16, batch_size=4, learning_rate=2e-3, epochs=2,
                            checkpoint_every=100, threads=2)
    job = create_classification_job("sides", model_path, SIDES, train, held_out, settings,
                                    training_cache)
    process = job.start()
    assert process.wait() == 0
    result = process.outcome()
    assert result["held_out_loss_after"] < result["held_out_loss_before"]
    engine = LlamaEngine()
    try:
        engine.load(model_path, LoadParams(max_context=1024, n_threads=1,
                                           lora_path=result["adapter"], lora_scale=0))
        classifier = Classifier(engine, SIDES.with_changes(calibration="none"))

        def right_probability() -> list[float]:
            return [p.probs["right"] for p in classifier.classify_many([t for t, _ in held_out])]

        before = right_probability()
        engine.set_adapter_scale(1.0)
        after = right_probability()
    finally:
        engine.unload()
    half = len(held_out) // 2
    # Fruit ("left") move away from "right", tools towards it, on texts never trained on.
    assert sum(after[:half]) < sum(before[:half])
    assert sum(after[half:]) > sum(before[half:])
    assert LoraJob.open(job.id).status() == "finished"


def test_cancel_stops_the_trainer_and_leaves_no_result(
    model_path: Path, training_cache: Path
) -> None:
    job = create_chat_job("cancelled", model_path, TRAIN_CHATS[:4], [], FAST, training_cache)
    process = job.start()
    first = next(process.events())
    assert first["event"] == "loading"
    process.cancel()
    assert process.process.returncode is not None and process.process.returncode != 0
    assert job.status() == "new" and job.result() is None
    assert not job.adapter_path.exists()
    assert [e["event"] for e in job.history()] == ["loading"]
