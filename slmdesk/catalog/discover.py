"""Find GGUF files already on this machine (Hugging Face cache, LM Studio and other folders).

Found files are offered read-only: registering one records it where it is, never copies,
moves or deletes it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

import sqlite_utils

from slmdesk.engine.gguf import quantization_from_name
from slmdesk.errors import InvalidInputError
from slmdesk.json_data import JsonFields
from slmdesk.store.models import ModelRecord

__all__ = [
    "DEFAULT_FOLDERS",
    "DiscoveredFile",
    "discover",
    "hf_cache_dir",
    "register_discovered",
]

# Folders worth suggesting to a person (LM Studio's current and older model folders).
DEFAULT_FOLDERS: Final = ("~/.lmstudio/models", "~/.cache/lm-studio/models")
MAX_DEPTH: Final = 6  # below a folder (LM Studio uses publisher/repo/file.gguf)
MAX_ENTRIES: Final = 50_000  # directory entries looked at per folder
# Names a download tool gives a file it is still writing.
_PARTIAL_SUFFIXES: Final = (".incomplete", ".part", ".partial", ".tmp", ".download",
                            ".crdownload", ".aria2", ".lock")
_SPLIT_RE: Final = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
# Vision projectors (llava/mtmd "mmproj" files) are GGUF but not language models.
_PROJECTOR_RE: Final = re.compile(r"(^|[-_.])(mmproj|projector|clip)([-_.]|$)", re.IGNORECASE)

Source = Literal["hf-cache", "folder"]


@dataclass(frozen=True)
class DiscoveredFile(JsonFields):
    """A GGUF model file found on disk, not necessarily registered."""

    path: str  # as found (in the HF cache: the snapshot path, which keeps the file name)
    size_bytes: int
    source: Source
    folder: str  # the folder (or HF cache) it was found under
    repo_id: str | None = None  # HF cache only
    revision: str | None = None  # HF cache only: the snapshot's commit
    filename: str | None = None  # HF cache only: the path inside the repository
    parts: int = 1  # a split model: the number of files (this is the first)
    registered: bool = False
    quantization: str | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["name"] = self.name
        return data


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, honouring ``HF_HOME`` and ``HF_HUB_CACHE``."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def discover(
    folders: Iterable[str | os.PathLike[str]],
    *,
    hf_cache: bool = True,
    hf_cache_path: str | os.PathLike[str] | None = None,
    known_paths: Collection[str] = (),
) -> list[DiscoveredFile]:
    """GGUF model files in the HF cache and in ``folders``, each once.

    Skips partial downloads, vision projectors and the second and later parts of split
    models. ``known_paths`` (registered model paths) mark files as ``registered``; a file
    reached by two paths (a symlink) is listed once.
    """
    known = set()
    for p in known_paths:
        known.add(os.path.abspath(p))
        known.add(os.path.realpath(p))
    seen: set[str] = set()
    found: list[DiscoveredFile] = []

    def add(item: DiscoveredFile) -> None:
        real = os.path.realpath(item.path)
        if real in seen:
            return
        seen.add(real)
        registered = os.path.abspath(item.path) in known or real in known
        found.append(DiscoveredFile(**{**asdict(item), "registered": registered}))

    if hf_cache:
        cache = Path(hf_cache_path) if hf_cache_path is not None else hf_cache_dir()
        for item in _scan_hf_cache(cache):
            add(item)
    for folder in folders:
        root = Path(folder).expanduser()
        for item in _scan_folder(root):
            add(item)
    return found


def _candidate(name: str) -> tuple[bool, int]:
    """(is a model file to offer, number of parts) for a file name."""
    lower = name.lower()
    if not lower.endswith(".gguf") or lower.startswith("."):
        return False, 0
    if _PROJECTOR_RE.search(name[:-5]):
        return False, 0
    split = _SPLIT_RE.search(name)
    if split:
        part, parts = int(split.group(1)), int(split.group(2))
        if part != 1 or parts < 1:
            return False, 0
        return True, parts
    return True, 1


def _regular_size(path: str) -> int | None:
    """Size of a regular, non-empty file (following a symlink), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return None
    return st.st_size


