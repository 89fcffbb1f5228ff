"""A JSON-lines file of classification results that a killed run can resume from.

The first line is the run's header: what was classified (the input file's size and SHA-256,
its column), with what (the classifier spec, the model) and a fingerprint of all of it. Each
further line is one text's result with its ``index`` in the input. Lines are flushed as they
are written and fsync'd in batches, so a killed process loses at most a torn last line, which
``open_results`` drops; ``--resume`` then classifies only the indices not yet in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from slmdesk.catalog.library import hash_file
from slmdesk.errors import InvalidInputError

FORMAT = "slmdesk-classify-results"
VERSION = 1
FSYNC_EVERY_LINES = 32
FSYNC_EVERY_SECONDS = 2.0
# What the header records and --resume compares, in the words of the refusal.
_COMPARED = {"input": "input file", "classifier": "labels and classifier settings",
             "model": "model"}


def file_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The size and SHA-256 of a file (``UserFacingError`` when it cannot be read)."""
    sha256 = hash_file(path)
    return {"bytes": os.path.getsize(path), "sha256": sha256}


def run_header(input_identity: Mapping[str, Any], classifier: Mapping[str, Any],
               model: Mapping[str, Any], texts: int, calibration: str) -> dict[str, Any]:
    """The header line of a results file: the compared settings and their fingerprint."""
    compared = {"input": dict(input_identity), "classifier": dict(classifier),
                "model": dict(model)}
    canonical = json.dumps(compared, sort_keys=True, ensure_ascii=False)
    return {"format": FORMAT, "version": VERSION,
            "fingerprint": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
            **compared, "texts": texts, "calibration": calibration}


@dataclass
class ResultsFile:
    """An open results file: ``done`` holds the indices already in it; ``write`` appends."""

    path: Path
    handle: IO[str]
    done: set[int] = field(default_factory=set)
    unsynced: int = 0
    last_sync: float = field(default_factory=time.monotonic)

    def write(self, index: int, result: Mapping[str, Any]) -> None:
        """Append one text's result, flushed now and fsync'd with its batch."""
        self.handle.write(json.dumps({"index": index, **result}, ensure_ascii=False) + "\n")
        self.handle.flush()
        self.done.add(index)
        self.unsynced += 1
        if (self.unsynced >= FSYNC_EVERY_LINES
                or time.monotonic() - self.last_sync >= FSYNC_EVERY_SECONDS):
            self.sync()

    def sync(self) -> None:
        if self.unsynced:
            os.fsync(self.handle.fileno())
        self.unsynced, self.last_sync = 0, time.monotonic()

    def close(self) -> None:
        self.sync()
        self.handle.close()


def open_results(path: str | os.PathLike[str], header: dict[str, Any], *,
                 resume: bool) -> ResultsFile:
    """Start ``path`` with ``header``, or (``resume``) continue it after its valid lines.

    Without ``resume`` an existing file is refused rather than overwritten. With it, a file
    written for other settings is refused, naming what differs; a missing one is started.
    """
    target = Path(path)
    if not (resume and target.exists() and target.stat().st_size > 0):
        if target.exists() and not resume:
            raise InvalidInputError(
                f"{target} already exists. Add --resume to continue it, or remove it (or "
                "choose another --output) to start over.")
        handle = _open_new(target)
        handle.write(json.dumps(header, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        return ResultsFile(target, handle)
    old_header, done, valid_end = _read_valid(target, int(header["texts"]))
    _check_same_run(target, old_header, header)
    # A torn or damaged tail (a kill mid-write, a crash before fsync) is dropped and its
    # texts classified again, so every index ends up in the file exactly once.
    os.truncate(target, valid_end)
    return ResultsFile(target, open(target, "a", encoding="utf-8", newline="\n"), done)


def _open_new(target: Path) -> IO[str]:
    try:  # "w" only reaches an existing file when it is empty (a resume of nothing)
        return open(target, "w" if target.exists() else "x", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise InvalidInputError(f"Cannot write {target}: {exc.strerror or exc}.") from exc


def _read_valid(target: Path, texts: int) -> tuple[dict[str, Any], set[int], int]:
    """The header, the indices of the valid result lines before the first damaged one, and
    the byte offset where those lines end."""
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {target}: {exc.strerror or exc}.") from exc
    lines = data.split(b"\n")[:-1]  # the part after the last newline is torn: dropped
    header = _parse_line(lines[0]) if lines else None
    if header is None or header.get("format") != FORMAT:
        raise InvalidInputError(
            f"{target} is not a results file of `slmdesk classify --output` (its first line "
            "is not the run's header); choose another --output.")
    done: set[int] = set()
    end = len(lines[0]) + 1
    for line in lines[1:]:
        row = _parse_line(line)
        index = row.get("index") if row is not None else None
        if (not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < texts
                or index in done):
            break
        done.add(index)
        end += len(line) + 1
    return header, done, end


def _parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _check_same_run(target: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old.get("version") != VERSION:
        raise InvalidInputError(
            f"{target} was written by another version of slmdesk; it cannot be resumed. "
            "Classify into a new --output file.")
    if old.get("fingerprint") == new["fingerprint"]:
        return
    differ = [words for key, words in _COMPARED.items() if old.get(key) != new[key]]
    raise InvalidInputError(
        f"{target} was written for another run (its {', '.join(differ or ['settings'])} "
        "differ); --resume continues only the same input, labels, settings and model. "
        "Classify into a new --output file, or remove it to start over.")
