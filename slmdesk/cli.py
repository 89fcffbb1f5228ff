"""The `slmdesk` command line: the same core as the GUI, no Qt import unless the GUI starts."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
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

    doctor = sub.add_parser("doctor", help="version, backend, threads, paths, models, database")
    doctor.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SLMDESK_LOG", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.home:
        # Every directory, in this process and any it starts, is rooted in --home.
        os.environ[HOME_ENV] = os.path.abspath(args.home)
    try:
        if args.self_test:
            from slmdesk.selftest import run_self_test

            return run_self_test()
        if args.command is None:
            from slmdesk.app import run_gui

            return run_gui()
        handler = {
            "models": _cmd_models,
            "chat": _cmd_chat,
            "chats": _cmd_chats,
            "doctor": _cmd_doctor,
        }[args.command]
        return handler(args)
    except UserFacingError as exc:
        print(f"slmdesk: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("slmdesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# models ---------------------------------------------------------------------------------
def _cmd_models(args: argparse.Namespace) -> int:
    from slmdesk.core import open_core
    from slmdesk.models import import_model
    from slmdesk.store.repositories import ModelRepository

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
    from slmdesk.chat import ChatService, ReplyWriter
    from slmdesk.core import open_core
    from slmdesk.engine.core import LlamaEngine
    from slmdesk.engine.params import LoadParams, SamplingParams
    from slmdesk.models import check_model_present, resolve_model
    from slmdesk.settings import load_settings

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

    engine = LlamaEngine()
    load = settings.load_params()
    if args.threads:
        load = LoadParams(load.max_context, args.threads, load.n_gpu_layers, load.n_batch)
    engine.load(model.path, load)

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
    from slmdesk.core import open_core
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


# doctor ---------------------------------------------------------------------------------
def _cmd_doctor(args: argparse.Namespace) -> int:
    from slmdesk.core import open_core
    from slmdesk.engine.backend import backend_info
    from slmdesk.engine.params import physical_cores
    from slmdesk.settings import load_settings
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
        print(f"backend: {backend.backend}"
              + (" (GPU offload)" if backend.gpu_offload else "")
              + f", llama-cpp-python {backend.llama_cpp_python_version}")
        if backend.error:
            print(f"  problem: {backend.error}")
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