def _walk(root: Path, max_depth: int) -> Iterator[tuple[str, list[str]]]:
    """(directory, file names) below ``root``, not following directory symlinks, bounded."""
    entries = 0
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=None):
        depth = len(Path(dirpath).parts) - base_depth
        entries += len(dirnames) + len(filenames)
        if entries > MAX_ENTRIES:
            return
        if depth >= max_depth:
            dirnames[:] = []
        # Hidden folders (.git, .cache inside a model folder) hold no models to offer.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        yield dirpath, sorted(filenames)


def _model_files(root: Path) -> Iterator[tuple[str, str, int, int]]:
    """(path, name, size, parts) of each model file under ``root``: partial downloads,
    projectors and later parts of split models left out, and files (or links) that do not
    lead to a regular file skipped."""
    for dirpath, filenames in _walk(root, MAX_DEPTH):
        for name in filenames:
            if name.lower().endswith(_PARTIAL_SUFFIXES):
                continue
            ok, parts = _candidate(name)
            if not ok:
                continue
            path = os.path.join(dirpath, name)
            size = _regular_size(path)
            if size is None:
                continue
            yield path, name, size, parts


def _scan_folder(root: Path) -> Iterator[DiscoveredFile]:
    if not root.is_dir():
        return
    for path, name, size, parts in _model_files(root):
        yield DiscoveredFile(
            path=os.path.abspath(path), size_bytes=size, source="folder",
            folder=str(root), parts=parts, quantization=quantization_from_name(name),
        )


def _scan_hf_cache(cache: Path) -> Iterator[DiscoveredFile]:
    """``models--org--name/snapshots/<commit>/<file>`` symlinks to ``blobs/<hash>``."""
    try:
        repos = sorted(p for p in cache.iterdir() if p.name.startswith("models--"))
    except OSError:
        return
    for repo_dir in repos:
        repo_id = repo_dir.name[len("models--"):].replace("--", "/", 1)
        snapshots = repo_dir / "snapshots"
        try:
            revisions = sorted(p.name for p in snapshots.iterdir() if p.is_dir())
        except OSError:
            continue
        # The commit refs/main points at first, so its copy wins over older snapshots.
        try:
            main = (repo_dir / "refs" / "main").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            main = ""
        revisions.sort(key=lambda r: r != main)
        for revision in revisions:
            snap = snapshots / revision
            # A snapshot entry whose blob is missing (cache cleaned) is skipped; unfinished
            # downloads live only in blobs/ as *.incomplete.
            for path, name, size, parts in _model_files(snap):
                yield DiscoveredFile(
                    path=os.path.abspath(path), size_bytes=size, source="hf-cache",
                    folder=str(cache), repo_id=repo_id, revision=revision,
                    filename=os.path.relpath(path, snap).replace(os.sep, "/"),
                    parts=parts, quantization=quantization_from_name(name),
                )


def register_discovered(db: sqlite_utils.Database, file: DiscoveredFile) -> ModelRecord:
    """Validate a found file and register it in place, as a "discovered" model.

    An HF-cache file keeps its snapshot path (a split model's other parts are found next
    to it by name) and its hub origin. The file is never copied or changed.
    """
    from slmdesk.catalog.registry import import_model

    ok, _parts = _candidate(os.path.basename(file.path))
    if not ok:
        raise InvalidInputError(
            f"{os.path.basename(file.path)} is not a model file slmdesk can use "
            "(a vision projector or a later part of a split model)."
        )
    hub = None
    if file.source == "hf-cache" and file.repo_id and file.revision and file.filename:
        hub = (file.repo_id, file.revision, file.filename)
    return import_model(
        db, file.path, source="discovered", hub=hub,
        keep_path=file.source == "hf-cache" or file.parts > 1,
    )
