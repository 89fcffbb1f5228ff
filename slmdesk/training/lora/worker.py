"""The trainer process: ``python -m slmdesk.training.lora.worker JOB_FOLDER``.

Runs one LoRA job (``job.py`` lays out its folder) from its last checkpoint to a GGUF
adapter. Every event goes to stdout as one JSON line and into ``events.jsonl``: ``loading``,
``resumed``, ``evaluated``, ``progress`` (step, loss, tokens/s, time left), ``checkpoint``,
``converting``, then ``finished`` with the result, or ``failed`` with a message. Killing
the process at any moment loses at most the steps since the last checkpoint; when the process
that reads its events ends (killed alone, not with its process group), the trainer notices at
its next event, records ``stopped`` and exits, and the job resumes from its last checkpoint.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from slmdesk.errors import UserFacingError
from slmdesk.training.lora import layout
from slmdesk.training.lora.examples import TokenizedExample
from slmdesk.training.lora.settings import LoraSettings


class ParentGone(Exception):
    """Nobody reads the trainer's events any more: the process that started it ended."""


class EventLog:
    """Writes events to the job's events file (for later) and to stdout (for the parent);
    ``ParentGone`` when stdout's reader has gone."""

    def __init__(self, folder: Path) -> None:
        self.file = (folder / layout.EVENTS).open("a", encoding="utf-8")

    def record(self, event: dict[str, Any]) -> str:
        """Write ``event`` to the events file only; return its line."""
        line = json.dumps({"time": time.time(), **event})
        self.file.write(line + "\n")
        self.file.flush()
        return line

    def __call__(self, event: dict[str, Any]) -> None:
        line = self.record(event)
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except BrokenPipeError as exc:
            # Later writes (and the interpreter's own flush at exit) would fail the same way.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise ParentGone from exc


def run_job(folder: Path, emit: EventLog) -> dict[str, Any]:
    """Train, convert and write the result; return it."""
    spec = json.loads((folder / layout.JOB).read_text(encoding="utf-8"))
    data = json.loads((folder / layout.EXAMPLES).read_text(encoding="utf-8"))
    settings = LoraSettings.from_json(spec["settings"])
    train = [TokenizedExample.from_json(e) for e in data["train"]]
    held_out = [TokenizedExample.from_json(e) for e in data["held_out"]]
    cache_dir = Path(spec["cache_dir"]) if spec.get("cache_dir") else None
    model_path = Path(spec["model_path"])
    architecture = str(spec["architecture"])

    emit({"event": "loading", "model": model_path.name})
    import torch

    from slmdesk.training.lora import trainer as lora_trainer
    from slmdesk.training.lora.converter import convert_adapter

    torch.set_num_threads(int(spec["threads"]))
    started = time.perf_counter()
    base = lora_trainer.load_base_model(model_path, architecture, cache_dir)
    config = lora_trainer.model_config(base, architecture)
    # Seeded after loading: reading the GGUF (a first run) draws random numbers that loading
    # the cached copy (every later run) does not, and LoRA's initial weights would differ.
    torch.manual_seed(settings.seed)
    model = lora_trainer.add_lora(base, settings)
    load_s = time.perf_counter() - started
    trainer = lora_trainer.LoraTrainer(model, settings, train, held_out)
    checkpoints = lora_trainer.CheckpointFolder(
        folder / layout.CHECKPOINTS, settings.keep_checkpoints
    )
    resumed = checkpoints.restore_latest(trainer)
    if resumed is not None:
        emit({"event": "resumed", "step": resumed, "total_steps": trainer.total_steps})
    else:
        before = trainer.state.held_out_before = trainer.held_out_loss()
        emit({"event": "evaluated", "when": "before", "held_out_loss": before})
    trainer.run(emit, checkpoints)
    after = trainer.held_out_loss()
    emit({"event": "evaluated", "when": "after", "held_out_loss": after})

    emit({"event": "converting"})
    adapter_dir = folder / layout.ADAPTER_DIR
    model.save_pretrained(adapter_dir)
    gguf = convert_adapter(
        adapter_dir, config, architecture, folder / layout.ADAPTER_GGUF,
        cache_dir or folder / "cache",
    )
    state = trainer.state
    result = {
        "adapter": str(gguf),
        "steps": state.step,
        "total_steps": trainer.total_steps,
        "train_examples": len(train),
        "held_out_examples": len(held_out),
        "held_out_loss_before": state.held_out_before,
        "held_out_loss_after": after,
        "final_train_loss": state.losses[-1] if state.losses else None,
        "train_tokens": state.train_tokens,
        "train_seconds": state.train_seconds,
        "tokens_per_s": state.train_tokens / state.train_seconds if state.train_seconds else None,
        "seconds_per_step": state.train_seconds / state.step if state.step else None,
        "load_seconds": load_s,
        "resumed_from_step": resumed,
        "trainable_parameters": sum(p.numel() for p in trainer.parameters),
    }
    layout.write_json_atomically(folder / layout.RESULT, result)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m slmdesk.training.lora.worker JOB_FOLDER", file=sys.stderr)
        return 2
    folder = Path(args[0])
    emit = EventLog(folder)
    try:
        result = run_job(folder, emit)
    except ParentGone:
        emit.record({"event": "stopped", "message": "The process that started the trainer "
                     "ended; the job resumes from its last checkpoint."})
        return 4
    except Exception as exc:  # noqa: BLE001 - the process boundary: report, then exit
        failure = failure_event(exc, folder)
        emit(failure)
        return 3 if failure["user_facing"] else 1
    emit({"event": "finished", "result": result})
    return 0


def failure_event(exc: Exception, folder: Path) -> dict[str, Any]:
    """The ``failed`` event for ``exc``: a message a person can act on, or a bug's traceback."""
    if isinstance(exc, UserFacingError):
        return {"event": "failed", "message": exc.message, "user_facing": True}
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return {"event": "failed", "user_facing": True, "message":
                f"The disk is full ({exc.filename or folder}). The last checkpoint is kept: "
                "free some space, then resume."}
    return {"event": "failed", "message": f"{type(exc).__name__}: {exc}",
            "user_facing": False, "traceback": traceback.format_exc()}


if __name__ == "__main__":
    sys.exit(main())
