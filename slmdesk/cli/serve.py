"""`slmdesk serve`: the OpenAI-compatible server (slmdesk.server), started from the terminal."""

# The catalog and the server are imported inside the handler: building the parser imports
# every command module, and only `serve` should pay for them.

from __future__ import annotations

import argparse
import sys
from typing import Any

from slmdesk.cli.common import add_command
from slmdesk.cli.loading import FORCE_HELP
from slmdesk.server.config import DEFAULT_HOST, DEFAULT_PARALLEL, DEFAULT_PORT, ServerConfig
from slmdesk.server.snippet import OPENAI_SNIPPET


def add_parsers(sub: Any) -> None:
    p = add_command(
        sub, "serve", run, "an OpenAI-compatible server on this machine",
        description="Serve the models of `slmdesk models list` over an OpenAI-compatible HTTP "
        "API (/v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings, "
        "/v1/classify). Listens on 127.0.0.1 unless --host says otherwise; any other "
        "address needs --token.",
    )
    p.add_argument("-m", "--model", help="model id, name or file name (default: the app's)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every request")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="let browser pages from ORIGIN (e.g. http://localhost:3000) call the "
                   "API; repeat for several")
    p.add_argument("--queue", type=int, default=8, metavar="N",
                   help="requests that may wait for the engine (more get 429; default 8)")
    p.add_argument("--max-tokens-limit", type=int, default=4096, metavar="N",
                   help="the most tokens one request may ask for (default 4096)")
    p.add_argument("--threads", type=int, help="CPU threads (default: the app's setting)")
    p.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, metavar="N",
                   help="chat and completion requests decoded together (default "
                        f"{DEFAULT_PARALLEL}; 1: one at a time, the others queued)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--keep-chats", action="store_true",
                   help="store each chat request and its reply in the chat history (off by "
                        "default: nothing said through the API is kept)")


def run(args: argparse.Namespace) -> int:
    """Load the model, print the address and a client snippet, serve until Ctrl-C."""
    from slmdesk.catalog.registry import check_model_present, resolve_model
    from slmdesk.errors import InvalidInputError
    from slmdesk.server.models import LoadOptions, ModelLibrary
    from slmdesk.server.runner import LocalServer
    from slmdesk.startup import open_core

    if args.threads is not None and args.threads < 1:
        raise InvalidInputError("--threads must be at least 1.")
    if args.parallel < 1:
        raise InvalidInputError("--parallel must be at least 1.")
    if args.max_tokens_limit < 1:
        raise InvalidInputError("--max-tokens-limit must be at least 1.")
    config = ServerConfig(
        host=args.host, port=args.port, token=args.token,
        cors_origins=tuple(args.cors_origin), queue_size=args.queue,
        max_tokens_limit=args.max_tokens_limit, keep_chats=args.keep_chats,
    ).validated()
    core = open_core()
    model = resolve_model(core.db, args.model)
    check_model_present(model)
    core.db.close()
    library = ModelLibrary(core.paths)
    if args.model is not None:
        library.name_explicitly(model)
    server = LocalServer(config, model, library=library,
                         load_options=LoadOptions(n_threads=args.threads, force=args.force,
                                                   parallel=args.parallel))
    print(f"slmdesk: loading {model.name} ...", file=sys.stderr, flush=True)

    def announce() -> None:
        print(f"slmdesk: serving {model.name} at {server.base_url}", file=sys.stderr)
        if config.keep_chats:
            print("slmdesk: chat requests are kept in the chat history (`slmdesk chats list`)",
                  file=sys.stderr)
        if config.cors_origins:
            print(f"slmdesk: browser pages allowed from {', '.join(config.cors_origins)}",
                  file=sys.stderr)
        print(OPENAI_SNIPPET.format(url=server.base_url, key=config.token or "not-needed",
                                    model=model.name), file=sys.stderr)
        print("Ctrl-C stops the server.", file=sys.stderr, flush=True)

    server.serve(on_ready=announce)
    return 0
