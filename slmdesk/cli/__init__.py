"""The `slmdesk` command line: the same core as the GUI, no Qt import unless the GUI starts."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from slmdesk import __version__
from slmdesk.errors import InvalidInputError, UserFacingError
from slmdesk.paths import HOME_ENV

log = logging.getLogger("slmdesk")


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="slmdesk",
        description="Small language models on the desktop, offline. "
        "With no command, starts the app.",
    )
    p.add_argument("--version", action="version", version=f"slmdesk {__version__}")
    p.add_argument("--home", metavar="DIR", help=f"root every slmdesk directory in DIR "
                   f"(same as ${HOME_ENV})")
    p.add_argument("--self-test", action="store_true", help="run a quick self-test and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    models = sub.add_parser("models", help="list and import models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ml = msub.add_parser("list", help="list registered models")
    ml.add_argument("--json", action="store_true")
    mi = msub.add_parser("import", help="validate and register a local GGUF file (no copy)")
    mi.add_argument("path")
    mi.add_argument("--name")
    mi.add_argument("--json", action="store_true")
    _add_models_hub_parsers(msub)
    _add_models_library_parsers(msub)

    chat = sub.add_parser("chat", help="chat with a model (interactive without PROMPT)")
    chat.add_argument("prompt", nargs="?", metavar="PROMPT")
    chat.add_argument("-m", "--model", help="model id, name or file name")
    chat.add_argument("--system", help="system prompt for a new conversation")
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--top-p", type=float)
    chat.add_argument("--top-k", type=int)
    chat.add_argument("--min-p", type=float)
    chat.add_argument("--repeat-penalty", type=float)
    chat.add_argument("--seed", type=int)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--stop", action="append", metavar="TEXT", help="stop string (repeatable)")
    chat.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    chat.add_argument("--force", action="store_true", help=_FORCE_HELP)
    chat.add_argument("--continue", dest="continue_id", metavar="CONVERSATION_ID")
    chat.add_argument("--json", action="store_true", help="print one JSON object at the end")

    chats = sub.add_parser(
        "chats", help="list, show, search, export, import and delete conversations"
    )
    csub = chats.add_subparsers(dest="chats_command", metavar="ACTION", required=True)
    cl = csub.add_parser("list", help="list conversations, most recent first")
    cl.add_argument("--json", action="store_true")
    cl.add_argument("--limit", type=int, default=50)
    cs = csub.add_parser("show", help="show the branch on screen (Markdown or --json)")
    cs.add_argument("id")
    cs.add_argument("--json", action="store_true")
    cq = csub.add_parser("search", help="search the text of every conversation")
    cq.add_argument("query")
    cq.add_argument("--json", action="store_true")
    ce = csub.add_parser(
        "export", help="Markdown (the branch on screen) or JSON (every branch, for import)"
    )
    ce.add_argument("id")
    ce.add_argument("--format", choices=["md", "json"], default="md")
    ce.add_argument("--json", action="store_true", help="same as --format json")
    ce.add_argument("-o", "--output", help="write to this file instead of stdout")
    ci = csub.add_parser("import", help="add a conversation from a JSON export")
    ci.add_argument("file", metavar="FILE")
    ci.add_argument("--json", action="store_true")
    cd = csub.add_parser("delete", help="delete a conversation for good")
    cd.add_argument("id")

    _add_classify_parsers(sub)
    _add_data_parsers(sub)

    doctor = sub.add_parser("doctor", help="version, backend, threads, paths, models, database")
    doctor.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # The app alone has nothing to parse, and its window paints first: building the parser
    # would come before it (app.run_gui).
    gui_only = not (sys.argv[1:] if argv is None else argv)
    args = None if gui_only else _build_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SLMDESK_LOG", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args is not None and args.home:
        # Every directory, in this process and any it starts, is rooted in --home.
        os.environ[HOME_ENV] = os.path.abspath(args.home)
    try:
        if args is not None and args.self_test:
            from slmdesk.selftest import run_self_test

            return run_self_test()
        if args is None or args.command is None:
            from slmdesk.app import run_gui

            return run_gui()
        handler = {
            "models": _cmd_models,
            "chat": _cmd_chat,
            "chats": _cmd_chats,
            "doctor": _cmd_doctor,
            "classify": _cmd_classify,
            "classifiers": _cmd_classifiers,
            "data": _cmd_data,
        }[args.command]
        return handler(args)
    except UserFacingError as exc:
        print(f"slmdesk: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except sqlite3.OperationalError as exc:
        # A write the store layer does not map itself; still an expected failure.
        from slmdesk.store.db import is_disk_full

        if not is_disk_full(exc):
            raise
        print("slmdesk: error: The disk is full: the last change could not be saved. Free "
              "some disk space and try again; everything saved before is intact.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("slmdesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# models ---------------------------------------------------------------------------------
def _cmd_models(args: argparse.Namespace) -> int:
    from slmdesk.catalog.registry import import_model
    from slmdesk.startup import open_core
    from slmdesk.store.repositories import ModelRepository

    if args.models_command in ("search", "pull"):
        return _cmd_models_hub(args)
    if args.models_command in ("info", "rm", "catalog", "discover", "folders"):
        return _cmd_models_library(args)
    core = open_core()
    if args.models_command == "import":
        model = import_model(core.db, args.path, name=args.name)
        if args.json:
            _print_json(model.to_json())
        else:
            print(f"Registered {model.name} ({model.id}) from {model.path}")
        return 0
    models = ModelRepository(core.db).list()
    if args.json:
        _print_json([m.to_json() for m in models])
        return 0
    if not models:
        print("No models. Import one with `slmdesk models import PATH.gguf`.")
        return 0
    for m in models:
        size = f"{m.size_bytes / 1e6:.0f} MB"
        flags = "" if os.path.isfile(m.path) else "  [file missing]"
        print(
            f"{m.id}  {m.name}  {m.architecture or '?'}  {m.quantization or '?'}  "
            f"ctx {m.context_length or '?'}  {size}  {m.licence or 'licence unknown'}{flags}"
        )
    _print_disk_usage(core)
    return 0


# models info / rm / catalog / discover / folders (the local library) ---------------------
_FORCE_HELP = "load even when the model is estimated not to fit in free memory"


def _add_models_library_parsers(msub: Any) -> None:
    info = msub.add_parser("info", help="details of a model: file, licence, template, fit")
    info.add_argument("model", metavar="MODEL", help="model id, name or file name")
    info.add_argument("--sha256", action="store_true",
                      help="compute the file's sha256 now (and keep it)")
    info.add_argument("--json", action="store_true")
    rm = msub.add_parser(
        "rm", help="remove a model (a downloaded one's file is deleted; others stay on disk)")
    rm.add_argument("model", metavar="MODEL", help="model id, name or file name")
    rm.add_argument("--delete-file", action="store_true",
                    help="also delete the file of an imported or discovered model")
    rm.add_argument("--yes", action="store_true", help="do not ask before deleting a file")
    rm.add_argument("--json", action="store_true")
    cat = msub.add_parser("catalog", help="the curated catalog, with a fit estimate for each")
    cat.add_argument("--json", action="store_true")
    disc = msub.add_parser(
        "discover", help="GGUF files in the Hugging Face cache and your library folders")
    group = disc.add_mutually_exclusive_group()
    group.add_argument("--register", metavar="PATH", help="register this found file in place")
    group.add_argument("--all", action="store_true", help="register every found file")
    disc.add_argument("--json", action="store_true")
    folders = msub.add_parser("folders", help="folders searched by `models discover`")
    fsub = folders.add_subparsers(dest="folders_command", metavar="ACTION", required=True)
    fl = fsub.add_parser("list", help="list the library folders")
    fl.add_argument("--json", action="store_true")
    fa = fsub.add_parser("add", help="add a folder (e.g. ~/.lmstudio/models)")
    fa.add_argument("path")
    fr = fsub.add_parser("remove", help="remove a folder from the list (no file is touched)")
    fr.add_argument("path")


def _models_dir(core: Any) -> str:
    from slmdesk.settings import load_settings

    return load_settings(core.db).models_dir or str(core.paths.default_models_dir)


def _print_disk_usage(core: Any) -> None:
    from slmdesk.catalog.fit import format_bytes
    from slmdesk.catalog.library import disk_usage

    usage = disk_usage(core.db, _models_dir(core))
    extra = f", {format_bytes(usage.partial_bytes)} in unfinished downloads" \
        if usage.partial_bytes else ""
    print(f"total disk usage: {format_bytes(usage.total_bytes)} "
          f"({format_bytes(usage.owned_bytes)} downloaded by slmdesk{extra})")


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _cmd_models_library(args: argparse.Namespace) -> int:
    from slmdesk.catalog import discover as disc
    from slmdesk.catalog.curated import load_catalog
    from slmdesk.catalog.fit import effective_context, estimate_for_entry, format_bytes
    from slmdesk.catalog.library import (
        format_details,
        hash_file,
        model_details,
        record_sha256,
        remove_model,
    )
    from slmdesk.settings import load_settings, save_settings
    from slmdesk.startup import open_core
    from slmdesk.store.repositories import ModelRepository

    core = open_core()
    repo = ModelRepository(core.db)
    settings = load_settings(core.db)
    command = args.models_command
    if command == "info":
        model = repo.find(args.model)
        if args.sha256 and os.path.isfile(model.path):
            model = record_sha256(core.db, model.id, hash_file(model.path))
        details = model_details(model, context=settings.max_context)
        if args.json:
            _print_json(details)
        else:
            print(format_details(details))
        return 0
    if command == "rm":
        model = repo.find(args.model)
        deletes = model.owns_file or args.delete_file
        if deletes and os.path.lexists(model.path) and not args.yes and not _confirm(
                f"Delete {model.path} ({format_bytes(model.size_bytes)})?"):
            raise InvalidInputError(
                f"Removing {model.name} deletes its file {model.path}; add --yes to confirm.")
        removal = remove_model(core.db, model.id, delete_file=args.delete_file,
                               models_dir=_models_dir(core))
        if args.json:
            _print_json({"id": model.id, "name": model.name, **removal.to_json()})
        elif removal.kept_path:
            print(f"Removed {model.name}; its file stays at {removal.kept_path}")
        else:
            print(f"Removed {model.name}; {format_bytes(removal.freed_bytes)} freed")
        return 0
    if command == "catalog":
        rows = []
        installed = {m.sha256 for m in repo.list() if m.sha256}
        for entry in load_catalog():
            context = effective_context(settings.max_context, entry.context_length)
            est = estimate_for_entry(entry, context)
            rows.append((entry, est, entry.sha256 in installed))
        if args.json:
            _print_json([{**e.to_json(), "fit": est.to_json(), "installed": inst}
                         for e, est, inst in rows])
            return 0
        for e, est, inst in rows:
            size = ("~" if e.size_approximate else "") + format_bytes(e.size_bytes)
            verdict = {"fits": "fits", "tight": "tight", "wont_fit": "won't fit"}[est.verdict]
            print(f"{e.id}  {e.name}  {size}  {e.licence}  {verdict} "
                  f"({format_bytes(est.total)} at {est.context:,} tokens)"
                  + ("  [installed]" if inst else ""))
        return 0
    if command == "discover":
        found = disc.discover(settings.library_folders, hf_cache=settings.discover_hf_cache,
                              known_paths=[m.path for m in repo.list()])
        if args.register or args.all:
            if args.register:
                wanted = os.path.abspath(os.path.expanduser(args.register))
                chosen = [f for f in found if f.path == wanted
                          or os.path.realpath(f.path) == os.path.realpath(wanted)]
                if not chosen:
                    raise InvalidInputError(
                        f"{args.register} is not among the files found; see "
                        "`slmdesk models discover` (add its folder with "
                        "`slmdesk models folders add DIR`).")
            else:
                chosen = [f for f in found if not f.registered]
            records = [disc.register_discovered(core.db, f) for f in chosen]
            if args.json:
                _print_json([r.to_json() for r in records])
            else:
                for r in records:
                    print(f"Registered {r.name} ({r.id}) in place: {r.path}")
                if not records:
                    print("Nothing new to register.")
            return 0
        if args.json:
            _print_json([f.to_json() for f in found])
            return 0
        if not found:
            print("No GGUF files found. Add a folder with `slmdesk models folders add DIR`.")
        for f in found:
            origin = f"{f.repo_id} @ {f.revision[:10]}" if f.repo_id and f.revision else f.folder
            print(f"{f.path}  {format_bytes(f.size_bytes)}  {f.source}: {origin}"
                  + ("  [registered]" if f.registered else ""))
        return 0
    # folders
    if args.folders_command == "list":
        if args.json:
            _print_json({"folders": settings.library_folders,
                         "hf_cache": str(disc.hf_cache_dir()) if settings.discover_hf_cache
                         else None})
            return 0
        for folder in settings.library_folders:
            print(folder)
        if not settings.library_folders:
            print("No library folders. Add one with `slmdesk models folders add DIR`.")
        if settings.discover_hf_cache:
            print(f"(and the Hugging Face cache: {disc.hf_cache_dir()})")
        return 0
    path = os.path.abspath(os.path.expanduser(args.path))
    if args.folders_command == "add":
        if not os.path.isdir(path):
            raise InvalidInputError(f"{args.path} is not a folder.")
        if path not in settings.library_folders:
            settings.library_folders = [*settings.library_folders, path]
            save_settings(core.db, settings)
        print(f"Added {path}")
        return 0
    kept = [f for f in settings.library_folders if f not in (path, args.path)]
    if len(kept) == len(settings.library_folders):
        raise InvalidInputError(f"{args.path} is not a library folder.")
    settings.library_folders = kept
    save_settings(core.db, settings)
    print(f"Removed {path} from the library folders (no file was touched)")
    return 0


# models search / pull (the hub) ----------------------------------------------------------
def _add_models_hub_parsers(msub: Any) -> None:
    ms = msub.add_parser("search", help="search the Hugging Face Hub for GGUF models")
    ms.add_argument("query")
    ms.add_argument("--sort", choices=["downloads", "likes", "recent"], default="downloads")
    ms.add_argument("--limit", type=int, default=20)
    ms.add_argument("--json", action="store_true")
    mp = msub.add_parser(
        "pull", help="download a GGUF file from the hub (resumable), verify it and register it"
    )
    mp.add_argument(
        "repo_id", metavar="REPO_ID", help="for example HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    )
    mp.add_argument("--file", help="which GGUF file (default: Q4_K_M, else the smallest Q4)")
    mp.add_argument("--revision", help="branch, tag or commit (default: main)")
    mp.add_argument("--json", action="store_true")


def _cmd_models_hub(args: argparse.Namespace) -> int:
    from slmdesk.catalog import hub

    if args.models_command == "search":
        repos = hub.search_models(args.query, sort=args.sort, limit=args.limit)
        if args.json:
            _print_json([r.to_json() for r in repos])
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
    return _models_pull(args)


def _pick_hub_file(files: list[Any], wanted: str | None, repo_id: str) -> Any:
    from slmdesk.errors import NotFoundError

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


class _DownloadProgress:
    """A one-line progress bar on stderr (percent, MB, speed, ETA) and state changes."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.last_error: str | None = None

    def __call__(self, event: Any) -> None:
        import time

        record = event.record
        if event.kind == "state":
            if record.error and record.error != self.last_error and record.state == "running":
                self.last_error = record.error
                self._line(f"{record.error}")
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

    def _line(self, text: str) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
        print(text, file=sys.stderr)


