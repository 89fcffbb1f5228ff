"""Checks made before a LoRA fine-tune starts: the trainer, architecture, disk space."""

from __future__ import annotations

import shutil
from pathlib import Path

from slmdesk.errors import DiskFullError, TrainingError
from slmdesk.training.lora.addon import (
    INSTALL_HINT,
    TRAINER_PACKAGES,
    Trainer,
    locate_trainer,
    missing_trainer_packages,
)
from slmdesk.training.lora.converter import ARCHITECTURE_CLASSES

# GGUF architectures transformers reads but that are no causal language model.
_NOT_CAUSAL_LM = {"general", "tokenizer", "t5", "umt5"}
# What a fine-tune writes besides the base cache: two checkpoints, the adapter twice
# (safetensors and GGUF), logs, with room to spare.
_HEADROOM_BYTES = 200 << 20


def require_trainer() -> Trainer:
    """The trainer LoRA jobs run in (the add-on of a packaged app, or this Python's
    packages); ``TrainerMissingError`` saying how to get it when there is none."""
    return locate_trainer()


def trainable_architectures(trainer: Trainer | None = None) -> frozenset[str]:
    """GGUF architectures the trainer can fine-tune: the add-on's own list (its
    trainer.json), or those the installed transformers loads as a causal LM and llama.cpp's
    adapter converter has a model class for (``converter.ARCHITECTURE_CLASSES``; any other
    would fail only after training, at the conversion)."""
    if trainer is not None and trainer.architectures is not None:
        return trainer.architectures
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return (frozenset(GGUF_CONFIG_MAPPING) & frozenset(ARCHITECTURE_CLASSES)) - _NOT_CAUSAL_LM


def require_architecture(architecture: str | None, model_name: str,
                         trainer: Trainer | None = None) -> None:
    """Raise ``TrainingError`` when transformers cannot load ``architecture`` from a GGUF."""
    known = trainable_architectures(trainer)
    if architecture not in known:
        raise TrainingError(
            f"{model_name}: the trainer (transformers) cannot load {architecture or 'this'} "
            f"models from GGUF. It can load: {', '.join(sorted(known))}."
        )


def checkpoint_bytes_estimate(layers: int, width: int, rank: int) -> int:
    """Rough bytes of one checkpoint: the LoRA weights of seven projections per layer with
    AdamW's two moments, in float32 (MLP projections are wider; counted twice over)."""
    return layers * 7 * 2 * rank * width * 4 * 3 * 2


def require_disk(folder: Path, needed_bytes: int) -> None:
    """Raise ``DiskFullError`` unless ``folder``'s disk has ``needed_bytes`` plus headroom."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    want = needed_bytes + _HEADROOM_BYTES
    if free < want:
        raise DiskFullError(
            f"Not enough disk space for training in {folder}: {free / 2**20:.0f} MiB free, "
            f"about {want / 2**20:.0f} MiB needed for checkpoints and the adapter."
        )


__all__ = [
    "INSTALL_HINT",
    "TRAINER_PACKAGES",
    "checkpoint_bytes_estimate",
    "missing_trainer_packages",
    "require_architecture",
    "require_disk",
    "require_trainer",
    "trainable_architectures",
]
