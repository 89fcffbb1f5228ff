"""The hyper-parameters of one LoRA fine-tune, with the defaults the design note measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slmdesk.errors import InvalidInputError
from slmdesk.json_data import JsonFields, known_fields

# The linear layers LoRA adapts when a model has them: attention and MLP projections of
# llama-style blocks (llama, mistral, qwen2/3, gemma 2/3 name them the same way).
DEFAULT_TARGET_MODULES = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)


@dataclass(frozen=True)
class LoraSettings(JsonFields):
    """How to fine-tune: LoRA shape, optimiser, schedule, checkpoints, threads."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    learning_rate: float = 3e-4
    epochs: float = 1.0  # may be fractional: a part of the last epoch
    batch_size: int = 8
    max_steps: int | None = None  # stop after this many optimiser steps (before the epochs end)
    checkpoint_every: int = 20  # optimiser steps between checkpoints
    keep_checkpoints: int = 2
    seed: int = 0
    threads: int | None = None  # torch threads; None: the physical cores
    max_tokens: int = 1024  # longer examples are cut (from the left of the prompt)

    def validate(self) -> LoraSettings:
        checks = [
            (self.rank >= 1, "The LoRA rank must be at least 1."),
            (self.alpha > 0, "The LoRA alpha must be positive."),
            (0 <= self.dropout < 1, "The dropout must be in [0, 1)."),
            (bool(self.target_modules), "LoRA needs at least one target module."),
            (self.learning_rate > 0, "The learning rate must be positive."),
            (self.epochs > 0, "The number of epochs must be positive."),
            (self.batch_size >= 1, "The batch size must be at least 1."),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be at least 1."),
            (self.checkpoint_every >= 1, "Checkpoints need an interval of at least 1 step."),
            (self.keep_checkpoints >= 1, "At least one checkpoint must be kept."),
            (self.max_tokens >= 8, "max_tokens must be at least 8."),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(message)
        return self

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoraSettings:
        return cls(**known_fields(cls, data)).validate()
