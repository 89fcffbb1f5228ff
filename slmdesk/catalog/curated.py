"""The curated catalog of GGUF models: resources/catalog.json, loaded and checked."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from slmdesk.errors import UserFacingError
from slmdesk.json_data import JsonFields, parse_json
from slmdesk.store.models import ModelRecord

__all__ = [
    "CatalogEntry",
    "CatalogError",
    "catalog_path",
    "load_catalog",
    "match_entry",
    "reference_for_file",
]

CATALOG_FORMAT: Final = 1
CATALOG_FILE: Final = "catalog.json"
CATALOG_ENV: Final = "SLMDESK_CATALOG"

_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
_REPO_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_COMMIT_RE: Final = re.compile(r"^[0-9a-f]{40}$")
_QUANT_RE: Final = re.compile(r"^[A-Za-z0-9_]{2,16}$")

_MODEL_FIELDS: Final = {
    "id": str, "name": str, "family": str, "base_model": str, "parameters": int,
    "architecture": str, "context_length": int, "licence": str, "good_at": str,
    "files": list,
}
_OPTIONAL_INT_FIELDS: Final = ("layers", "embedding", "heads", "kv_heads", "head_dim", "vocab")
_FILE_FIELDS: Final = {
    "quantization": str, "repo_id": str, "filename": str, "size_bytes": int,
    "size_approximate": bool,
}


class CatalogError(UserFacingError):
    """The catalog file is missing or malformed."""


@dataclass(frozen=True)
class CatalogEntry(JsonFields):
    """One downloadable file of a catalog model, with the model's facts.

    ``id`` is stable across catalog updates: the model id and the quantization.
    ``pinned`` means the commit and the sha256 are recorded and a download must match
    both; otherwise the commit is resolved at download time and the file is checked
    against the sha256 the Hub publishes (``sha256`` may still be known here).
    """

    id: str
    model_id: str
    name: str
    family: str
    base_model: str
    quantization: str
    repo_id: str
    filename: str
    revision: str | None
    sha256: str | None
    size_bytes: int
    size_approximate: bool
    parameters: int
    architecture: str
    context_length: int
    licence: str
    good_at: str
    layers: int | None = None
    embedding: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    vocab: int | None = None
    note: str | None = None
    # The file's fingerprint (slmdesk/engine/fingerprint.py): the mean log-likelihood per
    # token of the reference text, measured with llama.cpp, and the difference from it that
    # still counts as this file computed correctly (measured across CPU builds).
    fingerprint_logprob: float | None = None
    fingerprint_tolerance: float | None = None

    @property
    def pinned(self) -> bool:
        return self.revision is not None and self.sha256 is not None

    @property
    def has_architecture_numbers(self) -> bool:
        return None not in (self.layers, self.embedding, self.heads, self.kv_heads)

    @property
    def hub_url(self) -> str:
        revision = self.revision or "main"
        return f"https://huggingface.co/{self.repo_id}/blob/{revision}/{self.filename}"

    @property
    def verification_note(self) -> str:
        """How a download of this file is checked, in words for the UI."""
        if self.pinned:
            assert self.revision is not None
            return (f"Pinned to commit {self.revision[:10]}; the download must match the "
                    "recorded sha256.")
        if self.sha256 is not None:
            return ("Not pinned to a commit: slmdesk resolves the current commit when "
                    "downloading and checks the file against the recorded sha256.")
        return ("Not pinned: slmdesk resolves the current commit when downloading and checks "
                "the file against the sha256 the Hugging Face Hub publishes for it.")

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["pinned"] = self.pinned
        data["verification_note"] = self.verification_note
        data["hub_url"] = self.hub_url
        return data


def catalog_path() -> Path:
    """Where the catalog is: ``$SLMDESK_CATALOG``, the frozen app's copy, or the source tree."""
    override = os.environ.get(CATALOG_ENV)
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        # packaging/slmdesk.spec puts resources/catalog.json at the bundle's top level.
        return Path(bundle) / CATALOG_FILE
    return Path(__file__).resolve().parents[2] / "resources" / CATALOG_FILE


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    """Read and check the catalog; ``CatalogError`` names the file and the problem."""
    path = path or catalog_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CatalogError(f"The model catalog is missing: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"Cannot read the model catalog {path}: {exc}") from exc
    data = parse_json(text, invalid=lambda exc: CatalogError(
        f"The model catalog {path} is not valid JSON (line {exc.lineno}: {exc.msg})."))
    return _parse(data, path.name)


def _parse(data: Any, label: str) -> list[CatalogEntry]:
    def fail(where: str, problem: str) -> CatalogError:
        return CatalogError(f"Model catalog {label}: {where}: {problem}")

    if not isinstance(data, dict):
        raise fail("top level", "must be a JSON object")
    if data.get("format") != CATALOG_FORMAT:
        raise fail("format", f"must be {CATALOG_FORMAT}, found {data.get('format')!r}")
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise fail("models", "must be a non-empty list")
    entries: list[CatalogEntry] = []
    seen_models: set[str] = set()
    seen_files: set[tuple[str, str]] = set()
    for i, model in enumerate(models):
        where = f"models[{i}]"
        _check_fields(model, _MODEL_FIELDS, where, fail)
        model_id = model["id"]
        where = f"model '{model_id}'"
        if not _ID_RE.match(model_id):
            raise fail(where, "id must be lowercase letters, digits, '.', '_' or '-'")
        if model_id in seen_models:
            raise fail(where, "id is used twice")
        seen_models.add(model_id)
        for key in ("parameters", "context_length"):
            if model[key] <= 0:
                raise fail(f"{where}.{key}", "must be positive")
        numbers: dict[str, int | None] = {}
        for key in _OPTIONAL_INT_FIELDS:
            value = model.get(key)
            if value is not None and not (_is(value, int) and value > 0):
                raise fail(f"{where}.{key}", "must be a positive integer or absent")
            numbers[key] = value
        if not model["files"]:
            raise fail(f"{where}.files", "must list at least one file")
        quants: set[str] = set()
        for j, f in enumerate(model["files"]):
            fwhere = f"{where} files[{j}]"
            _check_file(f, fwhere, fail, quants, seen_files)
            quant, filename = f["quantization"], f["filename"]
            revision, sha256, note = f.get("revision"), f.get("sha256"), f.get("note")
            fingerprint = _fingerprint(f.get("fingerprint"), f"{fwhere}.fingerprint", fail)
            entries.append(CatalogEntry(
                id=f"{model_id}-{quant.lower()}",
                model_id=model_id,
                name=f"{model['name']} ({quant})",
                family=model["family"],
                base_model=model["base_model"],
                quantization=quant,
                repo_id=f["repo_id"],
                filename=filename,
                revision=revision,
                sha256=sha256,
                size_bytes=f["size_bytes"],
                size_approximate=f["size_approximate"],
                parameters=model["parameters"],
                architecture=model["architecture"],
                context_length=model["context_length"],
                licence=model["licence"],
                good_at=model["good_at"],
                note=note,
                fingerprint_logprob=fingerprint[0] if fingerprint else None,
                fingerprint_tolerance=fingerprint[1] if fingerprint else None,
                **{k: numbers[k] for k in ("layers", "embedding", "heads", "kv_heads",
                                           "head_dim", "vocab")},
            ))
    return entries


def _check_file(
    f: Any, where: str, fail: Callable[[str, str], CatalogError],
    quants: set[str], seen_files: set[tuple[str, str]],
) -> None:
    """Check one entry of a model's ``files``; ``quants`` and ``seen_files`` collect what
    the model and the catalog list already, to refuse a second listing."""
    _check_fields(f, _FILE_FIELDS, where, fail)
    quant = f["quantization"]
    if not _QUANT_RE.match(quant):
        raise fail(f"{where}.quantization", f"'{quant}' is not a quantization name")
    if quant.lower() in quants:
        raise fail(where, f"quantization {quant} is listed twice")
    quants.add(quant.lower())
    if not _REPO_RE.match(f["repo_id"]):
        raise fail(f"{where}.repo_id", f"'{f['repo_id']}' is not owner/name")
    filename = f["filename"]
    if (not filename.lower().endswith(".gguf") or filename.startswith(("/", "."))
            or ".." in filename.split("/") or "\\" in filename):
        raise fail(f"{where}.filename", f"'{filename}' is not a relative .gguf path")
    if (f["repo_id"], filename) in seen_files:
        raise fail(where, f"{f['repo_id']}/{filename} is listed twice")
    seen_files.add((f["repo_id"], filename))
    revision, sha256 = f.get("revision"), f.get("sha256")
    if revision is not None and not (isinstance(revision, str)
                                     and _COMMIT_RE.match(revision)):
        raise fail(f"{where}.revision", "must be a 40-character commit sha or null")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256_RE.match(sha256)):
        raise fail(f"{where}.sha256", "must be 64 lowercase hex digits or null")
    if revision is not None and sha256 is None:
        raise fail(where, "a pinned revision needs its sha256")
    if f["size_bytes"] <= 0:
        raise fail(f"{where}.size_bytes", "must be positive")
    note = f.get("note")
    if note is not None and not isinstance(note, str):
        raise fail(f"{where}.note", "must be text")


