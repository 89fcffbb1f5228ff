"""`slmdesk engines list|add|remove|check`: the remote OpenAI-compatible engines
(slmdesk.remote), saved by name."""

# The store and the remote engine are imported inside the handler: building the parser
# imports every command module.

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from slmdesk.cli.common import add_command


def add_parsers(sub: Any) -> None:
    p = add_command(
        sub, "engines", run,
        "remote OpenAI-compatible engines (llama-server, vLLM, slmdesk serve)",
        description="Save remote engines by name; `--engine NAME` (or a URL) on chat and "
        "classify then uses them. `check` probes what an engine can do: log-probabilities, "
        "prompt log-probabilities, top-N probabilities, tokenization, chat template, JSON "
        "schema, embeddings. A feature an engine lacks is refused, never silently dropped.",
    )
    sub = p.add_subparsers(dest="engines_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", help="the saved engines and their last check")
    listing.add_argument("--json", action="store_true")
    add = sub.add_parser("add", help="save an engine (checked at once unless --no-check)")
    add.add_argument("name")
    add.add_argument("url", help="e.g. http://127.0.0.1:8080 (with or without /v1)")
    add.add_argument("--api-key", help="sent as 'Authorization: Bearer KEY'")
    add.add_argument("--no-check", action="store_true", help="save without probing it")
    remove = sub.add_parser("remove", help="forget a saved engine")
    remove.add_argument("name")
    check = sub.add_parser("check", help="probe an engine (saved name or URL) and show it")
    check.add_argument("name", help="a saved engine's name, or a URL")
    check.add_argument("--api-key")
    check.add_argument("-m", "--model", help="the engine's model to probe (default: its first)")
    check.add_argument("--json", action="store_true")
    for command in (listing, add, remove, check):
        command.set_defaults(func=run)  # each subcommand names its handler, as the CLI's do


def run(args: argparse.Namespace) -> int:
    """Do the ``engines`` subcommand; return the exit code."""
    from slmdesk.engine.remote.http import normalise_base_url
    from slmdesk.startup import open_core
    from slmdesk.store.engines import EngineRepository

    core = open_core()
    repo = EngineRepository(core.db)
    if args.engines_command == "list":
        return _list(repo, json_mode=args.json)
    if args.engines_command == "add":
        repo.add(args.name, normalise_base_url(args.url), args.api_key)
        print(f"Saved engine {args.name} at {normalise_base_url(args.url)}")
        if args.no_check:
            return 0
        return _check(repo, core.db, args.name, args.api_key, None, json_mode=False)
    if args.engines_command == "remove":
        repo.remove(args.name)
        print(f"Removed engine {args.name}")
        return 0
    return _check(repo, core.db, args.name, args.api_key, args.model, json_mode=args.json)


def _list(repo: Any, *, json_mode: bool) -> int:
    engines = repo.list()
    if json_mode:
        print(json.dumps([e.to_json() for e in engines], indent=2, ensure_ascii=False))
        return 0
    if not engines:
        print("No engines saved (add one: slmdesk engines add NAME URL).", file=sys.stderr)
    for engine in engines:
        caps = engine.capabilities or {}
        models = ", ".join(caps.get("models", [])) or "not checked"
        key = ", key" if engine.api_key else ""
        print(f"{engine.name}\t{engine.base_url}{key}\t{caps.get('kind', '?')}\t{models}")
    return 0


def _check(repo: Any, db: Any, name: str, api_key: str | None, model: str | None, *,
           json_mode: bool) -> int:
    from slmdesk.engine.remote.capabilities import probe
    from slmdesk.remote.engines import open_remote_engine

    engine = open_remote_engine(db, name, api_key, model)
    caps = probe(engine.http, model)
    if repo.find(name) is not None:
        repo.record_check(name, caps.to_json())
    if json_mode:
        print(json.dumps({"base_url": engine.base_url, **caps.to_json()}, indent=2))
        return 0
    print(f"{engine.base_url}: {caps.kind}, model {caps.model}"
          + (f", context {caps.n_ctx}" if caps.n_ctx else ""))
    print(f"models: {', '.join(caps.models)}")
    print(caps.summary())
    return 0