def _models_pull(args: argparse.Namespace) -> int:
    from pathlib import Path

    from slmdesk.catalog import hub
    from slmdesk.catalog.downloads import DONE, DownloadManager
    from slmdesk.errors import DownloadError, ModelFileError
    from slmdesk.settings import load_settings
    from slmdesk.startup import open_core
    from slmdesk.store.repositories import ModelRepository

    hub.validate_repo_id(args.repo_id)
    core = open_core()
    settings = load_settings(core.db)
    models_dir = Path(settings.models_dir or core.paths.default_models_dir)
    commit, files = hub.list_gguf_files(args.repo_id, revision=args.revision)
    file = _pick_hub_file(files, args.file, args.repo_id)
    hub.safe_filename(file.filename)
    if file.split is not None:
        raise InvalidInputError(
            f"{file.filename} is part {file.split[0]} of a model split into {file.split[1]} "
            "files; slmdesk cannot download split models yet."
        )
    ok, message = hub.check_architecture(file)
    if not ok:
        raise ModelFileError(message)
    base = args.repo_id.split("/")[1]
    for suffix in ("-GGUF", "-gguf", "_GGUF", "-GGUFs"):
        base = base.removesuffix(suffix)
    name = f"{base} ({file.quantization})" if file.quantization else base
    progress = _DownloadProgress()
    manager = DownloadManager(core.paths.database, models_dir, listener=progress, max_parallel=1)
    if not args.json:
        print(f"Downloading {args.repo_id}/{file.filename} ({(file.size_bytes or 0) / 1e6:,.1f} "
              f"MB) at {commit[:12]} to {manager.dest_for(args.repo_id, file.filename)}",
              file=sys.stderr)
    try:
        manager.start()
        record = manager.enqueue(
            args.repo_id, file.filename, revision=commit, display_name=name,
            licence=file.licence, expected_sha256=file.sha256, size_bytes=file.size_bytes,
        )
        record = manager.wait(record.id)
    except KeyboardInterrupt:
        manager.shutdown()
        progress._line(
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
    if args.json:
        _print_json({"download": record.to_json(), "model": model.to_json()})
    else:
        print(f"Registered {model.name} ({model.id}) from {model.path}, sha256 verified")
    return 0


# chat -----------------------------------------------------------------------------------
@contextmanager
def _sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """While a reply streams, Ctrl-C stops the reply instead of the program."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        cancel.set()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _cmd_chat(args: argparse.Namespace) -> int:
    from slmdesk.catalog.registry import check_model_present, resolve_model
    from slmdesk.chat import ChatService, ReplyWriter
    from slmdesk.engine.params import SamplingParams
    from slmdesk.settings import load_settings
    from slmdesk.startup import open_core

    core = open_core()
    service = ChatService(core.db)
    settings = load_settings(core.db)
    conversation = None
    if args.continue_id:
        conversation = service.chats.find_conversation(args.continue_id)
    model = resolve_model(
        core.db, args.model, conversation_model_id=conversation.model_id if conversation else None
    )
    check_model_present(model)
    overrides = {
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "min_p": args.min_p,
        "repeat_penalty": args.repeat_penalty,
        "seed": args.seed,
        "max_tokens": args.max_tokens,
        "stop": tuple(args.stop) if args.stop else None,
    }
    for key, value in (("max-tokens", args.max_tokens), ("top-k", args.top_k),
                       ("threads", args.threads)):
        if value is not None and value < 1:
            raise InvalidInputError(f"--{key} must be at least 1.")
    base = (
        SamplingParams.from_json(conversation.params) if conversation else settings.sampling
    )
    sampling = base.merged(**overrides)
    if conversation is not None and args.system is not None:
        conversation = service.chats.update_conversation(
            conversation.id, system_prompt=args.system
        )

    engine = _load_engine(model, args.threads, core.db, explicit=args.model is not None,
                          force=args.force)

    def one_turn(text: str, *, stream: bool) -> dict[str, Any]:
        nonlocal conversation
        if conversation is None:
            # Created with the first message, so quitting at once leaves no empty chat.
            conversation = service.new_conversation(
                model=model, system_prompt=args.system, sampling=sampling
            )
        turn = service.start_turn(conversation, text, model=model, sampling=sampling)
        conversation = turn.conversation
        writer = ReplyWriter(service.chats, turn.reply.id)
        cancel = threading.Event()

        def on_text(piece: str) -> None:
            writer.append(piece)
            if stream:
                sys.stdout.write(piece)
                sys.stdout.flush()

        try:
            with _sigint_cancels(cancel):
                result = engine.stream_chat(
                    turn.history, turn.sampling, cancel=cancel, on_text=on_text
                )
        except UserFacingError as exc:
            writer.fail(exc.message)
            raise
        writer.finish(result, model=model)
        if stream:
            sys.stdout.write("\n")
            if result.finish_reason == "cancelled":
                print("[stopped]", file=sys.stderr)
            for note in result.notes:
                print(f"[{note}]", file=sys.stderr)
        if result.error:
            raise UserFacingError(result.error)
        return {
            "conversation_id": conversation.id,
            "message_id": turn.reply.id,
            "model": model.name,
            "text": writer.text,
            "prompt_tokens": result.prompt_tokens,
            "prompt_tokens_evaluated": result.prompt_tokens_evaluated,
            "completion_tokens": result.completion_tokens,
            "ttft_s": result.ttft_s,
            "tokens_per_s": result.tokens_per_s,
            "finish_reason": result.finish_reason,
            "dropped_messages": result.dropped_messages,
        }

    try:
        if args.prompt is not None:
            out = one_turn(args.prompt, stream=not args.json)
            if args.json:
                _print_json(out)
            return 0
        return _interactive(one_turn, model.name, json_mode=args.json)
    finally:
        engine.unload()


def _interactive(one_turn: Any, model_name: str, *, json_mode: bool) -> int:
    tty = sys.stdin.isatty()
    if tty:
        print(
            f"Chatting with {model_name}. "
            "Ctrl-C stops a reply; Ctrl-D or /exit quits.",
            file=sys.stderr,
        )
    while True:
        try:
            line = input("> " if tty else "")
        except EOFError:
            if tty:
                print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        if line.strip() in ("/exit", "/quit"):
            return 0
        if not line.strip():
            continue
        out = one_turn(line, stream=not json_mode)
        if json_mode:
            print(json.dumps(out, ensure_ascii=False), flush=True)


# chats ----------------------------------------------------------------------------------
def _read_import_file(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise UserFacingError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not UTF-8 text: {exc.reason}.") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except RecursionError as exc:
        raise InvalidInputError(f"{path} is nested too deeply to be a conversation.") from exc


def _cmd_chats(args: argparse.Namespace) -> int:
    from slmdesk.startup import open_core
    from slmdesk.store.repositories import ChatRepository
    from slmdesk.transfer import export_json, export_markdown, import_json

    core = open_core(register_starter=False)
    chats = ChatRepository(core.db)
    cmd = args.chats_command
    if cmd == "list":
        convs = chats.list_conversations(limit=args.limit)
        if args.json:
            _print_json([c.to_json() for c in convs])
        elif not convs:
            print("No conversations yet. Start one with `slmdesk chat`.")
        for c in convs if not args.json else []:
            print(f"{c.id}  {c.updated_at[:16].replace('T', ' ')}  {c.title}")
        return 0
    if cmd == "search":
        hits = chats.search(args.query)
        if args.json:
            _print_json([h.to_json() for h in hits])
        elif not hits:
            print("No matches.")
        for h in hits if not args.json else []:
            print(f"{h.message.conversation_id}  {h.conversation_title}: {h.snippet}")
        return 0
    if cmd == "import":
        data = _read_import_file(args.file)
        try:
            conv = import_json(core.db, data)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{args.file}: {exc.message}") from exc
        if args.json:
            _print_json(conv.to_json())
        else:
            print(conv.id)
        return 0
    conv = chats.find_conversation(args.id)
    if cmd == "delete":
        # The GUI keeps deletions in a bin for undo; the command line deletes for good.
        chats.delete_conversation(conv.id)
        chats.purge_deleted(conversation_id=conv.id)
        print(f"Deleted {conv.id}  {conv.title}")
        return 0
    if cmd == "show":
        if args.json:
            path = chats.path(conv.id)
            total = chats.count_messages(conv.id)
            _print_json(
                {
                    **conv.to_json(),
                    "messages": [m.to_json() for m in path],
                    "branches": total - len(path),
                }
            )
        else:
            print(export_markdown(core.db, conv.id))
        return 0
    # export
    fmt = "json" if args.json else args.format
    if fmt == "json":
        text = json.dumps(export_json(core.db, conv.id), indent=2, ensure_ascii=False)
    else:
        text = export_markdown(core.db, conv.id)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as exc:
            raise UserFacingError(f"Cannot write {args.output}: {exc.strerror or exc}") from exc
    else:
        print(text)
    return 0


# classify -------------------------------------------------------------------------------
def _add_classify_parsers(sub: Any) -> None:
    c = sub.add_parser(
        "classify",
        help="classify a TEXT, every text of --input FILE, or evaluate on --eval FILE",
        description="Classify with a model: the label of TEXT; one JSON line per text of "
        "--input FILE (streamed as each text is scored, except with batch calibration, "
        "which needs every text first); or a report on --eval FILE.",
    )
    c.add_argument("text", nargs="?", metavar="TEXT")
    c.add_argument("-m", "--model", help="model id, name or file name")
    c.add_argument("--labels", help="comma-separated labels, e.g. positive,negative")
    c.add_argument("--descriptions", metavar="FILE",
                   help="label descriptions: JSON {label: description} or CSV label,description")
    c.add_argument("--instructions", metavar="TEXT", help="what to classify, in words")
    c.add_argument("--examples", metavar="FILE",
                   help="few-shot examples: .csv/.tsv/.jsonl with text and label columns")
    c.add_argument("--calibration", choices=["none", "contextual", "batch", "auto"],
                   help="auto (default): contextual for one text, batch for 8 or more")
    c.add_argument("--prompt-style", choices=["auto", "chat", "completion"],
                   help="auto (default): chat when the model has a chat template")
    c.add_argument("--multi-label", action="store_true",
                   help="every label is a yes/no question; print all over --threshold")
    c.add_argument("--threshold", type=float, help="multi-label threshold (default 0.5)")
    c.add_argument("--explain", action="store_true",
                   help="add a short generated justification of the chosen label")
    c.add_argument("--classifier", metavar="NAME",
                   help="start from a saved classifier (other options override it)")
    c.add_argument("--save-as", metavar="NAME", help="save the classifier under NAME")
    c.add_argument("--input", metavar="FILE",
                   help="classify every text: .txt one per line, .csv/.tsv/.jsonl text column")
    c.add_argument("--column", help="the text column of --input (default: text)")
    c.add_argument("--eval", metavar="FILE",
                   help="evaluate on .csv/.tsv/.jsonl with text and label columns")
    c.add_argument("--text-column", default="text", help="text column of --eval")
    c.add_argument("--label-column", default="label", help="label column of --eval")
    c.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    c.add_argument("--force", action="store_true", help=_FORCE_HELP)
    c.add_argument("--json", action="store_true",
                   help="JSON output (--input always prints JSON lines)")

    cs = sub.add_parser("classifiers", help="list and delete saved classifiers")
    csub = cs.add_subparsers(dest="classifiers_command", metavar="ACTION", required=True)
    cl = csub.add_parser("list", help="list saved classifiers")
    cl.add_argument("--json", action="store_true")
    cd = csub.add_parser("delete", help="delete a saved classifier")
    cd.add_argument("name")


def _split_labels(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise InvalidInputError("--labels needs at least one label name.")
    return names


def _classify_spec(args: argparse.Namespace, base: Any,
                   eval_pairs: list[tuple[str, str]] | None) -> Any:
    """The spec from a saved classifier (or nothing) with the command's options on top."""
    from slmdesk.classify.io import read_descriptions, read_labelled
    from slmdesk.classify.spec import ClassifierSpec, Label

    old = {label.name: label for label in base.labels} if base else {}
    examples = base.examples if base else ()
    if args.examples:
        examples = tuple(read_labelled(args.examples))
    if args.labels:
        names = _split_labels(args.labels)
    elif base is not None:
        names = list(base.label_names)
    elif eval_pairs:
        names = sorted({label for _t, label in eval_pairs})
    elif examples:
        names = sorted({label for _t, label in examples})
    else:
        raise InvalidInputError(
            "Give the labels with --labels a,b (or start from --classifier NAME)."
        )
    labels = [old.get(n, Label(n)) for n in names]
    if args.descriptions:
        descriptions = read_descriptions(args.descriptions)
        unknown = [k for k in descriptions if k not in names]
        if unknown:
            raise InvalidInputError(
                f"{args.descriptions}: '{unknown[0]}' is not one of the labels "
                f"({', '.join(names)})."
            )
        labels = [
            Label(lab.name, descriptions.get(lab.name, lab.description), lab.verbalizers)
            for lab in labels
        ]
    spec = ClassifierSpec(
        labels=tuple(labels),
        instructions=args.instructions if args.instructions is not None
        else (base.instructions if base else ""),
        examples=examples,
        calibration=args.calibration or (base.calibration if base else "auto"),
        multi_label=args.multi_label or (base.multi_label if base else False),
        threshold=args.threshold if args.threshold is not None
        else (base.threshold if base else 0.5),
        prompt_style=args.prompt_style or (base.prompt_style if base else "auto"),
        explain=args.explain or (base.explain if base else False),
    )
    try:
        return spec.validate()
    except InvalidInputError as exc:
        where = f"{args.examples}: " if args.examples and "example" in exc.message else ""
        raise InvalidInputError(where + exc.message) from exc


class _Progress:
    """A compact progress line on stderr: redrawn in place on a terminal, else a few lines."""

    def __init__(self, total: int, verb: str = "classified") -> None:
        import time

        self.total = total
        self.verb = verb
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.step = max(1, total // 10)
        self.shown = 0
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        import time

        if total != self.total:
            self.total, self.step = total, max(1, total // 10)
        self.done = done
        rate = done / max(time.monotonic() - self.started, 1e-9)
        line = f"{self.verb} {done}/{total} ({rate:.1f} texts/s)"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if done >= total else ""))
            sys.stderr.flush()
        elif done >= total or done - self.shown >= self.step:
            print(line, file=sys.stderr, flush=True)
            self.shown = done

    def stopped(self, done: int) -> None:
        """End the line and say where an interrupted run stopped."""
        if self.tty and 0 < self.done < self.total:
            sys.stderr.write("\n")
        print(f"slmdesk: interrupted after {done} of {self.total} texts", file=sys.stderr)


def _cmd_classify(args: argparse.Namespace) -> int:
    from slmdesk.catalog.registry import check_model_present, resolve_model
    from slmdesk.classify.classifier import EMPTY_TEXT
    from slmdesk.classify.io import read_labelled, read_texts
    from slmdesk.classify.spec import ClassifierSpec
    from slmdesk.startup import open_core
    from slmdesk.store.classifiers import ClassifierRepository

    modes = [m for m in (args.text is not None, args.input, args.eval) if m]
    if len(modes) > 1:
        raise InvalidInputError("Give only one of TEXT, --input FILE and --eval FILE.")
    if not modes and not args.save_as:
        raise InvalidInputError("Give a TEXT, --input FILE or --eval FILE (or --save-as NAME).")
    if args.threads is not None and args.threads < 1:
        raise InvalidInputError("--threads must be at least 1.")
    if args.text is not None and not args.text.strip():
        raise InvalidInputError(EMPTY_TEXT)
    core = open_core()
    repo = ClassifierRepository(core.db)
    saved = repo.get(args.classifier) if args.classifier else None
    base = ClassifierSpec.from_json(saved.spec) if saved else None
    # Read every file before the model loads, so a bad file fails fast.
    eval_pairs = read_labelled(args.eval, args.text_column, args.label_column) \
        if args.eval else None
    texts = read_texts(args.input, args.column) if args.input else None
    spec = _classify_spec(args, base, eval_pairs)
    if eval_pairs is not None:
        if spec.multi_label:
            raise InvalidInputError("--eval works with single-label classifiers.")
        for i, (_text, label) in enumerate(eval_pairs):
            if label not in spec.label_names:
                raise InvalidInputError(
                    f"{args.eval}: row {i + 1} is labelled '{label}', which is not one of "
                    f"the labels ({', '.join(spec.label_names)})."
                )
    model = resolve_model(
        core.db, args.model, conversation_model_id=saved.model_id if saved else None
    )
    if args.save_as:
        stored = repo.save(args.save_as, spec.to_json(), model_id=model.id)
        if not modes:
            print(f"Saved classifier {stored.name} ({', '.join(spec.label_names)}; "
                  f"model {model.name})")
            return 0
    check_model_present(model)
    engine = _load_engine(model, args.threads, core.db, explicit=args.model is not None,
                          force=args.force)
    try:
        if args.text is not None:
            return _classify_one(engine, spec, args.text, json_mode=args.json)
        if texts is not None:
            return _classify_input(engine, spec, texts)
        assert eval_pairs is not None
        return _classify_eval(engine, spec, eval_pairs, json_mode=args.json)
    finally:
        engine.unload()


def _load_engine(
    model: Any, threads: int | None, db: Any, *, explicit: bool, force: bool = False
) -> Any:
    """Load ``model`` under the load guard, after the memory check.

    A model whose last load took its process down is loaded only when the person named it
    (``explicit``, e.g. ``--model``); otherwise a ``ModelLoadCrashedError`` says why not.
    A model estimated not to fit in memory is refused unless ``force``; what the load
    really took is recorded with the estimate.
    """
    from slmdesk.catalog.fit import check_fit, effective_context, record_measured_memory
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams
    from slmdesk.errors import ModelLoadCrashedError
    from slmdesk.loadguard import LoadGuard, crash_message
    from slmdesk.paths import get_paths
    from slmdesk.settings import load_settings

    guard = LoadGuard(get_paths().data_dir)
    if explicit:
        guard.forget(model.path)
    else:
        crashed = guard.crash_for(model.path)
        if crashed is not None:
            raise ModelLoadCrashedError(crash_message(
                crashed, retry=f"To try it again, name it: --model {model.id}"))
    load = load_settings(db).load_params()
    if threads:
        load = LoadParams(load.max_context, threads, load.n_gpu_layers, load.n_batch)
    check_fit(model, effective_context(load.max_context, model.context_length), force=force)
    engine = LlamaEngine()
    with guard.loading(model.path, model_id=model.id, model_name=model.name):
        info = engine.load(model.path, load)
    record_measured_memory(db, model.id, info, engine.gguf)
    return engine


def _classify_one(engine: Any, spec: Any, text: str, *, json_mode: bool) -> int:
    from slmdesk.classify.classifier import Classifier
    from slmdesk.engine.llama_engine import Cancelled

    cancel = threading.Event()
    try:
        with _sigint_cancels(cancel):
            pred = Classifier(engine, spec).classify(text, cancel=cancel)
    except Cancelled:
        raise KeyboardInterrupt from None
    if pred.error:
        raise InvalidInputError(pred.error)
    if json_mode:
        _print_json(pred.to_json())
    else:
        if spec.multi_label:
            if pred.labels:
                print(", ".join(pred.labels))
            else:
                print(f"[no label reached the threshold {spec.threshold}]", file=sys.stderr)
        else:
            print(pred.label)
        if pred.explanation:
            print(pred.explanation)
    for note in pred.notes:
        print(f"[{note}]", file=sys.stderr)
    return 0


def _classify_input(engine: Any, spec: Any, texts: list[str]) -> int:
    from slmdesk.classify.classifier import Classifier

    classifier = Classifier(engine, spec)
    streamed = classifier.calibration_for(len(texts)) != "batch"
    progress = _Progress(len(texts))
    cancel = threading.Event()

    def emit(pred: Any) -> None:
        sys.stdout.write(json.dumps(pred.to_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def on_result(_i: int, pred: Any) -> None:
        if streamed:
            emit(pred)

    with _sigint_cancels(cancel):
        preds = classifier.classify_many(
            texts, cancel=cancel, on_result=on_result, on_progress=progress
        )
    if not streamed:
        for pred in preds:
            emit(pred)
    if len(preds) < len(texts):
        progress.stopped(len(preds))
        return 130
    return 0


def _classify_eval(
    engine: Any, spec: Any, pairs: list[tuple[str, str]], *, json_mode: bool
) -> int:
    import time

    from slmdesk.classify.classifier import Classifier
    from slmdesk.classify.evaluate import evaluate, format_report

    classifier = Classifier(engine, spec)
    texts = [t for t, _label in pairs]
    cancel = threading.Event()
    progress = _Progress(len(texts))
    started = time.perf_counter()
    with _sigint_cancels(cancel):
        preds = classifier.classify_many(texts, cancel=cancel, on_progress=progress)
    seconds = time.perf_counter() - started
    if len(preds) < len(texts):
        progress.stopped(len(preds))
        return 130
    report = evaluate([label for _t, label in pairs], [p.label for p in preds],
                      spec.label_names)
    report.seconds = seconds
    report.texts_per_s = len(texts) / seconds if seconds > 0 else 0.0
    calibration = preds[0].calibration if preds else "none"
    if json_mode:
        _print_json({**report.to_json(), "calibration": calibration})
    else:
        print(format_report(report))
        print(f"\ncalibration: {calibration}")
    return 0


def _cmd_classifiers(args: argparse.Namespace) -> int:
    from slmdesk.errors import NotFoundError
    from slmdesk.startup import open_core
    from slmdesk.store.classifiers import ClassifierRepository
    from slmdesk.store.repositories import ModelRepository

    core = open_core(register_starter=False)
    repo = ClassifierRepository(core.db)
    if args.classifiers_command == "delete":
        repo.delete(args.name)
        print(f"Deleted classifier {args.name}")
        return 0
    models = ModelRepository(core.db)
    rows = []
    for saved in repo.list():
        model_name = None
        if saved.model_id:
            try:
                model_name = models.get(saved.model_id).name
            except NotFoundError:
                model_name = None
        labels = [
            lab if isinstance(lab, str) else lab.get("name", "")
            for lab in saved.spec.get("labels", [])
        ]
        rows.append({
            "name": saved.name, "id": saved.id, "model_id": saved.model_id,
            "model": model_name, "labels": labels,
            "calibration": saved.spec.get("calibration", "auto"),
            "multi_label": bool(saved.spec.get("multi_label", False)),
            "examples": len(saved.spec.get("examples", [])),
            "created_at": saved.created_at, "updated_at": saved.updated_at,
            "spec": saved.spec,
        })
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("No saved classifiers. Save one with `slmdesk classify ... --save-as NAME`.")
    for r in rows:
        kind = "multi-label, " if r["multi_label"] else ""
        print(f"{r['name']}  [{', '.join(r['labels'])}]  {kind}{r['examples']} examples, "
              f"calibration {r['calibration']}, model {r['model'] or '(default)'}")
    return 0


# data -----------------------------------------------------------------------------------
def _add_data_parsers(sub: Any) -> None:
    from slmdesk.datasets import EXPORT_FORMATS as FORMATS

    d = sub.add_parser(
        "data", help="labelled and chat data sets: import, export, splits, stats, evaluation"
    )
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dl = dsub.add_parser("list", help="list data sets")
    dl.add_argument("--json", action="store_true")
    dc = dsub.add_parser("create", help="create an empty data set")
    dc.add_argument("name", metavar="NAME")
    dc.add_argument("--kind", choices=["labels", "chat"], required=True)
    dc.add_argument("--labels", help="comma-separated label set (labelled texts)")
    dc.add_argument("--description", metavar="TEXT")
    dc.add_argument("--licence", metavar="TEXT", help="licence note for the data card")
    dc.add_argument("--json", action="store_true")
    di = dsub.add_parser(
        "import", help="add a CSV/TSV/JSONL/text or chat (messages, ShareGPT, Alpaca) file",
        description="Add every example of FILE to the data set NAME (created if missing), "
        "all in one transaction: a bad row stops the import with its line number and "
        "nothing changes.",
    )
    di.add_argument("name", metavar="NAME")
    di.add_argument("file", metavar="FILE")
    di.add_argument("--text-column", metavar="C", help="column with the text")
    di.add_argument("--label-column", metavar="L", help="column with the label")
    di.add_argument("--kind", choices=["labels", "chat"],
                    help="kind of a new data set (default: chat for chat files)")
    di.add_argument("--new-labels", action="store_true",
                    help="accept labels the data set does not have yet")
    di.add_argument("--json", action="store_true")
    dp = dsub.add_parser("preview", help="the format, columns and first rows of a file")
    dp.add_argument("file", metavar="FILE")
    dp.add_argument("--limit", type=int, default=5)
    dp.add_argument("--json", action="store_true")
    de = dsub.add_parser("export", help="write a data set (or a split) for fine-tuning")
    de.add_argument("name", metavar="NAME")
    de.add_argument("--format", choices=list(FORMATS), required=True,
                    help="openai: {\"messages\": [...]}; sharegpt; alpaca; "
                    "jsonl/csv: text,label rows")
    de.add_argument("--split", choices=["train", "validation", "test", "all"], default="all")
    de.add_argument("--include-unlabelled", action="store_true",
                    help="jsonl/csv: also texts without a label (empty label)")
    de.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    dst = dsub.add_parser("stats", help="counts per label, split and source; quality checks")
    dst.add_argument("name", metavar="NAME")
    dst.add_argument("--json", action="store_true")
    dsp = dsub.add_parser("split", help="assign train/validation/test (stratified, seeded)")
    dsp.add_argument("name", metavar="NAME")
    dsp.add_argument("--seed", type=int, default=0)
    dsp.add_argument("--fractions", default="0.8,0.1,0.1", metavar="TRAIN,VAL,TEST")
    dsp.add_argument("--overwrite", action="store_true",
                     help="reassign every example (default: keep existing splits)")
    dsp.add_argument("--json", action="store_true")
    dsh = dsub.add_parser("show", help="list examples, with filters and full-text search")
    dsh.add_argument("name", metavar="NAME")
    dsh.add_argument("--label")
    dsh.add_argument("--unlabelled", action="store_true")
    dsh.add_argument("--split", choices=["train", "validation", "test", "unassigned"])
    dsh.add_argument("--source", choices=["typed", "imported", "conversation",
                                          "classification"])
    dsh.add_argument("--disagreement", action="store_true",
                     help="the label and the model's suggestion differ")
    dsh.add_argument("--search", metavar="WORDS")
    dsh.add_argument("--limit", type=int, default=50)
    dsh.add_argument("--json", action="store_true")
    dcard = dsub.add_parser("card", help="a Markdown data card")
    dcard.add_argument("name", metavar="NAME")
    dcard.add_argument("-o", "--output", metavar="FILE")
    dev = dsub.add_parser(
        "evaluate", help="evaluate a model + classifier on a split; the run is kept")
    dev.add_argument("name", metavar="NAME")
    dev.add_argument("-m", "--model", help="model id, name or file name")
    dev.add_argument("--classifier", metavar="NAME",
                     help="a saved classifier (default: zero-shot with the data set's labels)")
    dev.add_argument("--split", choices=["train", "validation", "test", "all"],
                     default="test")
    dev.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    dev.add_argument("--force", action="store_true", help=_FORCE_HELP)
    dev.add_argument("--json", action="store_true")
    dv = dsub.add_parser("evals", help="evaluation runs of a data set, side by side")
    dv.add_argument("name", metavar="NAME")
    dv.add_argument("--json", action="store_true")
    dr = dsub.add_parser("rename", help="rename a data set")
    dr.add_argument("name", metavar="NAME")
    dr.add_argument("new_name", metavar="NEW_NAME")
    dd = dsub.add_parser("delete", help="delete a data set with its examples, for good")
    dd.add_argument("name", metavar="NAME")


def _write_output(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as exc:
        raise UserFacingError(f"Cannot write {path}: {exc.strerror or exc}") from exc


def _cmd_data(args: argparse.Namespace) -> int:
    from slmdesk.datasets import formats
    from slmdesk.store.datasets import DatasetRepository

    cmd = args.data_command
    if cmd == "preview":
        prev = formats.preview(args.file, limit=max(args.limit, 0))
        if args.json:
            _print_json(dataclasses.asdict(prev))
            return 0
        print(f"format: {prev.format} ({prev.kind}), {prev.total} rows")
        print(f"columns: {', '.join(prev.columns)}")
        if prev.kind == "labels":
            print(f"text column: {prev.suggested_text_column or '(choose with --text-column)'}"
                  f"; label column: {prev.suggested_label_column or '(none)'}")
        for row in prev.rows:
            print("  " + json.dumps(row, ensure_ascii=False))
        return 0
    if cmd == "evaluate":
        return _data_evaluate(args)
    core = _open_data_core()
    repo = DatasetRepository(core.db)
    if cmd == "list":
        sets = repo.all()
        rows = [{**ds.to_json(), "examples": repo.count(ds)} for ds in sets]
        if args.json:
            _print_json(rows)
        elif not rows:
            print("No data sets. Create one with `slmdesk data create NAME --kind labels` "
                  "or `slmdesk data import NAME FILE`.")
        for r in rows if not args.json else []:
            labels = f"  [{', '.join(r['labels'])}]" if r["labels"] else ""
            print(f"{r['name']}  {r['kind']}  {r['examples']} examples{labels}")
        return 0
    if cmd == "create":
        label_set = _split_labels(args.labels) if args.labels else None
        ds = repo.create(args.name, kind=args.kind, labels=label_set,
                         description=args.description, licence=args.licence)
        if args.json:
            _print_json(ds.to_json())
        else:
            print(f"Created {ds.kind} data set {ds.name}")
        return 0
    if cmd == "import":
        result = formats.import_file(
            core.db, args.name, args.file, text_column=args.text_column,
            label_column=args.label_column, kind=args.kind, allow_new_labels=args.new_labels)
        if args.json:
            _print_json({
                "dataset": result.dataset.to_json(), "added": result.added,
                "skipped_blank": result.skipped_blank, "format": result.format,
                "text_column": result.text_column, "label_column": result.label_column,
                "total": repo.count(result.dataset),
            })
            return 0
        columns = ""
        if result.text_column:
            columns = f"; text from '{result.text_column}'" + (
                f", label from '{result.label_column}'" if result.label_column else
                ", no labels")
        skipped = (f", skipped {result.skipped_blank} blank"
                   if result.skipped_blank else "")
        print(f"Imported {result.added} examples into {result.dataset.name} "
              f"({result.format}{columns}{skipped}); it has {repo.count(result.dataset)}.")
        return 0
    ds = repo.get(args.name)
    if cmd == "export":
        text = formats.export(core.db, ds.name, args.format, split=args.split,
                              include_unlabelled=args.include_unlabelled)
        if args.output:
            _write_output(args.output, text)
            print(f"Wrote {text.count(chr(10)) - (1 if args.format == 'csv' else 0)} "
                  f"examples to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    if cmd == "stats":
        return _data_stats(repo, ds, json_mode=args.json)
    if cmd == "split":
        try:
            fractions = [float(x) for x in args.fractions.split(",")]
        except ValueError:
            raise InvalidInputError(
                "--fractions needs three numbers, e.g. 0.8,0.1,0.1.") from None
        from slmdesk.datasets.splits import assign_splits

        stats = assign_splits(repo, ds, seed=args.seed, fractions=fractions,
                              overwrite=args.overwrite)
        if args.json:
            _print_json(stats.to_json())
        else:
            print(", ".join(f"{k} {v}" for k, v in stats.per_split.items()))
        return 0
    if cmd == "show":
        if args.limit < 0:
            raise InvalidInputError("--limit must be 0 or more.")
        found = repo.query(ds, label=args.label, unlabelled=args.unlabelled, split=args.split,
                           source=args.source, disagreement=args.disagreement,
                           search=args.search, limit=args.limit)
        if args.json:
            _print_json([e.to_json() for e in found])
            return 0
        if not found:
            print("No examples.")
        for e in found:
            text = " ".join((e.text or "").split())
            text = text[:80] + ("…" if len(text) > 80 else "")
            tags = [e.label or "(unlabelled)" if ds.kind == "labels" else "",
                    e.split or "", f"model: {e.model_label}" if e.model_label else ""]
            print(f"{e.id}  {'  '.join(t for t in tags if t)}  {text}")
        return 0
    if cmd == "card":
        from slmdesk.datasets.card import data_card

        card = data_card(core.db, ds.name)
        if args.output:
            _write_output(args.output, card)
        else:
            sys.stdout.write(card)
        return 0
    if cmd == "evals":
        from slmdesk.datasets.evaluation import format_evals, list_evals

        runs = list_evals(core.db, ds)
        if args.json:
            _print_json([r.to_json() for r in runs])
        else:
            print(format_evals(runs))
        return 0
    if cmd == "rename":
        renamed = repo.rename_dataset(ds, args.new_name)
        print(f"Renamed {ds.name} to {renamed.name}")
        return 0
    # delete
    n = repo.count(ds)
    repo.delete_dataset(ds)
    print(f"Deleted data set {ds.name} ({n} examples)")
    return 0


def _open_data_core() -> Any:
    """The core without registering the starter model (data commands need no model)."""
    from slmdesk.startup import open_core

    return open_core(register_starter=False)


def _data_stats(repo: Any, ds: Any, *, json_mode: bool) -> int:
    from slmdesk.datasets.quality import check_quality

    stats = repo.stats(ds)
    quality = check_quality(repo.examples(ds))
    if json_mode:
        _print_json({"name": ds.name, "kind": ds.kind, **stats.to_json(),
                     "quality": quality.to_json()})
        return 0
    print(f"{ds.name}: {stats.total} examples"
          + (f" ({stats.labelled} labelled, {stats.unlabelled} unlabelled)"
             if ds.kind == "labels" else ""))
    if ds.kind == "labels":
        print("labels: " + (", ".join(f"{k} {v}" for k, v in stats.per_label.items())
                            or "(none)"))
    print("splits: " + ", ".join(f"{k} {v}" for k, v in stats.per_split.items()))
    print("sources: " + (", ".join(f"{k} {v}" for k, v in stats.per_source.items())
                         or "(none)"))
    print(f"duplicates: {len(quality.duplicates)} groups ({quality.redundant} redundant); "
          f"near-empty: {len(quality.near_empty)}")
    return 0


def _data_evaluate(args: argparse.Namespace) -> int:
    from slmdesk.catalog.registry import check_model_present, resolve_model
    from slmdesk.classify.classifier import Classifier
    from slmdesk.classify.evaluate import format_report
    from slmdesk.classify.spec import ClassifierSpec
    from slmdesk.datasets.evaluation import (
        eval_examples,
        evaluate_examples,
        few_shot_overlap,
        record_eval,
        spec_for_dataset,
    )
    from slmdesk.startup import open_core
    from slmdesk.store.classifiers import ClassifierRepository
    from slmdesk.store.datasets import DatasetRepository

    if args.threads is not None and args.threads < 1:
        raise InvalidInputError("--threads must be at least 1.")
    core = open_core()
    ds = DatasetRepository(core.db).get(args.name)
    saved = ClassifierRepository(core.db).get(args.classifier) if args.classifier else None
    spec = spec_for_dataset(ds, ClassifierSpec.from_json(saved.spec) if saved else None)
    # Everything that can be checked is checked before the model loads.
    examples = eval_examples(core.db, ds, args.split)
    missing = sorted({str(e.label) for e in examples if e.label not in spec.label_names})
    if missing:
        raise InvalidInputError(
            f"'{ds.name}' has examples labelled '{missing[0]}', which is not one of the "
            f"classifier's labels ({', '.join(spec.label_names)}).")
    if spec.multi_label:
        raise InvalidInputError("Evaluation works with single-label classifiers.")
    model = resolve_model(core.db, args.model,
                          conversation_model_id=saved.model_id if saved else None)
    check_model_present(model)
    engine = _load_engine(model, args.threads, core.db, explicit=args.model is not None,
                          force=args.force)
    try:
        classifier = Classifier(engine, spec)
        progress = _Progress(len(examples))
        cancel = threading.Event()
        with _sigint_cancels(cancel):
            report = evaluate_examples(classifier, examples, cancel=cancel,
                                       on_progress=progress)
        if report is None:
            progress.stopped(progress.done)
            return 130
        calibration = classifier.calibration_for(len(examples))
    finally:
        engine.unload()
    overlap = few_shot_overlap(spec, examples)
    run = record_eval(
        core.db, ds, model_name=model.name, model_id=model.id, classifier_spec=spec.to_json(),
        report=report, split=args.split, classifier_name=saved.name if saved else None,
        extra={"calibration": calibration, "few_shot_overlap": overlap},
    )
    if args.json:
        _print_json(run.to_json())
        return 0
    print(format_report(report))
    print(f"\ncalibration: {calibration}; model {model.name}; split {args.split}; run {run.id}")
    if overlap:
        print(f"[{overlap} evaluated text(s) are also few-shot examples of the classifier; "
              "the score is optimistic]", file=sys.stderr)
    return 0


# doctor ---------------------------------------------------------------------------------
def _cmd_doctor(args: argparse.Namespace) -> int:
    from slmdesk.engine.backend import backend_info
    from slmdesk.engine.params import physical_cores
    from slmdesk.settings import load_settings
    from slmdesk.startup import open_core
    from slmdesk.store.db import integrity_check
    from slmdesk.store.repositories import ModelRepository

    core = open_core()
    settings = load_settings(core.db)
    backend = backend_info()
    models = ModelRepository(core.db).list()
    report: dict[str, Any] = {
        "version": __version__,
        "python": sys.version.split()[0],
        "backend": backend.to_json(),
        "threads": settings.n_threads or physical_cores(),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "max_context": settings.max_context,
        "paths": {
            "data": str(core.paths.data_dir),
            "config": str(core.paths.config_dir),
            "cache": str(core.paths.cache_dir),
            "logs": str(core.paths.log_dir),
            "database": str(core.paths.database),
            "models": settings.models_dir or str(core.paths.default_models_dir),
        },
        "models": [
            {"id": m.id, "name": m.name, "path": m.path, "exists": os.path.isfile(m.path)}
            for m in models
        ],
        "database": {
            "integrity": integrity_check(core.db),
            "conversations": core.db["conversations"].count,
            "messages": core.db["messages"].count,
        },
        "interrupted_replies_recovered": core.interrupted_replies,
    }
    ok = backend.available and report["database"]["integrity"] == "ok"
    report["ok"] = ok
    if args.json:
        _print_json(report)
    else:
        print(f"slmdesk {__version__} (Python {report['python']})")
        print(f"backend: {backend.label}, llama-cpp-python {backend.llama_cpp_python_version}")
        if backend.cpu_variants:
            print(f"  CPU builds this processor can run: {', '.join(backend.cpu_variants)}")
        if backend.error:
            print(f"  problem: {backend.error}")
        if backend.fallback_reason:
            print(f"  note: {backend.fallback_reason}")
        print(f"threads: {report['threads']} (physical cores {report['physical_cores']}, "
              f"logical CPUs {report['logical_cpus']})")
        for k, v in report["paths"].items():
            print(f"{k}: {v}")
        print(f"models: {len(models)}")
        for m in report["models"]:
            print(f"  {m['name']}  {'ok' if m['exists'] else 'FILE MISSING'}  {m['path']}")
        print(f"database: {report['database']['integrity']}, "
              f"{report['database']['conversations']} conversations, "
              f"{report['database']['messages']} messages")
        print(f"system info: {backend.system_info}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
