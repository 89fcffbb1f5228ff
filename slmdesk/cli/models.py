"""`slmdesk models`: the local library (list, import, info, rm, catalog, discover, folders);
search and pull are in `models_hub`."""

# The store and the catalog are imported inside the handlers: building the parser imports
# every command module, and only the command that runs should pay for sqlite-utils.

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slmdesk.cli import models_hub
from slmdesk.cli.common import add_command, add_group, confirm, open_core
from slmdesk.cli.output import print_json, print_listing, print_result
from slmdesk.errors import InvalidInputError

if TYPE_CHECKING:
    from slmdesk.catalog.discover import DiscoveredFile
    from slmdesk.startup import Core

MODEL_HELP = "model id, name or file name"


def add_parsers(sub: Any) -> None:
    msub = add_group(sub, "models", "list and import models")
    add_command(msub, "list", _list, "list registered models", json_output=True)
    mi = add_command(msub, "import", _import, "validate and register a local GGUF file (no copy)",
        "path", json_output=True)
    mi.add_argument("--name")
    models_hub.add_parsers(msub)
    _add_library_parsers(msub)


def _add_library_parsers(msub: Any) -> None:
    info = msub.add_parser("info", help="details of a model: file, licence, template, fit")
    info.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    info.add_argument("--sha256", action="store_true",
                      help="compute the file's sha256 now (and keep it)")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_info)
    rename = msub.add_parser("rename", help="give a model another name")
    rename.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    rename.add_argument("name", metavar="NAME", help="the new name (quote it if it has spaces)")
    rename.add_argument("--json", action="store_true")
    rename.set_defaults(func=_rename)
    rm = msub.add_parser(
        "rm", help="remove a model (a downloaded one's file is deleted; others stay on disk)")
    rm.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    rm.add_argument("--delete-file", action="store_true",
                    help="also delete the file of an imported or discovered model")
    rm.add_argument("--yes", action="store_true", help="do not ask before deleting a file")
    rm.add_argument("--json", action="store_true")
    rm.set_defaults(func=_rm)
    cat = msub.add_parser("catalog", help="the curated catalog, with a fit estimate for each")
    cat.add_argument("--json", action="store_true")
    cat.set_defaults(func=_catalog)
    disc = msub.add_parser(
        "discover", help="GGUF files in the Hugging Face cache and your library folders")
    group = disc.add_mutually_exclusive_group()
    group.add_argument("--register", metavar="PATH", help="register this found file in place")
    group.add_argument("--all", action="store_true", help="register every found file")
    disc.add_argument("--json", action="store_true")
    disc.set_defaults(func=_discover)
    fsub = add_group(msub, "folders", "folders searched by `models discover`")
    fl = fsub.add_parser("list", help="list the library folders")
    fl.add_argument("--json", action="store_true")
    fl.set_defaults(func=_folders_list)
    fa = fsub.add_parser("add", help="add a folder (e.g. ~/.lmstudio/models)")
    fa.add_argument("path")
    fa.set_defaults(func=_folders_add)
    fr = fsub.add_parser("remove", help="remove a folder from the list (no file is touched)")
    fr.add_argument("path")
    fr.set_defaults(func=_folders_remove)


def _models_dir(core: Core) -> str:
    from slmdesk.settings import load_settings

    return load_settings(core.db).models_dir or str(core.paths.default_models_dir)


def _print_disk_usage(core: Core) -> None:
    from slmdesk.catalog.fit import format_bytes
    from slmdesk.catalog.library import disk_usage

    usage = disk_usage(core.db, _models_dir(core))
    extra = f", {format_bytes(usage.partial_bytes)} in unfinished downloads" \
        if usage.partial_bytes else ""
    print(f"total disk usage: {format_bytes(usage.total_bytes)} "
          f"({format_bytes(usage.owned_bytes)} downloaded by slmdesk{extra})")


def _memory_text(model: Any, context: int) -> str:
    """The fit cell with the one memory figure (measured when a load at this context
    measured it), worded as in the library and ``models info``."""
    from slmdesk.catalog.fit import effective_context, estimate_for_record

    try:
        est = estimate_for_record(model, effective_context(context, model.context_length))
    except Exception:  # noqa: BLE001 - a record without numbers has no estimate
        return ""
    return f"  {est.cell} at {est.context:,} tokens"


