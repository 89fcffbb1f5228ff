"""`slmdesk models search` and `models pull`: the Hugging Face Hub, with a download progress bar."""

# The hub client, the store and the download manager are imported inside the handlers:
# building the parser imports every command module, and huggingface_hub is slow to import.

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from slmdesk.cli.common import add_command, open_core
from slmdesk.cli.output import print_json, print_result
from slmdesk.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from slmdesk.catalog.downloads import DownloadEvent
    from slmdesk.catalog.hub import HubFile


def add_parsers(msub: Any) -> None:
    ms = add_command(msub, "search", _search, "search the Hugging Face Hub for GGUF models",
        "query", json_output=True)
    ms.add_argument("--sort", choices=["downloads", "likes", "recent"], default="downloads")
    ms.add_argument("--limit", type=int, default=20)
    mp = msub.add_parser(
        "pull", help="download a GGUF file from the hub (resumable), verify it and register it"
    )
    mp.add_argument(
        "repo_id", metavar="REPO_ID", help="for example HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    )
    mp.add_argument("--file", help="which GGUF file (default: Q4_K_M, else the smallest Q4)")
    mp.add_argument("--revision", help="branch, tag or commit (default: main)")
    mp.add_argument("--json", action="store_true")
    mp.set_defaults(func=_pull)


def _search(args: argparse.Namespace) -> int:
    from slmdesk.catalog import hub

    repos = hub.search_models(args.query, sort=args.sort, limit=args.limit)
    if args.json:
        print_json([r.to_json() for r in repos])
        return 0
    if not repos:
        print(f"No GGUF models on the hub match {args.query!r}.")
        return 0
    width = max(len(r.repo_id) for r in repos)
    print(f"{'REPO':<{width}}  {'DOWNLOADS':>10}  {'LIKES':>6}  UPDATED")
    for r in repos:
        gated = "  (gated)" if r.gated else ""
        print(f"{r.repo_id:<{width}}  {r.downloads:>10,}  {r.likes:>6,}  "
              f"{(r.last_modified or '?')[:10]}{gated}")
    return 0


def pick_hub_file(files: list[HubFile], wanted: str | None, repo_id: str) -> HubFile:
    """The file named by --file (exactly, or the one name containing it), else a Q4 one."""
    if not files:
        raise NotFoundError(f"{repo_id} has no GGUF files.")
    names = ", ".join(f.filename for f in files)
    if wanted:
        for f in files:
            if f.filename == wanted:
                return f
        matches = [f for f in files if wanted.lower() in f.filename.lower()]
        if len(matches) == 1:
            return matches[0]
        raise NotFoundError(f"{repo_id} has no GGUF file {wanted!r}. Its files: {names}")
    # Multimodal projectors and non-first split parts are never the model to pick.
    candidates = [
        f for f in files
        if not f.filename.rsplit("/", 1)[-1].lower().startswith("mmproj")
        and (f.split is None or f.split[0] == 1)
    ]
    for f in candidates:
        if f.quantization == "Q4_K_M":
            return f
    q4 = [f for f in candidates if (f.quantization or "").startswith("Q4")]
    if q4:
        return min(q4, key=lambda f: f.size_bytes or 0)
    if len(candidates) == 1:
        return candidates[0]
    raise InvalidInputError(
        f"{repo_id} has several GGUF files and no Q4 one; choose with --file. Its files: {names}"
    )


class DownloadProgress:
    """A one-line progress bar on stderr (percent, MB, speed, ETA) and state changes."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.last_error: str | None = None

    def __call__(self, event: DownloadEvent) -> None:
        record = event.record
        if event.kind == "state":
            if record.error and record.error != self.last_error and record.state == "running":
                self.last_error = record.error
                self.line(f"{record.error}")
            return
        now = time.monotonic()
        if not self.tty or now - self.last < 0.2:
            return
        self.last = now
        size = record.size_bytes or 0
        done = record.downloaded_bytes
        pct = f"{100 * done / size:5.1f}%" if size else "  ?  "
        speed = f"{event.speed_bps / 1e6:6.1f} MB/s" if event.speed_bps else "   ? MB/s"
        eta = f"ETA {int(event.eta_s) // 60:d}:{int(event.eta_s) % 60:02d}" if event.eta_s else ""
        bar = "#" * int(30 * done / size) if size else ""
        sys.stderr.write(
            f"\r{pct} [{bar:<30}] {done / 1e6:,.1f}/{size / 1e6:,.1f} MB {speed} {eta}   "
        )
        sys.stderr.flush()

    def line(self, text: str) -> None:
        """A line of its own, clearing the bar first on a terminal."""
        if self.tty:
            sys.stderr.write("\r\033[K")
        print(text, file=sys.stderr)


def _model_name(repo_id: str, quantization: str | None) -> str:
    """The display name of a pulled file: the repository's name without -GGUF, and its quant."""
    base = repo_id.split("/")[1]
    for suffix in ("-GGUF", "-gguf", "_GGUF", "-GGUFs"):
        base = base.removesuffix(suffix)
    return f"{base} ({quantization})" if quantization else base


def _pull(args: argparse.Namespace) -> int:
    from pathlib import Path

    from slmdesk.catalog import hub
    from slmdesk.catalog.downloads import DONE, DownloadManager
    from slmdesk.errors import DownloadError, ModelFileError
    from slmdesk.settings import load_settings
    from slmdesk.store.models import ModelRepository

    hub.validate_repo_id(args.repo_id)
    core = open_core()
    settings = load_settings(core.db)
    models_dir = Path(settings.models_dir or core.paths.default_models_dir)
    commit, files = hub.list_gguf_files(args.repo_id, revision=args.revision)
    file = pick_hub_file(files, args.file, args.repo_id)
    hub.safe_filename(file.filename)
    if file.split is not None:
        raise InvalidInputError(
            f"{file.filename} is part {file.split[0]} of a model split into {file.split[1]} "
            "files; slmdesk cannot download split models yet."
        )
    ok, message = hub.check_architecture(file)
    if not ok:
        raise ModelFileError(message)
    progress = DownloadProgress()
    manager = DownloadManager(core.paths.database, models_dir, listener=progress, max_parallel=1)
    if not args.json:
        print(f"Downloading {args.repo_id}/{file.filename} ({(file.size_bytes or 0) / 1e6:,.1f} "
              f"MB) at {commit[:12]} to {manager.dest_for(args.repo_id, file.filename)}",
              file=sys.stderr)
    try:
        manager.start()
        record = manager.enqueue(
            args.repo_id, file.filename, revision=commit,
            display_name=_model_name(args.repo_id, file.quantization),
            licence=file.licence, expected_sha256=file.sha256, size_bytes=file.size_bytes,
        )
        record = manager.wait(record.id)
    except KeyboardInterrupt:
        manager.shutdown()
        progress.line(
            "Interrupted; the partial file is kept. Run the same `slmdesk models pull` "
            "again to resume."
        )
        return 130
    finally:
        manager.shutdown()
    if progress.tty:
        sys.stderr.write("\n")
    if record.state != DONE or record.model_id is None:
        raise DownloadError(record.error or f"The download ended as {record.state}.")
    model = ModelRepository(core.db).get(record.model_id)
    print_result(args.json, {"download": record.to_json(), "model": model.to_json()},
                 f"Registered {model.name} ({model.id}) from {model.path}, sha256 verified")
    return 0
