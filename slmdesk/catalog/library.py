"""Library operations on registered models: remove, disk usage, details, sha256 on demand."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import sqlite_utils

from slmdesk.catalog.curated import CatalogEntry, match_entry
from slmdesk.catalog.fit import (
    MemoryBudget,
    accuracy_note,
    effective_context,
    estimate_for_record,
    format_bytes,
)
from slmdesk.engine.params import DEFAULT_MAX_CONTEXT
from slmdesk.errors import InvalidInputError, TemplateError, UserFacingError
from slmdesk.json_data import JsonFields
from slmdesk.store.downloads import DownloadRepository
from slmdesk.store.models import ModelRecord, ModelRepository

__all__ = [
    "Removal",
    "Usage",
    "disk_usage",
    "format_details",
    "hash_file",
    "model_details",
    "record_sha256",
    "remove_model",
]

HASH_CHUNK: Final = 4 * 1024 * 1024
# A short conversation that shows how the model's template lays out each role.
SAMPLE_CONVERSATION: Final = (
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
)


@dataclass(frozen=True)
class Removal(JsonFields):
    """What removing a model did."""

    freed_bytes: int
    deleted_paths: list[str]
    kept_path: str | None  # the model's file, left where it is (None when deleted)


@dataclass(frozen=True)
class Usage(JsonFields):
    """Disk space used by the library."""

    total_bytes: int  # every registered file that exists (each file once) + partials
    owned_bytes: int  # files slmdesk downloaded (removing them frees the space)
    partial_bytes: int  # unfinished downloads
    per_model: dict[str, int] = field(default_factory=dict)  # model id -> file size


def _is_starter_file(record: ModelRecord) -> bool:
    from slmdesk.catalog.registry import find_starter_model

    if record.source == "starter":
        return True
    starter = find_starter_model()
    return starter is not None and os.path.realpath(starter) == os.path.realpath(record.path)


def _freeable(path: str) -> int:
    """Bytes deleting ``path`` frees: its size, unless another hard link keeps the data."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return 0
    return st.st_size if st.st_nlink <= 1 else 0