def _list(args: argparse.Namespace) -> int:
    from slmdesk.settings import load_settings
    from slmdesk.store.models import ModelRepository

    core = open_core()
    models = ModelRepository(core.db).list()
    if args.json:
        print_json([m.to_json() for m in models])
        return 0
    if not models:
        print("No models. Import one with `slmdesk models import PATH.gguf`.")
        return 0
    context = load_settings(core.db).max_context
    for m in models:
        size = f"{m.size_bytes / 1e6:.0f} MB"
        flags = "" if os.path.isfile(m.path) else "  [file missing]"
        print(
            f"{m.id}  {m.name}  {m.architecture or '?'}  {m.quantization or '?'}  "
            f"ctx {m.context_length or '?'}  {size}  {m.licence or 'licence unknown'}"
            f"{_memory_text(m, context)}{flags}"
        )
    _print_disk_usage(core)
    return 0


def _import(args: argparse.Namespace) -> int:
    from slmdesk.catalog.registry import find_same_models, import_model

    core = open_core()
    model = import_model(core.db, args.path, name=args.name)
    same = find_same_models(core.db, model)
    text = f"Registered {model.name} ({model.id}) from {model.path}"
    for found in same:
        text += f"\nNote: {found.sentence}"
    print_result(args.json, {**model.to_json(), "same_as": [
        {"id": f.model.id, "name": f.model.name, "evidence": f.evidence} for f in same]}, text)
    return 0


def _rename(args: argparse.Namespace) -> int:
    from slmdesk.catalog.registry import rename_model
    from slmdesk.store.models import ModelRepository

    core = open_core()
    old = ModelRepository(core.db).find(args.model)
    model = rename_model(core.db, old.id, args.name)
    print_result(args.json, model.to_json(), f"Renamed {old.name} to {model.name} ({model.id})")
    return 0


def _info(args: argparse.Namespace) -> int:
    from slmdesk.catalog.library import format_details, hash_file, model_details, record_sha256
    from slmdesk.settings import load_settings
    from slmdesk.store.models import ModelRepository

    core = open_core()
    model = ModelRepository(core.db).find(args.model)
    if args.sha256 and os.path.isfile(model.path):
        model = record_sha256(core.db, model.id, hash_file(model.path))
    details = model_details(model, context=load_settings(core.db).max_context)
    print_result(args.json, details, format_details(details))
    return 0


def _rm(args: argparse.Namespace) -> int:
    from slmdesk.catalog.fit import format_bytes
    from slmdesk.catalog.library import remove_model
    from slmdesk.store.models import ModelRepository

    core = open_core()
    model = ModelRepository(core.db).find(args.model)
    deletes = model.owns_file or args.delete_file
    if deletes and os.path.lexists(model.path) and not args.yes and not confirm(
            f"Delete {model.path} ({format_bytes(model.size_bytes)})?"):
        raise InvalidInputError(
            f"Removing {model.name} deletes its file {model.path}; add --yes to confirm.")
    removal = remove_model(core.db, model.id, delete_file=args.delete_file,
                           models_dir=_models_dir(core))
    if args.json:
        print_json({"id": model.id, "name": model.name, **removal.to_json()})
    elif removal.kept_path:
        print(f"Removed {model.name}; its file stays at {removal.kept_path}")
    else:
        print(f"Removed {model.name}; {format_bytes(removal.freed_bytes)} freed")
    return 0


