"""The files of one LoRA job's folder, shared by the app side and the trainer process."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

JOB = "job.json"  # what to train: model, settings, kind, name (written once, at creation)
EXAMPLES = "examples.json"  # the tokenized train and held-out examples
EVENTS = "events.jsonl"  # every event the trainer reported, across runs
CHECKPOINTS = "checkpoints"  # step-NNNNNN.pt: LoRA weights, optimiser, RNG, progress
ADAPTER_DIR = "adapter"  # the peft adapter (safetensors), input of the converter
ADAPTER_GGUF = "adapter.gguf"  # what the engine loads
RESULT = "result.json"  # written last: its presence means the job finished
STDERR = "trainer.log"  # the trainer process's stderr (library warnings, crashes)
CHECKPOINT_PREFIX = "step-"


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"{CHECKPOINT_PREFIX}{step:06d}.pt"


def checkpoint_steps(folder: Path) -> list[int]:
    """The steps that have a checkpoint in ``folder`` (a job's checkpoints), oldest first."""
    found = []
    for path in folder.glob(f"{CHECKPOINT_PREFIX}*.pt"):
        digits = path.stem[len(CHECKPOINT_PREFIX):]
        if digits.isdigit():
            found.append(int(digits))
    return sorted(found)


def base_copy_folder(model_path: Path, cache_dir: Path) -> Path:
    """Where the float32 copy of ``model_path`` lives, named by the file's size and time."""
    st = model_path.stat()
    return cache_dir / "lora-base" / f"{model_path.stem}-{st.st_size}-{st.st_mtime_ns}"


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``path`` so that it is complete or absent, even across a crash."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    partial.replace(path)
