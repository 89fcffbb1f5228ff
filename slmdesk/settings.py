"""The user's settings: one typed dataclass with the defaults, and each model's own defaults
for a new chat and its loads, stored in the database."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import sqlite_utils

from slmdesk.engine.params import DEFAULT_MAX_CONTEXT, LoadParams, SamplingParams
from slmdesk.json_data import JsonFields, known_fields
from slmdesk.store.rows import first_row
from slmdesk.store.settings import SettingsRepository

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
_KEY = "app"


@dataclass
class Settings(JsonFields):
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
        data = super().to_json()
        data["sampling"] = self.sampling.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        kwargs = {k: v for k, v in known_fields(cls, data).items() if k != "sampling"}
        sampling = SamplingParams.from_json(dict(data.get("sampling") or {}))
        return cls(sampling=sampling, **kwargs)


def load_settings(db: sqlite_utils.Database) -> Settings:
    return Settings.from_json(SettingsRepository(db).get(_KEY, {}) or {})


def save_settings(db: sqlite_utils.Database, settings: Settings) -> None:
    SettingsRepository(db).set(_KEY, settings.to_json())


# A model's own defaults live under one settings key per model id.
_MODEL_DEFAULTS_PREFIX = "model_defaults:"


@dataclass(frozen=True)
class ModelDefaults:
    """What a new chat with one model starts with, and the context it loads with."""

    system_prompt: str
    sampling: SamplingParams
    max_context: int
    own: bool = False  # True: the model's saved defaults; False: the app's settings

    def to_json(self) -> dict[str, Any]:
        return {"system_prompt": self.system_prompt, "sampling": self.sampling.to_json(),
                "max_context": self.max_context}


def model_defaults(db: sqlite_utils.Database, model_id: str | None) -> ModelDefaults:
    """The defaults a new chat with ``model_id`` starts with (the GUI's and the CLI's).

    The model's saved defaults where it has them, else the app's settings (also for a key
    that a newer slmdesk wrote: only what is known is read).
    """
    settings = load_settings(db)
    app = ModelDefaults(settings.system_prompt, settings.sampling, settings.max_context)
    saved = SettingsRepository(db).get(_MODEL_DEFAULTS_PREFIX + model_id) if model_id else None
    if not isinstance(saved, dict):
        return app
    context = saved.get("max_context")
    prompt = saved.get("system_prompt")
    return ModelDefaults(
        system_prompt=prompt if isinstance(prompt, str) else app.system_prompt,
        sampling=SamplingParams.from_json(dict(saved.get("sampling") or {})),
        max_context=context if isinstance(context, int) and context > 0 else app.max_context,
        own=True,
    )


def save_model_defaults(
    db: sqlite_utils.Database, model_id: str, *, system_prompt: str,
    sampling: SamplingParams, max_context: int,
) -> ModelDefaults:
    """Keep these as ``model_id``'s defaults: new chats with it start with them."""
    defaults = ModelDefaults(system_prompt, sampling, max_context, own=True)
    SettingsRepository(db).set(_MODEL_DEFAULTS_PREFIX + model_id, defaults.to_json())
    return defaults


def reset_model_defaults(db: sqlite_utils.Database, model_id: str) -> ModelDefaults:
    """Forget ``model_id``'s own defaults: it uses the app's settings again."""
    SettingsRepository(db).delete(_MODEL_DEFAULTS_PREFIX + model_id)
    return model_defaults(db, None)


def load_params_for(db: sqlite_utils.Database, model_id: str | None) -> LoadParams:
    """The app's load settings with the context ``model_id`` loads with."""
    load = load_settings(db).load_params()
    load = replace(load, max_context=model_defaults(db, model_id).max_context)
    return replace(load, **adapter_params(db, model_id))


def adapter_params(db: sqlite_utils.Database, model_id: str | None) -> dict[str, Any]:
    """``lora_path`` and ``lora_scale`` for a fine-tune (a base model plus a LoRA adapter,
    ``slmdesk train``); nothing for a plain model."""
    if not model_id:
        return {}
    row = first_row(db, "models", "id = ?", [model_id])
    if row is None or not row.get("adapter_path"):
        return {}
    scale = row.get("adapter_scale")
    return {"lora_path": str(row["adapter_path"]),
            "lora_scale": 1.0 if scale is None else float(scale)}
