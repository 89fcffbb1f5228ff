"""The user's settings: one typed dataclass with the defaults, stored in the database."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import sqlite_utils

from slmdesk.engine.params import DEFAULT_MAX_CONTEXT, LoadParams, SamplingParams
from slmdesk.store.repositories import SettingsRepository

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
_KEY = "app"


@dataclass
class Settings:
    """Every setting with its default; unknown stored keys are ignored."""

    max_context: int = DEFAULT_MAX_CONTEXT
    n_threads: int | None = None  # None: one per physical core
    n_gpu_layers: int | None = None  # None: all layers when the build can offload
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    default_model_id: str | None = None
    models_dir: str | None = None  # None: Paths.default_models_dir
    # Folders (e.g. LM Studio's models folder) whose GGUF files are offered, read-only.
    library_folders: list[str] = field(default_factory=list)
    discover_hf_cache: bool = True  # also offer GGUF files in the Hugging Face cache
    idle_unload_minutes: int = 0  # 0: never unload the model when idle
    sampling: SamplingParams = field(default_factory=SamplingParams)

    def load_params(self) -> LoadParams:
        return LoadParams(
            max_context=self.max_context,
            n_threads=self.n_threads,
            n_gpu_layers=self.n_gpu_layers,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sampling"] = self.sampling.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and k != "sampling"}
        sampling = SamplingParams.from_json(dict(data.get("sampling") or {}))
        return cls(sampling=sampling, **kwargs)


def load_settings(db: sqlite_utils.Database) -> Settings:
    return Settings.from_json(SettingsRepository(db).get(_KEY, {}) or {})


def save_settings(db: sqlite_utils.Database, settings: Settings) -> None:
    SettingsRepository(db).set(_KEY, settings.to_json())