def _catalog(args: argparse.Namespace) -> int:
    from slmdesk.catalog.curated import load_catalog
    from slmdesk.catalog.fit import (
        effective_context,
        estimate_for_entry,
        estimate_for_record,
        format_bytes,
    )
    from slmdesk.settings import load_settings
    from slmdesk.store.models import ModelRepository

    core = open_core()
    max_context = load_settings(core.db).max_context
    installed = {m.sha256: m for m in ModelRepository(core.db).list() if m.sha256}
    rows = []
    for entry in load_catalog():
        record = installed.get(entry.sha256) if entry.sha256 else None
        # An installed entry gets its model's figure (measured once loaded), as in
        # `models list`; the others their estimate.
        est = estimate_for_record(record, effective_context(max_context, record.context_length)) \
            if record is not None else \
            estimate_for_entry(entry, effective_context(max_context, entry.context_length))
        rows.append((entry, est, record is not None))
    if args.json:
        print_json([{**e.to_json(), "fit": est.to_json(), "installed": inst}
                    for e, est, inst in rows])
        return 0
    for e, est, inst in rows:
        size = ("~" if e.size_approximate else "") + format_bytes(e.size_bytes)
        print(f"{e.id}  {e.name}  {size}  {e.licence}  {est.cell} at {est.context:,} tokens"
              + ("  [installed]" if inst else ""))
    return 0


def _discover(args: argparse.Namespace) -> int:
    from slmdesk.catalog import discover as disc
    from slmdesk.catalog.fit import format_bytes
    from slmdesk.settings import load_settings
    from slmdesk.store.models import ModelRepository

    core = open_core()
    settings = load_settings(core.db)
    found = disc.discover(settings.library_folders, hf_cache=settings.discover_hf_cache,
                          known_paths=[m.path for m in ModelRepository(core.db).list()])
    if args.register or args.all:
        return _register_found(core, args, found)

    def line(f: DiscoveredFile) -> str:
        origin = f"{f.repo_id} @ {f.revision[:10]}" if f.repo_id and f.revision else f.folder
        return (f"{f.path}  {format_bytes(f.size_bytes)}  {f.source}: {origin}"
                + ("  [registered]" if f.registered else ""))

    print_listing(found, json_mode=args.json, to_json=lambda f: f.to_json(), line=line,
                  empty="No GGUF files found. Add a folder with `slmdesk models folders add DIR`.")
    return 0


def _register_found(core: Core, args: argparse.Namespace, found: list[DiscoveredFile]) -> int:
    """`models discover --register PATH` or `--all`: register found files in place."""
    from slmdesk.catalog.discover import register_discovered

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
    records = [register_discovered(core.db, f) for f in chosen]
    print_listing(records, json_mode=args.json, to_json=lambda r: r.to_json(),
                  line=lambda r: f"Registered {r.name} ({r.id}) in place: {r.path}",
                  empty="Nothing new to register.")
    return 0


def _folders_list(args: argparse.Namespace) -> int:
    from slmdesk.catalog.discover import hf_cache_dir
    from slmdesk.settings import load_settings

    settings = load_settings(open_core().db)
    if args.json:
        print_json({"folders": settings.library_folders,
                    "hf_cache": str(hf_cache_dir()) if settings.discover_hf_cache else None})
        return 0
    for folder in settings.library_folders:
        print(folder)
    if not settings.library_folders:
        print("No library folders. Add one with `slmdesk models folders add DIR`.")
    if settings.discover_hf_cache:
        print(f"(and the Hugging Face cache: {hf_cache_dir()})")
    return 0


def _change_folders(args: argparse.Namespace,
                    change: Callable[[list[str], str], list[str]]) -> str:
    """Save the library folders as ``change(folders, path)`` returns them; the path of --path."""
    from slmdesk.settings import load_settings, save_settings

    core = open_core()
    settings = load_settings(core.db)
    path: str = os.path.abspath(os.path.expanduser(args.path))
    folders = change(settings.library_folders, path)
    if folders != settings.library_folders:
        settings.library_folders = folders
        save_settings(core.db, settings)
    return path


def _folders_add(args: argparse.Namespace) -> int:
    def add(folders: list[str], path: str) -> list[str]:
        if not os.path.isdir(path):
            raise InvalidInputError(f"{args.path} is not a folder.")
        return folders if path in folders else [*folders, path]

    print(f"Added {_change_folders(args, add)}")
    return 0


def _folders_remove(args: argparse.Namespace) -> int:
    def remove(folders: list[str], path: str) -> list[str]:
        kept = [f for f in folders if f not in (path, args.path)]
        if len(kept) == len(folders):
            raise InvalidInputError(f"{args.path} is not a library folder.")
        return kept

    path = _change_folders(args, remove)
    print(f"Removed {path} from the library folders (no file was touched)")
    return 0
