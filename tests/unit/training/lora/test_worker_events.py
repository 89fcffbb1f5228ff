"""The trainer's event log when the process that reads its events is gone."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from slmdesk.training.lora import layout, worker


def test_a_closed_event_pipe_stops_the_trainer_and_records_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the parent is gone: nobody reads the trainer's stdout
    stdout = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    steps: list[int] = []

    def run_job(_folder: Path, emit: worker.EventLog) -> dict[str, Any]:
        for step in range(1, 4):
            steps.append(step)
            emit({"event": "progress", "step": step})
        return {}

    monkeypatch.setattr(worker, "run_job", run_job)
    try:
        assert worker.main([str(tmp_path)]) == 4
    finally:
        stdout.close()  # its descriptor now points at /dev/null
    # The first event found the pipe closed: no further step ran, nothing says "failed".
    assert steps == [1]
    events = [json.loads(line) for line in
              (tmp_path / layout.EVENTS).read_text(encoding="utf-8").splitlines()]
    assert [e["event"] for e in events] == ["progress", "stopped"]
    assert "resumes from its last checkpoint" in events[-1]["message"]
