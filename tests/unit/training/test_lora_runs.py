"""Which LoRA job `slmdesk train --resume` goes on with (slmdesk/training/lora_runs.py), on
job folders written by hand: no trainer, no model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from slmdesk.errors import NotFoundError
from slmdesk.store.models import ModelRepository
from slmdesk.training.lora import layout
from slmdesk.training.lora.job import LoraJob, jobs_folder
from slmdesk.training.lora_runs import find_resumable, follow_job


def _job(job_id: str, *, checkpoint: bool = False, finished: bool = False,
         name: str = "zb", dataset: str = "zorp-blick") -> LoraJob:
    folder = jobs_folder() / job_id
    (folder / layout.CHECKPOINTS).mkdir(parents=True)
    layout.write_json_atomically(folder / layout.JOB, {"name": name, "dataset": dataset})
    if checkpoint:
        layout.checkpoint_path(folder / layout.CHECKPOINTS, 3).write_bytes(b"")
    if finished:
        layout.write_json_atomically(folder / layout.RESULT,
                                     {"adapter": str(folder / layout.ADAPTER_GGUF), "steps": 6})
    return LoraJob(folder)


def _register(db: sqlite_utils.Database, job: LoraJob, tmp_path: Path) -> None:
    repo = ModelRepository(db)
    base = repo.add(name="base", path=str(tmp_path / "base.gguf"), size_bytes=1,
                    architecture="llama", quantization=None, parameter_count=None,
                    context_length=None, licence=None, source="import")
    repo.add_fine_tune(name="zb (LoRA)", base=base, adapter_path=str(job.adapter_path))


def test_a_stopped_job_is_resumed_the_newest_first(db: sqlite_utils.Database) -> None:
    _job("01a", checkpoint=True)
    newest = _job("01b", checkpoint=True)
    _job("01c", checkpoint=True, name="other")
    _job("01d", checkpoint=True, dataset="other")
    assert find_resumable(db, "zb", "zorp-blick") == newest


def test_a_finished_job_nothing_uses_yet_is_resumable(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    """Killed after the trainer finished (while the run tested the adapter): --resume goes
    on with its adapter instead of asking for the whole training again."""
    finished = _job("01a", checkpoint=True, finished=True)
    assert find_resumable(db, "zb", "zorp-blick") == finished
    _register(db, finished, tmp_path)
    with pytest.raises(NotFoundError, match="No stopped training of 'zb'"):
        find_resumable(db, "zb", "zorp-blick")


def test_a_new_job_without_checkpoint_is_not_resumable(db: sqlite_utils.Database) -> None:
    _job("01a")
    with pytest.raises(NotFoundError, match="start it without --resume"):
        find_resumable(db, "zb", "zorp-blick")


def test_following_a_finished_job_gives_its_result_without_a_trainer() -> None:
    job = _job("01a", checkpoint=True, finished=True)
    events: list[dict[str, Any]] = []
    result = follow_job(job, events.append, threading.Event())
    assert result == job.result() and result["steps"] == 6
    assert [e["stage"] for e in events] == ["lora"]
