"""Plain parameter and result types shared by the engine, the GUI and the CLI."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from slmdesk.json_data import JsonFields, known_fields

DEFAULT_MAX_CONTEXT = 4096


def physical_cores() -> int:
    """Number of physical CPU cores (llama.cpp runs best with one thread per core)."""
    try:
        if sys.platform.startswith("linux"):
            cores: set[tuple[str, str]] = set()
            physical = core = ""
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    key, value = key.strip(), value.strip()
                    if key == "physical id":
                        physical = value
                    elif key == "core id":
                        core = value
                    elif not key and (physical or core):
                        cores.add((physical, core))
                        physical = core = ""
            if physical or core:
                cores.add((physical, core))
            if cores:
                allowed = len(os.sched_getaffinity(0))
                return max(1, min(len(cores), allowed))
        elif sys.platform == "darwin":
            import subprocess

            out = subprocess.run(
                ["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True, timeout=5
            )
            return max(1, int(out.stdout.strip()))
    except (OSError, ValueError):
        pass
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class LoraAdapter:
    """A GGUF LoRA adapter applied on top of a model, and its strength (0: the base model,
    1: as trained)."""

    path: str
    scale: float = 1.0


@dataclass(frozen=True)
class LoadParams:
    """How to load a model."""

    max_context: int = DEFAULT_MAX_CONTEXT  # cap on n_ctx; the model's trained size caps too
    n_threads: int | None = None  # None: physical cores
    n_gpu_layers: int | None = None  # None: all when the build can offload, else 0
    n_batch: int = 512
    # A GGUF LoRA adapter applied on top of the model, and its strength (0: the base model,
    # 1: as trained). slmdesk checks the adapter file like a model file before llama.cpp.
    lora_path: str | None = None
    lora_scale: float = 1.0
    # Tokenizer and chat template only: no weights are read and nothing can be decoded.
    # Cheap (a fraction of a second) for tokenizing training data.
    vocab_only: bool = False
    # Replies decoded together (llama.cpp's n_seq_max, the server's concurrent requests);
    # the KV cache stays one buffer of the whole context, shared by the sequences.
    parallel_sequences: int = 1

    def resolved_threads(self) -> int:
        return self.n_threads if self.n_threads and self.n_threads > 0 else physical_cores()


@dataclass(frozen=True)
class SamplingParams(JsonFields):
    """How to sample a reply."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 1024
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SamplingParams:
        return cls(**{k: v for k, v in known_fields(cls, data).items() if v is not None})

    def merged(self, **overrides: Any) -> SamplingParams:
        data = self.to_json()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return SamplingParams.from_json(data)


@dataclass
class GenerationResult:
    """What one reply cost and how it ended."""

    text: str = ""
    finish_reason: str = "stop"  # stop | length | cancelled | error | interrupted (remote)
    prompt_tokens: int = 0  # tokens in the whole prompt
    prompt_tokens_evaluated: int = 0  # of those, processed now (the rest came from the KV cache)
    completion_tokens: int = 0
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    prompt_tokens_per_s: float | None = None
    duration_s: float = 0.0
    dropped_messages: int = 0  # oldest messages left out so the conversation fits
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        """The parts that go into a message's metadata_json."""
        meta: dict[str, Any] = {
            "prompt_tokens_evaluated": self.prompt_tokens_evaluated,
            "prompt_tokens_per_s": self.prompt_tokens_per_s,
        }
        if self.dropped_messages:
            meta["dropped_messages"] = self.dropped_messages
        if self.error:
            meta["error"] = self.error
        if self.notes:
            meta["notes"] = list(self.notes)
        return meta
