"""Checks made before a LoRA fine-tune starts: trainer packages, architecture, disk space."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from slmdesk.errors import DiskFullError, TrainerMissingError, TrainingError

# Import name -> the distribution to install (all in the `slmdesk[train]` extra).
TRAINER_PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "safetensors": "safetensors",
    "gguf": "gguf",
}
INSTALL_HINT = (
    "Install the trainer with the CPU build of torch (about 190 MB; PyPI's default pulls "
    "about 3 GB of CUDA libraries):\n"
    "  pip install torch --index-url https://download.pytorch.org/whl/cpu\n"
    "  pip install 'slmdesk[train]'"
)
# GGUF architectures transformers reads but that are no causal language model.
_NOT_CAUSAL_LM = {"general", "tokenizer", "t5", "umt5"}
# What a fine-tune writes besides the base cache: two checkpoints, the adapter twice
# (safetensors and GGUF), logs, with room to spare.
_HEADROOM_BYTES = 200 << 20


def missing_trainer_packages() -> list[str]:
    """The trainer's packages that cannot be imported here (without importing them)."""
    return [
        dist for name, dist in TRAINER_PACKAGES.items() if importlib.util.find_spec(name) is None
    ]


def require_trainer() -> None:
    """Raise ``TrainerMissingError`` with install instructions when a package is missing."""
    missing = missing_trainer_packages()
    if missing:
        raise TrainerMissingError(
            f"LoRA fine-tuning needs {', '.join(missing)}, which is not installed.\n{INSTALL_HINT}"
        )


def trainable_architectures() -> frozenset[str]:
    """GGUF architectures that the installed transformers can load as a causal LM."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return frozenset(GGUF_CONFIG_MAPPING) - _NOT_CAUSAL_LM


def require_architecture(architecture: str | None, model_name: str) -> None:
    """Raise ``TrainingError`` when transformers cannot load ``architecture`` from a GGUF."""
    known = trainable_architectures()
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
