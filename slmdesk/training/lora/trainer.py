"""The torch side of a LoRA fine-tune: load the GGUF, add LoRA, train, checkpoint, resume.

Imported only inside the trainer process (``worker.py``): torch, transformers and peft
never enter the app's own process.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from slmdesk.errors import TrainingError
from slmdesk.training.lora import layout
from slmdesk.training.lora.converter import converter_config
from slmdesk.training.lora.examples import TokenizedExample
from slmdesk.training.lora.settings import LoraSettings

Event = Callable[[dict[str, Any]], None]


def load_base_model(model_path: Path, architecture: str, cache_dir: Path | None) -> Any:
    """The GGUF model dequantized to float32 as a transformers model.

    Reading a GGUF with transformers parses its metadata in pure Python twice (20-30 s for
    a 135M model, most of it the 49k-entry vocabulary); with ``cache_dir`` the
    dequantized weights are kept as safetensors next time (float32: about 4 bytes per
    parameter on disk), which loads in about a second.
    """
    cached = layout.base_copy_folder(model_path, cache_dir) if cache_dir is not None else None
    if cached is not None and (cached / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            model_path.parent, gguf_file=model_path.name, dtype=torch.float32
        )
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
        raise TrainingError(
            f"{model_path.name}: transformers could not load this model for training ({exc})."
        ) from exc
    if cached is not None:
        _save_base_copy(model, architecture, cached)
    return model


def _save_base_copy(model: Any, architecture: str, folder: Path) -> None:
    # save_pretrained refuses a GGUF-loaded model ("quantized with gguf"), though its
    # weights are plain float32 by now: write the weights and a converter-ready config.
    from safetensors.torch import save_model

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_model(model, str(partial / "model.safetensors"), metadata={"format": "pt"})
    config = converter_config(model.config.to_dict(), architecture)
    (partial / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)  # a killed save leaves only the .partial folder, redone next time


def model_config(model: Any, architecture: str) -> dict[str, Any]:
    return converter_config(model.config.to_dict(), architecture)


def add_lora(model: Any, settings: LoraSettings) -> Any:
    """Wrap ``model`` with LoRA on those of the target projections it has."""
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear)}
    targets = [t for t in settings.target_modules if t in names]
    if not targets:
        raise TrainingError(
            f"The model has none of the layers LoRA targets ({', '.join(settings.target_modules)})."
        )
    config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=targets, bias="none", task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


@dataclass
class Batch:
    input_ids: Any
    attention_mask: Any
    target_mask: Any  # True where the token is learnt (predicted from the one before)
    tokens: int  # real (unpadded) tokens


def make_batch(examples: Sequence[TokenizedExample], max_tokens: int) -> Batch:
    """Right-padded tensors; an example longer than ``max_tokens`` keeps its end."""
    rows = [(ex.tokens[-max_tokens:], ex.targets[-max_tokens:]) for ex in examples]
    width = max(len(t) for t, _ in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (tokens, learnt) in enumerate(rows):
        ids[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        attention[i, : len(tokens)] = 1
        targets[i, : len(tokens)] = torch.tensor(learnt, dtype=torch.bool)
    targets[:, 0] = False  # nothing predicts the first token
    return Batch(ids, attention, targets, int(attention.sum()))


def target_losses(model: Any, batch: Batch) -> Any:
    """Cross-entropy (nats) of every target token, predicted from the position before it.

    The language-model head runs only on the positions that predict a target: with a
    vocabulary of 49k-262k it costs a fifth or more of a small model's compute otherwise.
    """
    base = model.get_base_model()
    hidden = base.model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask
    ).last_hidden_state
    predicting = batch.target_mask[:, 1:]
    selected = hidden[:, :-1][predicting]
    logits = base.lm_head(selected).float()
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    wanted = batch.input_ids[:, 1:][predicting]
    return torch.nn.functional.cross_entropy(logits, wanted, reduction="none")


@dataclass
class TrainingState:
    """What a checkpoint holds besides the weights and the optimiser."""

    step: int = 0
    held_out_before: float | None = None
    losses: list[float] = field(default_factory=list)  # mean target loss per step
    train_seconds: float = 0.0
    train_tokens: int = 0


class LoraTrainer:
    """Trains a peft model on tokenized examples with AdamW, in a reproducible order."""

    def __init__(
        self, model: Any, settings: LoraSettings, train: Sequence[TokenizedExample],
        held_out: Sequence[TokenizedExample],
    ) -> None:
        if not train:
            raise TrainingError("There are no training examples.")
        self.model = model
        self.settings = settings
        self.train_examples = list(train)
        self.held_out = list(held_out)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=settings.learning_rate)
        self.steps_per_epoch = math.ceil(len(self.train_examples) / settings.batch_size)
        total = math.ceil(settings.epochs * self.steps_per_epoch)
        self.total_steps = min(total, settings.max_steps) if settings.max_steps else total
        self.state = TrainingState()

    def batch_for_step(self, step: int) -> list[TokenizedExample]:
        """The examples of optimiser step ``step``: a seeded shuffle per epoch, so a resumed
        run sees exactly the batches the uninterrupted one would have seen."""
        epoch, index = divmod(step, self.steps_per_epoch)
        order = list(range(len(self.train_examples)))
        random.Random(self.settings.seed * 1_000_003 + epoch).shuffle(order)
        size = self.settings.batch_size
        return [self.train_examples[i] for i in order[index * size : (index + 1) * size]]

    def held_out_loss(self) -> float | None:
        """Mean loss per target token over the held-out examples (dropout off)."""
        if not self.held_out:
            return None
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(self.held_out), self.settings.batch_size):
                chunk = self.held_out[start : start + self.settings.batch_size]
                losses = target_losses(self.model, make_batch(chunk, self.settings.max_tokens))
                total += float(losses.sum())
                count += int(losses.numel())
        return total / count if count else None

    def train_step(self, step: int) -> tuple[float, int]:
        """One optimiser step; returns (mean target loss, tokens processed)."""
        self.model.train()
        batch = make_batch(self.batch_for_step(step), self.settings.max_tokens)
        losses = target_losses(self.model, batch)
        if losses.numel() == 0:
            return float("nan"), batch.tokens
        loss = losses.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach()), batch.tokens

    def run(self, on_event: Event, checkpoints: CheckpointFolder) -> None:
        """Train from ``self.state.step`` to the end, reporting and checkpointing."""
        session_started = time.perf_counter()
        session_tokens = 0
        first = self.state.step
        while self.state.step < self.total_steps:
            started = time.perf_counter()
            loss, tokens = self.train_step(self.state.step)
            took = time.perf_counter() - started
            self.state.step += 1
            self.state.losses.append(loss)
            self.state.train_seconds += took
            self.state.train_tokens += tokens
            session_tokens += tokens
            elapsed = time.perf_counter() - session_started
            per_step = elapsed / (self.state.step - first)
            on_event({
                "event": "progress", "step": self.state.step, "total_steps": self.total_steps,
                "epoch": self.state.step / self.steps_per_epoch, "loss": loss,
                "tokens_per_s": session_tokens / elapsed if elapsed > 0 else None,
                "seconds_per_step": per_step,
                "eta_s": per_step * (self.total_steps - self.state.step),
            })
            if (self.state.step % self.settings.checkpoint_every == 0
                    or self.state.step == self.total_steps):
                checkpoints.save(self)
                on_event({"event": "checkpoint", "step": self.state.step})

    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "lora": {n: p.detach().clone() for n, p in self.model.named_parameters()
                     if p.requires_grad},
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "state": self.state.__dict__,
        }

    def restore(self, payload: dict[str, Any]) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in payload["lora"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["rng"])
        self.state = TrainingState(**payload["state"])


class CheckpointFolder:
    """``step-NNNNNN.pt`` files, written whole or not at all, newest few kept."""

    def __init__(self, folder: Path, keep: int) -> None:
        self.folder = folder
        self.keep = keep

    def steps(self) -> list[int]:
        return layout.checkpoint_steps(self.folder)

    def path(self, step: int) -> Path:
        return layout.checkpoint_path(self.folder, step)

    def save(self, trainer: LoraTrainer) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(trainer.state.step)
        partial = target.with_name(target.name + ".partial")
        torch.save(trainer.checkpoint_payload(), partial)
        partial.replace(target)  # a kill -9 mid-write leaves the previous checkpoint intact
        for old in self.steps()[: -self.keep]:
            self.path(old).unlink(missing_ok=True)

    def restore_latest(self, trainer: LoraTrainer) -> int | None:
        """Load the newest readable checkpoint into ``trainer``; its step, or None."""
        for step in reversed(self.steps()):
            try:
                payload = torch.load(self.path(step), weights_only=True)
            except (OSError, RuntimeError, EOFError):
                continue  # damaged: fall back to the one before
            trainer.restore(payload)
            return step
        return None
