"""What ``auto`` does about LoRA before anything is trained: it skips it, with the reason in
the run's events and report, when the data set is small or no trainer is installed."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from slmdesk.training import run
from slmdesk.training.lora_runs import TrainRequest


def _context(events: list[dict[str, Any]]) -> Any:
    return run._Context(db=None, request=TrainRequest("n", "d"),  # type: ignore[arg-type]
                        emit=events.append, cancel=threading.Event(), started=0.0)


def _data(n: int) -> Any:
    return SimpleNamespace(train=[("text", "label")] * n)


def test_auto_skips_lora_without_a_trainer_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "trainer_unavailable_reason", lambda: "get the trainer add-on")
    events: list[dict[str, Any]] = []
    ctx = _context(events)
    assert not run._auto_tries_lora(ctx, _data(run.LORA_MIN_TRAIN))
    assert ctx.skipped == {"lora": "get the trainer add-on"}
    assert events == [{"event": "stage", "stage": "lora",
                       "message": "skipping LoRA: get the trainer add-on"}]


def test_auto_skips_lora_on_a_small_data_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "trainer_unavailable_reason", lambda: None)
    ctx = _context([])
    assert not run._auto_tries_lora(ctx, _data(run.LORA_MIN_TRAIN - 1))
    assert f"auto tries LoRA from {run.LORA_MIN_TRAIN}" in ctx.skipped["lora"]
    ctx = _context([])
    assert run._auto_tries_lora(ctx, _data(run.LORA_MIN_TRAIN))
    assert ctx.skipped == {}