def _fingerprint(
    value: Any, where: str, fail: Callable[[str, str], CatalogError]
) -> tuple[float, float] | None:
    """``{"version": 1, "mean_logprob": -2.79, "tolerance": 0.01}`` -> (value, tolerance).

    A fingerprint of another reference text version is ignored (not compared)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail(where, "must be an object")
    from slmdesk.engine.fingerprint import FINGERPRINT_VERSION

    mean, tolerance = value.get("mean_logprob"), value.get("tolerance")
    if not (isinstance(mean, float) and mean < 0 and isinstance(tolerance, float)
            and 0 < tolerance < 1):
        raise fail(where, "needs a negative mean_logprob and a tolerance between 0 and 1")
    if value.get("version") != FINGERPRINT_VERSION:
        return None
    return mean, tolerance


def reference_for_file(
    size_bytes: int, architecture: str | None, entries: list[CatalogEntry] | None = None
) -> CatalogEntry | None:
    """The catalog file with a fingerprint that a local file claims to be: same exact size
    and architecture. Matching by content (sha256) would miss exactly what the fingerprint
    is for: a file whose bytes were damaged after it was checked."""
    try:
        entries = entries if entries is not None else load_catalog()
    except CatalogError:
        return None
    for e in entries:
        if (e.fingerprint_logprob is not None and not e.size_approximate
                and e.size_bytes == size_bytes and e.architecture == architecture):
            return e
    return None


def _check_fields(
    obj: Any, kinds: dict[str, type], where: str, fail: Callable[[str, str], CatalogError]
) -> None:
    """Raise ``fail(...)`` unless ``obj`` is an object with every field of ``kinds``."""
    if not isinstance(obj, dict):
        raise fail(where, "must be an object")
    for key, kind in kinds.items():
        if not _is(obj.get(key), kind):
            raise fail(f"{where}.{key}", f"is required and must be {_kind_name(kind)}")


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str) and bool(value.strip())
    return isinstance(value, kind)


def _kind_name(kind: type) -> str:
    return {int: "an integer", str: "non-empty text", bool: "true or false",
            list: "a list"}.get(kind, kind.__name__)


def match_entry(
    record: ModelRecord, entries: list[CatalogEntry] | None = None
) -> CatalogEntry | None:
    """The catalog entry of an installed model: by sha256, else by hub repo and file name.

    A record without a hub origin matches by file name only when its size is the
    catalog's exact size (so a renamed copy of a catalog file is still recognised).
    """
    try:
        entries = entries if entries is not None else load_catalog()
    except CatalogError:
        return None
    if record.sha256:
        for e in entries:
            if e.sha256 == record.sha256:
                return e
    if record.repo_id and record.hub_filename:
        for e in entries:
            if (e.repo_id.casefold() == record.repo_id.casefold()
                    and e.filename == record.hub_filename):
                return e
    name = os.path.basename(record.path)
    for e in entries:
        if (not e.size_approximate and e.size_bytes == record.size_bytes
                and os.path.basename(e.filename) == name):
            return e
    return None
