"""LoRA jobs as a training run sees them: settings from the request, the trainer process's
events turned into the run's events, cancel, resume, and chat data sets to a fine-tune."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.store.datasets import Dataset, DatasetRepository
from slmdesk.store.models import ModelRepository
from slmdesk.training.lora import LoraJob, LoraSettings, TrainerProcess, list_jobs

EventSink = Callable[[dict[str, Any]], None]
MIN_CHAT_EXAMPLES = 4  # at least 3 to learn from and 1 held out
CHAT_HELD_OUT_EVERY = 10  # without splits, every 10th conversation is held out
# How often the cancel watcher looks at the trainer (the trainer itself checkpoints).
CANCEL_POLL_S = 0.2


class TrainingCancelled(Exception):
    """The run was cancelled; a LoRA job (``job``) keeps its checkpoints for --resume."""

    def __init__(self, job: str | None = None) -> None:
        super().__init__("cancelled")
        self.job = job


@dataclass(frozen=True)
class TrainRequest:
    """What to train: ``slmdesk train NAME --data DATASET`` and its options."""

    name: str
    dataset: str
    model: str | None = None  # id, name or file name; None: the default model
    method: str = "auto"  # "auto" | "prompt" | "head" | "lora"
    epochs: float | None = None  # LoRA epochs (default 1)
    max_minutes: float = 30.0
    threads: int | None = None
    resume: bool = False
    # LoraSettings fields set for this run (rank, learning_rate, batch_size, max_steps...).
    lora_overrides: dict[str, Any] = field(default_factory=dict)

    def lora_settings(self) -> LoraSettings:
        base = LoraSettings(threads=self.threads)
        if self.epochs is not None:
            base = replace(base, epochs=float(self.epochs))
        return replace(base, **self.lora_overrides).validate()


def find_resumable(db: Any, name: str, dataset: str) -> LoraJob:
    """The newest LoRA job of ``name`` on ``dataset`` that a run can go on with: a stopped
    one (it has a checkpoint), or a finished one whose adapter no model uses yet (its run
    was killed after the trainer finished, while it tested the adapter or saved)."""
    used = {m.adapter.path for m in ModelRepository(db).list() if m.adapter is not None}

    def resumable(job: LoraJob) -> bool:
        status = job.status()
        if status == "finished":
            return str((job.result() or {}).get("adapter")) not in used
        return status == "stopped"

    jobs = [j for j in list_jobs() if j.name == name and j.spec.get("dataset") == dataset
            and resumable(j)]
    if not jobs:
        raise NotFoundError(
            f"No stopped training of '{name}' on '{dataset}' to resume (a stopped one has a "
            "checkpoint); start it without --resume."
        )
    return jobs[-1]


def follow_job(job: LoraJob, emit: EventSink, cancel: threading.Event) -> dict[str, Any]:
    """Run ``job`` (or resume it) to its result, passing its events on as the run's.

    ``cancel`` stops the trainer (its checkpoints stay) and raises ``TrainingCancelled``;
    a failed trainer raises its ``TrainingError``. A finished job gives its result at once."""
    finished = job.result()
    if finished is not None:
        emit({"event": "stage", "stage": "lora",
              "message": "the fine-tune had finished; using its adapter"})
        return finished
    process = job.start()
    done = threading.Event()
    watcher = threading.Thread(target=_cancel_when_asked, args=(process, cancel, done),
                               name="lora-cancel", daemon=True)
    watcher.start()
    try:
        for event in process.events():
            translated = translate_event(event, job.id)
            if translated is not None:
                emit(translated)
        process.wait()
    finally:
        done.set()
        watcher.join()
    if cancel.is_set():
        raise TrainingCancelled(job.id)
    return process.outcome()


def _cancel_when_asked(process: TrainerProcess, cancel: threading.Event,
                       done: threading.Event) -> None:
    while not done.wait(CANCEL_POLL_S):
        if cancel.is_set():
            process.cancel()
            return


def translate_event(event: dict[str, Any], job_id: str) -> dict[str, Any] | None:
    """A trainer event as a run event (the `slmdesk train --events` contract), or None."""
    kind = event.get("event")
    if kind == "progress":
        return {"event": "progress", "method": "lora", "step": event.get("step"),
                "total_steps": event.get("total_steps"), "epoch": event.get("epoch"),
                "loss": event.get("loss"), "tokens_per_s": event.get("tokens_per_s"),
                "eta_s": event.get("eta_s")}
    if kind == "checkpoint":
        return {"event": "checkpoint", "method": "lora", "step": event.get("step"),
                "job": job_id}
    if kind == "evaluated" and event.get("when") == "after":
        return {"event": "evaluated", "method": "lora", "split": "validation",
                "accuracy": None, "macro_f1": None, "loss": event.get("held_out_loss")}
    if kind in ("loading", "resumed", "converting"):
        words = {"loading": "loading the model for training",
                 "resumed": f"resumed from step {event.get('step')}",
                 "converting": "converting the adapter to GGUF"}
        return {"event": "stage", "stage": "lora", "message": words[str(kind)]}
    return None


def chat_conversations(db: Any, dataset: Dataset
                       ) -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]]]:
    """A chat data set's conversations: (to learn from, held out for the loss).

    Held out: the validation and test splits; without splits, every tenth conversation."""
    examples = [e for e in DatasetRepository(db).examples(dataset) if e.messages]
    if len(examples) < MIN_CHAT_EXAMPLES:
        raise InvalidInputError(
            f"'{dataset.name}' has {len(examples)} conversation(s); fine-tuning needs at "
            f"least {MIN_CHAT_EXAMPLES} (some to learn from, one held out to measure)."
        )
    if any(e.split in ("validation", "test") for e in examples):
        held = [e for e in examples if e.split in ("validation", "test")]
        train = [e for e in examples if e.split not in ("validation", "test")]
    else:
        held = examples[CHAT_HELD_OUT_EVERY - 1::CHAT_HELD_OUT_EVERY] or examples[-1:]
        train = [e for e in examples if e not in held]
    if not train:
        raise InvalidInputError(
            f"Every conversation of '{dataset.name}' is held out (validation or test); put "
            "some in the train split."
        )
    return ([list(e.messages or []) for e in train], [list(e.messages or []) for e in held])
