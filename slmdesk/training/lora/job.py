"""LoRA jobs on the app's side: create one (checked before anything starts), run its trainer
process, follow its events, cancel, resume, list and delete.

A job is a folder under ``<data dir>/training/lora/<id>`` (``layout.py`` names its files).
It is created whole or not at all; the trainer process only adds checkpoints, the adapter
and, last, ``result.json``. Nothing is registered anywhere else: whoever turns a finished
job into a classifier or a model does so from its result, so a cancelled or crashed job
leaves its checkpoints and nothing half-registered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from slmdesk.classify.spec import ClassifierSpec
from slmdesk.engine.llama_engine import validate_model_file
from slmdesk.engine.params import physical_cores
from slmdesk.errors import InvalidInputError, NotFoundError, TrainingError
from slmdesk.ids import new_id, utc_now
from slmdesk.paths import get_paths
from slmdesk.training.lora import layout, preflight
from slmdesk.training.lora.addon import WORKER_MODULE, child_environment
from slmdesk.training.lora.examples import (
    TokenizedExample,
    chat_examples,
    classification_examples,
    tokenizer_engine,
)
from slmdesk.training.lora.settings import LoraSettings

KINDS = ("chat", "classification")


def jobs_folder() -> Path:
    """Where LoRA jobs live: under the data directory (``SLMDESK_HOME`` moves it)."""
    return get_paths().data_dir / "training" / "lora"


def default_cache_dir() -> Path:
    """The trainer's cache: float32 copies of base models, llama.cpp's converter."""
    return get_paths().cache_dir / "training"


@dataclass(frozen=True)
class LoraJob:
    """One fine-tune's folder: what to train, its checkpoints and, once done, its adapter."""

    folder: Path

    # reading ------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def spec(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.folder / layout.JOB).read_text(encoding="utf-8"))
        return data

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def adapter_path(self) -> Path:
        return self.folder / layout.ADAPTER_GGUF

    def checkpoint_steps(self) -> list[int]:
        """Steps with a checkpoint on disk, oldest first."""
        return layout.checkpoint_steps(self.folder / layout.CHECKPOINTS)

    def result(self) -> dict[str, Any] | None:
        """The finished job's metrics and adapter path; None until it has finished."""
        path = self.folder / layout.RESULT
        if not path.is_file():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def status(self) -> str:
        """``finished``, ``stopped`` (has a checkpoint to resume from) or ``new``."""
        if self.result() is not None:
            return "finished"
        return "stopped" if self.checkpoint_steps() else "new"

    def history(self) -> list[dict[str, Any]]:
        """Every event the trainer reported, over all its runs (for a loss curve)."""
        path = self.folder / layout.EVENTS
        if not path.is_file():
            return []
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill -9
        return events

    # acting -------------------------------------------------------------------------------
    def start(self, python: str | None = None) -> TrainerProcess:
        """Start (or resume from the last checkpoint) the trainer in its own process: the
        trainer add-on of a packaged app, this Python, or ``python`` when given."""
        argv = ([python, "-m", WORKER_MODULE, str(self.folder)] if python
                else preflight.require_trainer().argv(self.folder))
        if self.result() is not None:
            raise TrainingError(f"The training job {self.name} has already finished.")
        log = (self.folder / layout.STDERR).open("ab")
        try:
            process = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                # Offline: everything the trainer reads is on this machine.
                env=child_environment({
                    **os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
                    "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}),
            )
        finally:
            log.close()
        return TrainerProcess(self, process)

    def delete(self) -> None:
        """Remove the job with its checkpoints and adapter (stop its process first)."""
        shutil.rmtree(self.folder)

    # creating -----------------------------------------------------------------------------
    @classmethod
    def open(cls, job_id: str) -> LoraJob:
        folder = jobs_folder() / job_id
        if not (folder / layout.JOB).is_file():
            raise NotFoundError(f"No training job {job_id}.")
        return cls(folder)

    @classmethod
    def create(
        cls, *, name: str, kind: str, model_path: str | os.PathLike[str],
        train: Sequence[TokenizedExample], held_out: Sequence[TokenizedExample],
        settings: LoraSettings | None = None, cache_dir: Path | None = None,
        extra: dict[str, Any] | None = None,
    ) -> LoraJob:
        """Check everything that can be checked, then write the job folder in one piece."""
        settings = (settings or LoraSettings()).validate()
        trainer = preflight.require_trainer()
        if kind not in KINDS:
            raise InvalidInputError(f"Unknown training kind {kind!r}.")
        if not name.strip():
            raise InvalidInputError("A training job needs a name.")
        model = validate_model_file(model_path)
        preflight.require_architecture(model.architecture, model.path.name, trainer)
        _check_examples(train, held_out)
        cache = cache_dir or default_cache_dir()
        layers, width = model.block_count or 32, model.embedding_length or 4096
        needed = preflight.checkpoint_bytes_estimate(layers, width, settings.rank) * (
            settings.keep_checkpoints + 1
        )
        root = jobs_folder()
        preflight.require_disk(root, needed)
        if not layout.base_copy_folder(model.path, cache).is_dir():
            preflight.require_disk(cache, model.path.stat().st_size * 8)
        spec = {
            "name": name.strip(), "kind": kind, "model_path": str(model.path),
            "architecture": model.architecture, "settings": settings.to_json(),
            "threads": settings.threads or physical_cores(), "cache_dir": str(cache),
            "created": utc_now(), **(extra or {}),
        }
        return cls._write(root, spec, train, held_out)

    @classmethod
    def _write(
        cls, root: Path, spec: dict[str, Any], train: Sequence[TokenizedExample],
        held_out: Sequence[TokenizedExample],
    ) -> LoraJob:
        job_id = new_id().lower()
        partial = root / f".{job_id}.partial"
        try:
            partial.mkdir(parents=True)
            layout.write_json_atomically(partial / layout.JOB, spec)
            layout.write_json_atomically(partial / layout.EXAMPLES, {
                "train": [e.to_json() for e in train],
                "held_out": [e.to_json() for e in held_out],
            })
            folder = root / job_id
            partial.rename(folder)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise TrainingError(f"Could not create the training job in {root}: {exc}") from exc
        return cls(folder)


def _check_examples(
    train: Sequence[TokenizedExample], held_out: Sequence[TokenizedExample]
) -> None:
    if not train:
        raise InvalidInputError("There are no training examples.")
    for what, examples in (("training", train), ("held-out", held_out)):
        for n, example in enumerate(examples, 1):
            if not any(example.targets[1:]):
                raise InvalidInputError(f"{what} example {n} has nothing to learn (no target).")


def list_jobs() -> list[LoraJob]:
    """Every LoRA job on disk, oldest first (ids sort by creation time)."""
    root = jobs_folder()
    if not root.is_dir():
        return []
    return [
        LoraJob(p) for p in sorted(root.iterdir())
        if not p.name.startswith(".") and (p / layout.JOB).is_file()  # .partial: unfinished
    ]


def create_chat_job(
    name: str, model_path: str | os.PathLike[str], train: Iterable[object],
    held_out: Iterable[object], settings: LoraSettings | None = None,
    cache_dir: Path | None = None, extra: dict[str, Any] | None = None,
) -> LoraJob:
    """A job that fine-tunes on OpenAI-style conversations; loss on the assistant turns.
    ``extra`` joins the job's spec (what the run was for, to resume it)."""
    preflight.require_trainer()
    engine = tokenizer_engine(model_path)
    try:
        train_examples = chat_examples(engine, train, what="training example")
        held_examples = chat_examples(engine, held_out, what="held-out example")
    finally:
        engine.unload()
    return LoraJob.create(
        name=name, kind="chat", model_path=model_path, train=train_examples,
        held_out=held_examples, settings=settings, cache_dir=cache_dir, extra=extra,
    )


def create_classification_job(
    name: str, model_path: str | os.PathLike[str], spec: ClassifierSpec,
    train: Iterable[tuple[str, str]], held_out: Iterable[tuple[str, str]],
    settings: LoraSettings | None = None, cache_dir: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> LoraJob:
    """A job that teaches the model to answer the classifier's prompt with the label word.
    ``extra`` joins the job's spec (what the run was for, to resume it)."""
    preflight.require_trainer()
    engine = tokenizer_engine(model_path)
    try:
        train_examples = classification_examples(engine, spec, train)
        held_examples = classification_examples(engine, spec, held_out)
    finally:
        engine.unload()
    return LoraJob.create(
        name=name, kind="classification", model_path=model_path, train=train_examples,
        held_out=held_examples, settings=settings, cache_dir=cache_dir,
        extra={**(extra or {}), "classifier": spec.to_json()},
    )


class TrainerProcess:
    """A running trainer: its events as they come, cancel, wait."""

    def __init__(self, job: LoraJob, process: subprocess.Popen[bytes]) -> None:
        self.job = job
        self.process = process
        self.last_event: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def events(self) -> Iterator[dict[str, Any]]:
        """Each event the trainer reports, until it exits (blocking; use a thread in a GUI)."""
        stream: IO[bytes] | None = self.process.stdout
        if stream is None:
            return
        for raw in stream:
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a library printed to stdout
            if isinstance(event, dict):
                self.last_event = event
                yield event

    def cancel(self, timeout: float = 30.0) -> None:
        """Stop the trainer; the checkpoints stay, and ``start()`` resumes from the last."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()

    def wait(self) -> int:
        """Wait for the trainer to exit (reading what is left of its events); its exit code."""
        for _ in self.events():
            pass
        code = self.process.wait()
        self._close()
        return code

    def outcome(self) -> dict[str, Any]:
        """After ``wait()``: the result, or a ``TrainingError`` with the trainer's message."""
        result = self.job.result()
        if result is not None:
            return result
        event = self.last_event or {}
        message = event.get("message") if event.get("event") == "failed" else None
        log = self.job.folder / layout.STDERR
        raise TrainingError(message or f"The trainer stopped without a result (see {log}).")

    def _close(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()
