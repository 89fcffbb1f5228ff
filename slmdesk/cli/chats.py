"""`slmdesk chats`: list, show, search, export, import and delete stored conversations."""

# The store and the transfer formats are imported inside the handlers: building the parser
# imports every command module, and only the command that runs should pay for sqlite-utils.

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from slmdesk.cli.common import add_command, add_group, open_item, open_repository
from slmdesk.cli.output import print_json, print_listing, print_result, write_output
from slmdesk.errors import InvalidInputError, UserFacingError
from slmdesk.json_data import parse_json

if TYPE_CHECKING:
    from slmdesk.startup import Core
    from slmdesk.store.chats import ChatRepository, Conversation


def add_parsers(sub: Any) -> None:
    csub = add_group(sub, "chats", "list, show, search, export, import and delete conversations")
    cl = add_command(csub, "list", _list, "list conversations, most recent first", json_output=True)
    cl.add_argument("--limit", type=int, default=50)
    add_command(csub, "show", _show, "show the branch on screen (Markdown or --json)", "id",
        json_output=True)
    add_command(csub, "search", _search, "search the text of every conversation", "query",
        json_output=True)
    ce = add_command(csub, "export", _export,
        "Markdown (the branch on screen) or JSON (every branch, for import)", "id")
    ce.add_argument("--format", choices=["md", "json"], default="md")
    ce.add_argument("--json", action="store_true", help="same as --format json")
    ce.add_argument("-o", "--output", help="write to this file instead of stdout")
    add_command(csub, "import", _import, "add a conversation from a JSON export", "FILE",
        json_output=True)
    add_command(csub, "delete", _delete, "delete a conversation for good", "id")


def _open_chats() -> tuple[Core, ChatRepository]:
    from slmdesk.store.chats import ChatRepository

    return open_repository(ChatRepository)


def _conversation(conversation_id: str) -> tuple[Core, ChatRepository, Conversation]:
    from slmdesk.store.chats import ChatRepository

    return open_item(ChatRepository, ChatRepository.find_conversation, conversation_id)


def _list(args: argparse.Namespace) -> int:
    _core, chats = _open_chats()
    print_listing(chats.list_conversations(limit=args.limit), json_mode=args.json,
                  to_json=lambda c: c.to_json(),
                  line=lambda c: f"{c.id}  {c.updated_at[:16].replace('T', ' ')}  {c.title}",
                  empty="No conversations yet. Start one with `slmdesk chat`.")
    return 0


def _search(args: argparse.Namespace) -> int:
    _core, chats = _open_chats()
    print_listing(chats.search(args.query), json_mode=args.json, to_json=lambda h: h.to_json(),
                  line=lambda h: f"{h.message.conversation_id}  {h.conversation_title}: "
                  f"{h.snippet}",
                  empty="No matches.")
    return 0


def _read_import_file(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise UserFacingError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not UTF-8 text: {exc.reason}.") from exc
    return parse_json(
        text,
        invalid=lambda exc: InvalidInputError(
            f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."),
        too_deep=lambda: InvalidInputError(f"{path} is nested too deeply to be a conversation."))


def _import(args: argparse.Namespace) -> int:
    from slmdesk.transfer import import_json

    core, _chats = _open_chats()
    data = _read_import_file(args.file)
    try:
        conv = import_json(core.db, data)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{args.file}: {exc.message}") from exc
    print_result(args.json, conv.to_json(), conv.id)
    return 0


def _delete(args: argparse.Namespace) -> int:
    _core, chats, conv = _conversation(args.id)
    # The GUI keeps deletions in a bin for undo; the command line deletes for good.
    chats.delete_conversation(conv.id)
    chats.purge_deleted(conversation_id=conv.id)
    print(f"Deleted {conv.id}  {conv.title}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from slmdesk.transfer import export_markdown

    core, chats, conv = _conversation(args.id)
    if args.json:
        path = chats.path(conv.id)
        total = chats.count_messages(conv.id)
        print_json(
            {
                **conv.to_json(),
                "messages": [m.to_json() for m in path],
                "branches": total - len(path),
            }
        )
    else:
        print(export_markdown(core.db, conv.id))
    return 0


def _export(args: argparse.Namespace) -> int:
    from slmdesk.transfer import export_json, export_markdown

    core, _chats, conv = _conversation(args.id)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        text = json.dumps(export_json(core.db, conv.id), indent=2, ensure_ascii=False)
    else:
        text = export_markdown(core.db, conv.id)
    if args.output:
        # Text mode with the platform's line ends (data exports write "\n" as is).
        write_output(args.output, text + "\n", newline=None)
    else:
        print(text)
    return 0
