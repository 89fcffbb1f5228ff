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


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``path`` so that it is complete or absent, even across a crash."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    partial.replace(path)
