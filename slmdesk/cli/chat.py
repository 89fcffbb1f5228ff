"""`slmdesk chat`: one turn with PROMPT, or an interactive chat; replies stream and are stored."""

# The chat service and the engine are imported inside the handler: building the parser
# imports every command module, and only `chat` should pay for llama.cpp.

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slmdesk.cli.common import check_at_least_one, open_core, sigint_cancels
from slmdesk.cli.loading import (
    add_load_options,
    check_load_options,
    load_engine,
    resolve_present_model,
)
from slmdesk.cli.output import print_json
from slmdesk.errors import UserFacingError

if TYPE_CHECKING:
    import sqlite_utils

    from slmdesk.chat import ChatModel, ChatService
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import SamplingParams
    from slmdesk.engine.remote.client import RemoteEngine
    from slmdesk.store.chats import Conversation

OneTurn = Callable[..., dict[str, Any]]


def add_parsers(sub: Any) -> None:
    chat = sub.add_parser("chat", help="chat with a model (interactive without PROMPT)")
    chat.add_argument("prompt", nargs="?", metavar="PROMPT")
    chat.add_argument("-m", "--model", help="model id, name or file name (with --engine: the "
                      "engine's model, default its first)")
    chat.add_argument("--system", help="system prompt for a new conversation")
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--top-p", type=float)
    chat.add_argument("--top-k", type=int)
    chat.add_argument("--min-p", type=float)
    chat.add_argument("--repeat-penalty", type=float)
    chat.add_argument("--seed", type=int)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--stop", action="append", metavar="TEXT", help="stop string (repeatable)")
    add_load_options(chat)
    chat.add_argument("--engine", metavar="NAME|URL",
                      help="chat through a remote OpenAI-compatible engine (`slmdesk engines`) "
                      "instead of a model on this machine; the chat is stored as usual")
    chat.add_argument("--api-key", metavar="KEY", help="the remote engine's key")
    chat.add_argument("--continue", dest="continue_id", metavar="CONVERSATION_ID")
    chat.add_argument("--json", action="store_true", help="print one JSON object at the end")
    chat.set_defaults(func=_chat)


def _sampling_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "min_p": args.min_p,
        "repeat_penalty": args.repeat_penalty,
        "seed": args.seed,
        "max_tokens": args.max_tokens,
        "stop": tuple(args.stop) if args.stop else None,
    }


def _chat(args: argparse.Namespace) -> int:
    from slmdesk.chat import ChatService
    from slmdesk.engine.params import SamplingParams
    from slmdesk.settings import model_defaults

    core = open_core()
    service = ChatService(core.db)
    conversation = None
    if args.continue_id:
        conversation = service.chats.find_conversation(args.continue_id)
    # --engine: a model on a remote engine (nothing loads here); else a registered file.
    remote = _open_remote(core.db, args) if args.engine else None
    local = None if remote else resolve_present_model(
        core.db, args.model, remembered_id=conversation.model_id if conversation else None
    )
    model: ChatModel = remote.model if remote else local  # type: ignore[assignment]
    overrides = _sampling_overrides(args)
    for key, value in (("max-tokens", args.max_tokens), ("top-k", args.top_k)):
        check_at_least_one(key, value)
    check_load_options(args)
    # A new conversation starts with the model's defaults (its own where saved, else the
    # app's: the GUI's new chat does the same); a continued one keeps its own settings.
    base = (
        SamplingParams.from_json(conversation.params) if conversation
        else model_defaults(core.db, model.id).sampling
    )
    sampling = base.merged(**overrides)
    if conversation is not None and args.system is not None:
        conversation = service.chats.update_conversation(
            conversation.id, system_prompt=args.system
        )

    engine: LlamaEngine | RemoteEngine = (
        remote.engine if remote else load_engine(local, core.db, args))  # type: ignore[arg-type]
    one_turn = _Turns(service, engine, model, sampling, args.system, conversation)
    try:
        if args.prompt is not None:
            out = one_turn(args.prompt, stream=not args.json)
            if args.json:
                print_json(out)
            return 0
        return _interactive(one_turn, model.name, json_mode=args.json)
    finally:
        engine.unload()


class _Remote:
    """--engine: the remote engine and the model on it that the chat goes to."""

    def __init__(self, engine: RemoteEngine, model: ChatModel) -> None:
        self.engine = engine
        self.model = model


def _open_remote(db: sqlite_utils.Database, args: argparse.Namespace) -> _Remote:
    from slmdesk.remote.engines import open_remote_engine, remote_model_of

    engine = open_remote_engine(db, args.engine, args.api_key, args.model)
    return _Remote(engine, remote_model_of(db, args.engine, engine))


@dataclass
class _Turns:
    """One turn after another in the same conversation, created with the first message."""

    service: ChatService
    engine: LlamaEngine | RemoteEngine
    model: ChatModel
    sampling: SamplingParams
    system: str | None
    conversation: Conversation | None

    def __call__(self, text: str, *, stream: bool) -> dict[str, Any]:
        from slmdesk.chat import ReplyWriter

        service, model = self.service, self.model
        if self.conversation is None:
            # Created with the first message, so quitting at once leaves no empty chat.
            self.conversation = service.new_conversation(
                model=model, system_prompt=self.system, sampling=self.sampling
            )
        turn = service.start_turn(self.conversation, text, model=model, sampling=self.sampling)
        self.conversation = turn.conversation
        writer = ReplyWriter(service.chats, turn.reply.id)
        cancel = threading.Event()

        def on_text(piece: str) -> None:
            writer.append(piece)
            if stream:
                sys.stdout.write(piece)
                sys.stdout.flush()

        try:
            with sigint_cancels(cancel):
                result = self.engine.stream_chat(
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
            "conversation_id": self.conversation.id,
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


def _interactive(one_turn: OneTurn, model_name: str, *, json_mode: bool) -> int:
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
