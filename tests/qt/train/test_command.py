"""The argv of the training child process: `slmdesk [--home H] train NAME … --events`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from slmdesk.ui.train.command import TrainOptions, slmdesk_program, train_argv


def test_the_argv_runs_slmdesk_in_the_apps_home_with_events(slmdesk_home: Path) -> None:
    argv = train_argv(TrainOptions(name="sent", dataset="Reviews", model="SmolLM2",
                                   method="lora", epochs=3, max_minutes=20, threads=2))
    assert argv == [sys.executable, "-m", "slmdesk", "--home", str(slmdesk_home.resolve()),
                    "train", "sent", "--data", "Reviews", "-m", "SmolLM2", "--method", "lora",
                    "--epochs", "3", "--max-minutes", "20", "--threads", "2", "--events"]


def test_defaults_are_left_to_the_command_and_resume_is_a_flag(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLMDESK_HOME")  # the platform's directories: the child finds them
    argv = train_argv(TrainOptions(name="n", dataset="d", resume=True), program=["slmdesk"])
    assert argv == ["slmdesk", "train", "n", "--data", "d", "--method", "auto", "--resume",
                    "--events"]


def test_the_frozen_app_runs_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert slmdesk_program() == [sys.executable]