def remove_model(
    db: sqlite_utils.Database,
    model_id: str,
    *,
    delete_file: bool = False,
    models_dir: str | os.PathLike[str] | None = None,
) -> Removal:
    """Unregister a model; delete its file when slmdesk downloaded it (or ``delete_file``).

    A downloaded model's file and its partial downloads are deleted. An imported,
    discovered or starter model's file is left alone unless ``delete_file`` asks for it;
    the bundled starter file and files inside the Hugging Face cache are never deleted.
    Conversations keep working: their model reference becomes empty.
    """
    repo = ModelRepository(db)
    record = repo.get(model_id)
    delete = record.owns_file or delete_file
    if delete and record.adapter is not None:
        raise InvalidInputError(
            f"{record.name} is a fine-tune that shares the file of its base model; that "
            "file is not deleted with it. Remove it without deleting the file."
        )
    if delete and _is_starter_file(record):
        raise InvalidInputError(
            f"{record.name} is the starter model that ships with slmdesk; its file is part "
            "of the installation and is not deleted. Remove it without deleting the file."
        )
    if delete_file and not record.owns_file and os.path.islink(record.path):
        raise InvalidInputError(
            f"{record.path} is a link into another program's store (such as the Hugging "
            "Face cache); slmdesk does not delete it. Remove the model without deleting "
            "the file, and clean that store with its own tool (huggingface-cli delete-cache)."
        )
    downloads = DownloadRepository(db)
    rows = downloads.for_model(record.id, record.path) if record.owns_file else []
    targets: list[str] = []
    if delete and os.path.lexists(record.path):
        if os.path.isdir(record.path):
            raise InvalidInputError(f"{record.path} is a directory, not a model file.")
        targets.append(record.path)
    for row in rows:
        part = row.part_path
        if part and os.path.isfile(part) and part not in targets:
            targets.append(part)
    freed = 0
    deleted: list[str] = []
    for path in targets:
        size = _freeable(path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UserFacingError(
                f"Cannot delete {path}: {exc.strerror or exc}. The model is still in the "
                "library."
            ) from exc
        freed += size
        deleted.append(path)
    with db.atomic():
        repo.remove(record.id)
        downloads.delete([row.id for row in rows])
    if models_dir is not None:
        for path in deleted:
            _prune_empty_dirs(Path(path).parent, Path(models_dir))
    return Removal(
        freed_bytes=freed, deleted_paths=deleted,
        kept_path=None if delete else record.path,
    )


def _prune_empty_dirs(folder: Path, root: Path) -> None:
    """Remove empty folders from ``folder`` up to (not including) ``root``."""
    try:
        root = root.resolve()
        folder = folder.resolve()
    except OSError:
        return
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def disk_usage(
    db: sqlite_utils.Database, models_dir: str | os.PathLike[str] | None = None
) -> Usage:
    """Disk space of every registered model file (each file once) and of partial downloads.

    ``models_dir`` also counts stray ``*.part`` files there that no download row names.
    """
    seen: set[str] = set()
    total = owned = partial = 0
    per_model: dict[str, int] = {}
    for record in ModelRepository(db).list():
        try:
            size = os.path.getsize(record.path)
        except OSError:
            per_model[record.id] = 0
            continue
        per_model[record.id] = size
        real = os.path.realpath(record.path)
        if real in seen:
            continue
        seen.add(real)
        total += size
        if record.owns_file:
            owned += size
    parts: set[str] = set()
    for part in DownloadRepository(db).part_paths():
        parts.add(os.path.realpath(part))
    if models_dir is not None and os.path.isdir(models_dir):
        for p in Path(models_dir).rglob("*.part"):
            parts.add(os.path.realpath(p))
    for part in parts:
        if part in seen:
            continue
        try:
            size = os.path.getsize(part)
        except OSError:
            continue
        seen.add(part)
        partial += size
    return Usage(total_bytes=total + partial, owned_bytes=owned, partial_bytes=partial,
                 per_model=per_model)


def hash_file(
    path: str | os.PathLike[str],
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """The sha256 of a file, read in chunks; run it off the GUI thread.

    ``progress(done, total)`` is called after each chunk; a set ``cancel`` stops with
    ``InvalidInputError``.
    """
    digest = hashlib.sha256()
    try:
        total = os.path.getsize(path)
        done = 0
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                if cancel is not None and cancel.is_set():
                    raise InvalidInputError("Hashing was cancelled.")
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except OSError as exc:
        raise UserFacingError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def record_sha256(db: sqlite_utils.Database, model_id: str, digest: str) -> ModelRecord:
    """Keep a computed sha256 on the model's record."""
    return ModelRepository(db).set_sha256(model_id, digest)


def _template_preview(source: str | None) -> tuple[str | None, str | None]:
    """(rendered sample conversation, notice) for a chat template."""
    from slmdesk.engine.template import ChatTemplate, fallback_template

    # The special tokens' text lives in the vocabulary, which is not read here; the
    # preview shows them empty.
    if not source:
        preview = fallback_template().render(list(SAMPLE_CONVERSATION))
        return preview, "The model has no chat template; slmdesk uses a generic one (shown)."
    try:
        return ChatTemplate(source, "", "").render(list(SAMPLE_CONVERSATION)), None
    except TemplateError as exc:
        preview = fallback_template().render(list(SAMPLE_CONVERSATION))
        return preview, f"{exc.message} slmdesk falls back to a generic template (shown)."


def model_details(
    record: ModelRecord,
    *,
    context: int | None = None,
    catalog: list[CatalogEntry] | None = None,
    budget: MemoryBudget | None = None,
) -> dict[str, Any]:
    """Everything the library shows about a model, as plain data.

    ``context`` is the context-size setting (capped by the model's trained length, as a
    load would); the fit estimate is made for it.
    """
    from slmdesk.engine.llama_engine import validate_model_file
    from slmdesk.errors import ModelFileError

    exists = os.path.isfile(record.path)
    chat_template: str | None = None
    file_problem: str | None = None
    if exists:
        try:
            chat_template = validate_model_file(record.path).chat_template
        except ModelFileError as exc:
            file_problem = exc.message
    preview, notice = _template_preview(chat_template) if exists and not file_problem \
        else (None, None)
    n_ctx = effective_context(context or DEFAULT_MAX_CONTEXT, record.context_length)
    try:
        fit = estimate_for_record(record, n_ctx, budget=budget).to_json()
    except UserFacingError:
        fit = None
    entry = match_entry(record, catalog)
    hub = None
    if record.repo_id:
        hub = {
            "repo_id": record.repo_id,
            "revision": record.revision,
            "filename": record.hub_filename,
            "url": f"https://huggingface.co/{record.repo_id}",
        }
    return {
        "id": record.id,
        "name": record.name,
        "architecture": record.architecture,
        "parameters": record.parameter_count,
        "quantization": record.quantization,
        "context_length": record.context_length,
        "licence": record.licence,
        "path": record.path,
        "exists": exists,
        "file_problem": file_problem,
        "size_bytes": record.size_bytes,
        "sha256": record.sha256,
        "source": record.source,
        "owns_file": record.owns_file,
        "added_at": record.added_at,
        "hub": hub,
        "catalog": entry.to_json() if entry else None,
        "chat_template": chat_template,
        "template_preview": preview,
        "template_notice": notice,
        "context": n_ctx,
        "fit": fit,
        "memory": {
            "estimated_bytes": record.estimated_memory_bytes,
            "measured_bytes": record.measured_memory_bytes,
            "context": record.measured_context,
            "last_loaded_at": record.last_loaded_at,
            "note": accuracy_note(record.estimated_memory_bytes, record.measured_memory_bytes,
                                  record.measured_context),
        },
    }


def format_details(details: dict[str, Any]) -> str:
    """``model_details`` as text for a terminal or a plain-text pane."""
    lines = [f"{details['name']}  ({details['id']})"]

    def add(label: str, value: Any) -> None:
        if value not in (None, ""):
            lines.append(f"  {label}: {value}")

    params = details["parameters"]
    add("architecture", details["architecture"])
    add("parameters", f"{params / 1e6:,.0f} M" if params else None)
    add("quantization", details["quantization"])
    add("trained context", f"{details['context_length']:,} tokens"
        if details["context_length"] else None)
    add("licence", details["licence"] or "unknown")
    add("file", details["path"] + ("" if details["exists"] else "  [missing]"))
    add("problem", details["file_problem"])
    add("size", format_bytes(details["size_bytes"]))
    add("sha256", details["sha256"] or "not computed (slmdesk models info ID --sha256)")
    source = details["source"]
    add("source", f"{source} (slmdesk deletes the file with the model)"
        if details["owns_file"] else f"{source} (the file stays when the model is removed)")
    hub = details["hub"]
    if hub:
        add("hub", f"{hub['repo_id']} {hub['filename'] or ''} @ {hub['revision'] or '?'}")
    entry = details["catalog"]
    if entry:
        add("catalog", f"{entry['name']} — {entry['good_at']}")
    fit = details["fit"]
    if fit:
        add(f"fit at {details['context']:,} tokens", fit["sentence"])
    memory = details["memory"]
    # The fit line holds the one memory figure (measured when a load at this context
    # measured it); a measurement is not repeated beside it in other words.
    if memory["last_loaded_at"] and not memory["measured_bytes"]:
        add("measured memory", "not measured (the last load could not be told apart from "
            "other memory use)")
    if details["template_notice"]:
        add("chat template", details["template_notice"])
    if details["template_preview"] is not None:
        lines.append("  sample conversation as the model sees it:")
        lines.extend("    " + line for line in details["template_preview"].splitlines())
    return "\n".join(lines)
