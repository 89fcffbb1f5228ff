"""Data set files in and out: CSV, TSV, JSON lines, plain text, and the chat formats of
common fine-tuning tools (OpenAI messages, ShareGPT, Alpaca).

Import reads and checks the whole file before it writes anything, then adds every example
in one transaction: a bad row raises ``InvalidInputError`` naming the file and the line,
and the database is left as it was. Export is deterministic: examples in id order, JSON
keys in a fixed order, ``\\n`` line ends.

The chat formats, one JSON object per line (import also takes a JSON array of them):

* ``openai``: ``{"messages": [{"role": "system|user|assistant", "content": "..."}]}``
* ``sharegpt``: ``{"conversations": [{"from": "system|human|gpt", "value": "..."}]}``
* ``alpaca``: ``{"instruction": "...", "input": "...", "output": "..."}``, with the
  optional ``system`` and ``history`` (earlier ``[user, assistant]`` turns) that
  LLaMA-Factory reads.

Labelled texts export as ``text,label`` rows (``jsonl``, ``csv``) or, for the chat formats,
as a classification instruction: system (the label set) → user (the text) → assistant
(the label). Importing such a file into a labelled data set turns it back into texts and
labels.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from slmdesk.datasets import EXPORT_FORMATS
from slmdesk.datasets.tables import (
    MAX_FIELD,
    Where,
    csv_table,
    json_error,
    json_lines,
    numbered_lines,
    utf8_error_line,
)
from slmdesk.errors import InvalidInputError, UserFacingError
from slmdesk.store.datasets import (
    SPLITS,
    Dataset,
    DatasetRepository,
    Example,
    NewExample,
    check_messages,
)
from slmdesk.store.db import disk_full_is_user_facing

FORMATS = EXPORT_FORMATS
IMPORT_FORMATS = ("csv", "tsv", "jsonl", "txt", "openai", "sharegpt", "alpaca")
CHAT_FORMATS = ("openai", "sharegpt", "alpaca")
EXPORT_SPLITS = ("all", *SPLITS)
# The whole file is read and checked in memory before anything is written (so that a bad
# row changes nothing); parsed rows take several times the file's size.
MAX_IMPORT_BYTES = 256 * 1024 * 1024

TEXT_COLUMNS = ("text", "sentence", "content", "review", "document", "body", "message",
                "comment", "utterance", "tweet", "question", "prompt", "input")
LABEL_COLUMNS = ("label", "class", "category", "intent", "sentiment", "target", "tag",
                 "gold", "labels")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant"}
SHAREGPT_FROM = {"system": "system", "user": "human", "assistant": "gpt"}

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ImportPreview:
    """What ``import_file`` would read: the format, the columns, the first rows, and the
    columns it would take for the text and the label unless told otherwise."""

    format: str
    columns: list[str]
    rows: list[dict[str, str]]
    suggested_text_column: str | None
    suggested_label_column: str | None
    kind: str  # "labels" | "chat": what a new data set from this file would hold
    total: int = 0  # records in the file (blank lines not counted)


@dataclass(frozen=True)
class ImportResult:
    dataset: Dataset
    added: int
    skipped_blank: int
    format: str = ""
    text_column: str | None = None
    label_column: str | None = None


# -- reading files --------------------------------------------------------------------------


def _name(path: PathLike) -> str:
    return Path(path).name or os.fspath(path)


def _where(path: PathLike, line: int) -> str:
    return f"{_name(path)} line {line}"


def _line_of(path: PathLike) -> Where:
    return lambda line: _where(path, line)


def _read_text(path: PathLike) -> str:
    try:
        size = Path(path).stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise InvalidInputError(
                f"{_name(path)} is {size / 1e6:,.0f} MB; slmdesk imports files of up to "
                f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB. Split it into smaller files.")
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserFacingError(f"Cannot read {os.fspath(path)}: {exc.strerror or exc}.") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInputError(
            f"{_where(path, 1)}: UTF-16 text, not UTF-8. Save the file as UTF-8.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{_where(path, utf8_error_line(data, exc))}: not UTF-8 text ({exc.reason}). "
            "Save the file as UTF-8."
        ) from exc
    # NUL never occurs in text files; UTF-16 without a BOM decodes as "valid" UTF-8 full
    # of NULs, and so do many binary files: refuse rather than import garbage.
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise InvalidInputError(
            f"{_where(path, line)}: a NUL byte: this is a binary file or UTF-16 text, not "
            "UTF-8 text. Save the file as UTF-8.")
    if len(text) > MAX_FIELD:
        start = 0
        for number in range(1, text.count("\n") + 2):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            if end - start > MAX_FIELD:
                raise InvalidInputError(
                    f"{_where(path, number)}: the line is longer than "
                    f"{MAX_FIELD // (1024 * 1024)} MB; is this really a data set file?")
            start = end + 1
    return text


def _json_array(path: PathLike, text: str, *, first_only: bool = False
                ) -> list[tuple[int, Any]]:
    """The items of a JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    records: list[tuple[int, Any]] = []
    pos = text.index("[") + 1
    line, counted = 1, 0

    def line_at(index: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, index)
        counted = index
        return line

    def skip(index: int) -> int:
        while index < len(text) and text[index] in " \t\r\n":
            index += 1
        return index

    pos = skip(pos)
    if pos < len(text) and text[pos] == "]":
        pos += 1
    else:
        while True:
            start = line_at(pos)
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"{_where(path, exc.lineno)}: not valid JSON ({exc.msg})."
                ) from exc
            except RecursionError as exc:
                raise json_error(_where(path, start), exc) from exc
            records.append((start, value))
            if first_only:
                return records
            pos = skip(pos)
            if pos < len(text) and text[pos] == ",":
                pos = skip(pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            raise InvalidInputError(
                f"{_where(path, line_at(min(pos, len(text))))}: not valid JSON "
                "(expected ',' or ']' after an item)."
            )
    rest = skip(pos)
    if rest < len(text):
        raise InvalidInputError(
            f"{_where(path, line_at(rest))}: not valid JSON (text after the end of the array)."
        )
    return records


def _json_records(path: PathLike, text: str, *, first_only: bool = False
                  ) -> list[tuple[int, Any]]:
    if text.lstrip().startswith("["):
        return _json_array(path, text, first_only=first_only)
    return json_lines(text, _line_of(path), first_only=first_only)


def _record_format(value: Any) -> str:
    """The chat format one JSON record is in, or "jsonl" for a plain object."""
    if isinstance(value, dict):
        if "messages" in value:
            return "openai"
        if "conversations" in value:
            return "sharegpt"
        if "instruction" in value and "output" in value:
            return "alpaca"
    return "jsonl"


def _sniff_delimited(first_line: str, suffix: str) -> str:
    tabs, commas = first_line.count("\t"), first_line.count(",")
    if suffix == ".tsv":
        return "csv" if commas and not tabs else "tsv"
    return "tsv" if tabs and not commas else "csv"


def _detect(path: PathLike, text: str) -> str:
    suffix = Path(path).suffix.lower()
    if not text.strip():
        raise InvalidInputError(f"{_name(path)} is empty.")
    first = next(line for _n, line in numbered_lines(text) if line.strip())
    if suffix in (".csv", ".tsv"):
        return _sniff_delimited(first, suffix)
    if suffix in (".txt", ".text", ".md"):
        return "txt"
    stripped = text.lstrip()
    if suffix in (".jsonl", ".ndjson", ".json") or stripped[:1] in ("{", "["):
        records = _json_records(path, text, first_only=True)
        return _record_format(records[0][1]) if records else "jsonl"
    return "tsv" if "\t" in first else "txt"


def detect_format(path: PathLike) -> str:
    """The import format of a file, by its extension and its content: "csv", "tsv",
    "jsonl", "txt", or a chat format ("openai", "sharegpt", "alpaca")."""
    return _detect(path, _read_text(path))


@dataclass
class _Loaded:
    format: str
    columns: list[str]
    records: list[tuple[int, Any]]  # (line, value): a dict, or the line's text for "txt"


def _load(path: PathLike) -> _Loaded:
    text = _read_text(path)
    fmt = _detect(path, text)
    if fmt in ("csv", "tsv"):
        columns, rows = csv_table(text, "\t" if fmt == "tsv" else ",", _line_of(path),
                                  f"{_name(path)} is empty (no header row).")
        return _Loaded(fmt, columns, list(rows))
    if fmt == "txt":
        return _Loaded(fmt, ["text"], [(n, line) for n, line in numbered_lines(text)])
    records = _json_records(path, text)
    keys: dict[str, None] = {}
    for number, value in records:
        if not isinstance(value, dict):
            raise InvalidInputError(f"{_where(path, number)}: not a JSON object.")
        found = _record_format(value)
        if found != fmt:
            raise InvalidInputError(
                f"{_where(path, number)}: a {_FORMAT_NAMES[found]} record, but the file "
                f"starts with {_FORMAT_NAMES[fmt]} records."
            )
        for key in value:
            keys.setdefault(str(key), None)
    return _Loaded(fmt, list(keys), records)


_FORMAT_NAMES = {"openai": "chat messages", "sharegpt": "ShareGPT", "alpaca": "Alpaca",
                 "jsonl": "plain JSON"}


# -- chat records -----------------------------------------------------------------------------


def _chat_messages(path: PathLike, line: int, fmt: str, record: dict[str, Any]
                   ) -> list[dict[str, str]]:
    """The messages of one chat-format record, checked."""
    where = _where(path, line)
    if fmt == "openai":
        raw = record["messages"]
        if not isinstance(raw, list):
            raise InvalidInputError(f"{where}: \"messages\" must be a list.")
        messages: list[Any] = raw
    elif fmt == "sharegpt":
        turns = record["conversations"]
        if not isinstance(turns, list):
            raise InvalidInputError(f"{where}: \"conversations\" must be a list.")
        messages = []
        for i, turn in enumerate(turns, start=1):
            if not isinstance(turn, dict):
                raise InvalidInputError(f"{where}: turn {i} is not an object.")
            who = turn.get("from")
            if who not in SHAREGPT_ROLES:
                raise InvalidInputError(
                    f"{where}: turn {i} is from {json.dumps(who)}; use system, human or gpt."
                )
            messages.append({"role": SHAREGPT_ROLES[who], "content": turn.get("value")})
    else:
        messages = _alpaca_messages(where, record)
    try:
        return check_messages(messages)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message}") from exc


def _alpaca_messages(where: str, record: dict[str, Any]) -> list[Any]:
    def text(key: str, default: str | None = None) -> str:
        value = record.get(key, default)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise InvalidInputError(f"{where}: \"{key}\" must be text.")
        return value

    instruction, given, output = text("instruction"), text("input", ""), text("output")
    system = text("system", "")
    history = record.get("history") or []
    if not isinstance(history, list):
        raise InvalidInputError(f"{where}: \"history\" must be a list of [user, assistant].")
    messages: list[Any] = [{"role": "system", "content": system}] if system else []
    for i, pair in enumerate(history, start=1):
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(p, str) for p in pair)):
            raise InvalidInputError(
                f"{where}: history turn {i} must be a [user, assistant] pair of texts.")
        messages += [{"role": "user", "content": pair[0]},
                     {"role": "assistant", "content": pair[1]}]
    prompt = f"{instruction}\n\n{given}" if given.strip() else instruction
    messages += [{"role": "user", "content": prompt},
                 {"role": "assistant", "content": output}]
    return messages


def _labelled_from_chat(path: PathLike, line: int, fmt: str, record: dict[str, Any]
                        ) -> tuple[str, str]:
    """(text, label) from a chat record that asks to classify one text."""
    where = _where(path, line)
    if fmt == "alpaca":
        for key in ("instruction", "output"):
            if not isinstance(record.get(key), str):
                raise InvalidInputError(f"{where}: \"{key}\" must be text.")
        given = record.get("input")
        if given is not None and not isinstance(given, str):
            raise InvalidInputError(f"{where}: \"input\" must be text.")
        text = given if given and given.strip() else record["instruction"]
        return text, record["output"].strip()
    messages = _chat_messages(path, line, fmt, record)
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) != 2:
        raise InvalidInputError(
            f"{where}: a labelled text needs one user message (the text) and one assistant "
            "reply (the label)."
        )
    return turns[0]["content"], turns[1]["content"].strip()


# -- preview -----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _pick(columns: list[str], names: tuple[str, ...], exclude: str | None = None
          ) -> str | None:
    folded = {c.casefold(): c for c in reversed(columns) if c != exclude}
    for name in names:
        if name in folded:
            return folded[name]
    return None


def _suggest(loaded: _Loaded) -> tuple[str | None, str | None]:
    if loaded.format == "txt":
        return "text", None
    if loaded.format in CHAT_FORMATS:
        return None, None
    label = _pick(loaded.columns, LABEL_COLUMNS)
    text = _pick(loaded.columns, TEXT_COLUMNS, exclude=label)
    if text is None:
        # The column with the longest texts in the first rows.
        sample = [row for _n, row in loaded.records[:50] if isinstance(row, dict)]
        lengths = {
            c: sum(len(row[c]) for row in sample if isinstance(row.get(c), str))
            for c in loaded.columns if c != label
        }
        text = max(lengths, key=lambda c: lengths[c]) if any(lengths.values()) else None
    return text, label


def _preview_row(loaded: _Loaded, path: PathLike, line: int, value: Any) -> dict[str, str]:
    if loaded.format == "txt":
        return {"text": value}
    if loaded.format in CHAT_FORMATS:
        messages = _chat_messages(path, line, loaded.format, value)
        users = [m["content"] for m in messages if m["role"] == "user"]
        replies = [m["content"] for m in messages if m["role"] == "assistant"]
        return {
            "system": messages[0]["content"] if messages[0]["role"] == "system" else "",
            "user": users[0], "assistant": replies[0], "turns": str(len(users)),
        }
    return {c: _cell(value.get(c)) for c in loaded.columns}


def preview(path: PathLike, *, limit: int = 20) -> ImportPreview:
    """The format, columns and first ``limit`` rows of a file, with the columns that
    ``import_file`` would take for the text and the label unless told otherwise."""
    loaded = _load(path)
    records = [(n, v) for n, v in loaded.records
               if not (loaded.format == "txt" and not v.strip())]
    text_column, label_column = _suggest(loaded)
    columns = (["system", "user", "assistant", "turns"] if loaded.format in CHAT_FORMATS
               else loaded.columns)
    return ImportPreview(
        format=loaded.format,
        columns=columns,
        rows=[_preview_row(loaded, path, n, v) for n, v in records[: max(limit, 0)]],
        suggested_text_column=text_column,
        suggested_label_column=label_column,
        kind="chat" if loaded.format in CHAT_FORMATS else "labels",
        total=len(records),
    )


# -- import --------------------------------------------------------------------------------------


def _column(path: PathLike, loaded: _Loaded, column: str, option: str) -> str:
    if column not in loaded.columns:
        raise InvalidInputError(
            f"{_name(path)} has no '{column}' column for {option} "
            f"(columns: {', '.join(loaded.columns) or 'none'})."
        )
    return column


def _text_cell(where: str, row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise InvalidInputError(f"{where}: '{column}' is not text.")


def _label_cell(where: str, row: dict[str, Any], column: str) -> str | None:
    value = row.get(column)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: the label in '{column}' is not text.")
    return value.strip() or None


def _optional_text(where: str, row: dict[str, Any], column: str) -> str | None:
    value = row.get(column)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: '{column}' is not text.")
    return value


def _split_cell(where: str, row: dict[str, Any], column: str) -> str | None:
    value = _optional_text(where, row, column)
    if value is None or not value.strip():
        return None
    value = value.strip().lower()
    if value not in SPLITS:
        raise InvalidInputError(
            f"{where}: the split '{value}' is not one of {', '.join(SPLITS)}.")
    return value


def _labelled_items(
    path: PathLike, loaded: _Loaded, text_column: str | None, label_column: str | None,
) -> tuple[list[tuple[int, NewExample]], int, str | None, str | None]:
    source_ref = _name(path)
    items: list[tuple[int, NewExample]] = []
    blank = 0
    if loaded.format in CHAT_FORMATS:
        if text_column or label_column:
            raise InvalidInputError(
                f"{_name(path)} is a chat file ({_FORMAT_NAMES[loaded.format]}); it has "
                "no columns to choose.")
        for line, record in loaded.records:
            text, label = _labelled_from_chat(path, line, loaded.format, record)
            items.append((line, NewExample(text=text, label=label or None,
                                           source="imported", source_ref=source_ref)))
        return items, blank, None, None
    if loaded.format == "txt":
        if label_column:
            raise InvalidInputError(
                f"{_name(path)} is plain text (one text per line); it has no label column.")
        if text_column not in (None, "text"):
            raise InvalidInputError(
                f"{_name(path)} is plain text (one text per line); it has no columns.")
        for line, text in loaded.records:
            if not text.strip():
                blank += 1
                continue
            items.append((line, NewExample(text=text, source="imported",
                                           source_ref=source_ref)))
        return items, blank, "text", None
    suggested_text, suggested_label = _suggest(loaded)
    if text_column is not None:
        text_col = _column(path, loaded, text_column, "the text")
    elif suggested_text is None:
        raise InvalidInputError(
            f"{_name(path)}: say which column holds the text "
            f"(columns: {', '.join(loaded.columns) or 'none'}).")
    else:
        text_col = suggested_text
    label_col = (_column(path, loaded, label_column, "the label")
                 if label_column is not None else suggested_label)
    if label_col == text_col:
        raise InvalidInputError("The text and the label cannot come from the same column.")
    extra = {name: _pick(loaded.columns, (name,), exclude=text_col)
             for name in ("notes", "split")}
    if extra["notes"] == label_col:
        extra["notes"] = None
    if extra["split"] == label_col:
        extra["split"] = None
    for line, row in loaded.records:
        where = _where(path, line)
        if not isinstance(row, dict):
            raise InvalidInputError(f"{where}: not a JSON object.")
        text = _text_cell(where, row, text_col)
        if not text.strip():
            blank += 1
            continue
        items.append((line, NewExample(
            text=text,
            label=_label_cell(where, row, label_col) if label_col else None,
            notes=_optional_text(where, row, extra["notes"]) if extra["notes"] else None,
            split=_split_cell(where, row, extra["split"]) if extra["split"] else None,
            source="imported", source_ref=source_ref,
        )))
    return items, blank, text_col, label_col


def _chat_items(path: PathLike, loaded: _Loaded, text_column: str | None,
                label_column: str | None, dataset_name: str
                ) -> list[tuple[int, NewExample]]:
    if loaded.format not in CHAT_FORMATS:
        raise InvalidInputError(
            f"'{dataset_name}' holds chat examples, and {_name(path)} is not a chat file: "
            "use JSON lines of {\"messages\": [...]}, ShareGPT or Alpaca records.")
    if text_column or label_column:
        raise InvalidInputError(
            f"{_name(path)} is a chat file ({_FORMAT_NAMES[loaded.format]}); it has no "
            "columns to choose.")
    source_ref = _name(path)
    return [
        (line, NewExample(messages=_chat_messages(path, line, loaded.format, record),
                          source="imported", source_ref=source_ref))
        for line, record in loaded.records
    ]


def import_file(
    db: sqlite_utils.Database, dataset_name: str, path: PathLike, *,
    text_column: str | None = None, label_column: str | None = None,
    kind: str | None = None, allow_new_labels: bool = False,
) -> ImportResult:
    """Add every example of a file to a data set, creating the data set if it is missing.

    The whole file is read and checked first; then everything is written in one
    transaction. A bad row raises ``InvalidInputError("file.csv line 17: ...")`` and
    changes nothing. Rows with a blank text are skipped and counted. Into a data set
    that already has labels, a label it does not have is refused (a typo, usually)
    unless ``allow_new_labels``; a new data set takes its labels from the file, in the
    order they first appear. CSV/TSV/JSON lines may also have ``notes`` and ``split``
    columns, which are kept.
    """
    repo = DatasetRepository(db)
    existing = repo.find(dataset_name)
    loaded = _load(path)
    if kind is not None and kind not in ("labels", "chat"):
        raise InvalidInputError(f"Unknown data set kind '{kind}' (use labels or chat).")
    if existing is not None:
        if kind is not None and kind != existing.kind:
            holds = "chat examples" if existing.kind == "chat" else "labelled texts"
            raise InvalidInputError(f"'{existing.name}' holds {holds}; it cannot take "
                                    f"{'chat examples' if kind == 'chat' else 'labelled texts'}.")
        target_kind = existing.kind
        name = existing.name
    else:
        target_kind = kind or ("chat" if loaded.format in CHAT_FORMATS else "labels")
        name = " ".join(dataset_name.split())
    blank = 0
    text_col = label_col = None
    if target_kind == "labels":
        items, blank, text_col, label_col = _labelled_items(
            path, loaded, text_column, label_column)
    else:
        items = _chat_items(path, loaded, text_column, label_column, name)
    if not items:
        raise InvalidInputError(
            f"{_name(path)} has no examples to import"
            + (f" ({blank} blank row{'s' if blank != 1 else ''})." if blank else "."))
    file_labels: list[str] = []
    if existing is None and target_kind == "labels":
        file_labels = _labels_from_instruction(loaded)
    for line, item in items:
        if item.label is None:
            continue
        if existing is not None and existing.labels and item.label not in existing.labels \
                and not allow_new_labels:
            raise InvalidInputError(
                f"{_where(path, line)}: the label '{item.label}' is not one of the labels of "
                f"'{existing.name}' ({', '.join(existing.labels)})."
            )
        if item.label not in file_labels:
            file_labels.append(item.label)
    with disk_full_is_user_facing(f"the import of {_name(path)} (nothing of it was added)"), \
            db.atomic():
        dataset = existing or repo.create(name, kind=target_kind)
        if file_labels:
            dataset = repo.add_labels(dataset, file_labels)
        try:
            repo.add_examples(dataset, [item for _line, item in items])
        except InvalidInputError as exc:  # pragma: no cover - the checks above come first
            raise InvalidInputError(f"{_name(path)}: {exc.message}") from exc
    return ImportResult(
        dataset=repo.get_by_id(dataset.id), added=len(items), skipped_blank=blank,
        format=loaded.format, text_column=text_col, label_column=label_col,
    )


# -- export ---------------------------------------------------------------------------------------


_INSTRUCTION = "Classify the text. Answer with exactly one of these labels: "


def classification_instruction(dataset: Dataset) -> str:
    """The system message (Alpaca: instruction) of a labelled text in a chat format."""
    return _INSTRUCTION + ", ".join(dataset.labels) + "."


def _labels_from_instruction(loaded: _Loaded) -> list[str]:
    """The label set named by ``classification_instruction`` in the first record of a
    chat file that slmdesk wrote (so a round trip keeps the labels' order and the
    labels no example uses); [] when the file does not have it."""
    if loaded.format not in CHAT_FORMATS or not loaded.records:
        return []
    record = loaded.records[0][1]
    if loaded.format == "alpaca":
        said = record.get("instruction")
    else:
        turns = record.get("messages" if loaded.format == "openai" else "conversations")
        first = turns[0] if isinstance(turns, list) and turns else None
        said = (first.get("content" if loaded.format == "openai" else "value")
                if isinstance(first, dict) else None)
    if not isinstance(said, str) or not said.startswith(_INSTRUCTION) \
            or not said.endswith("."):
        return []
    names = said[len(_INSTRUCTION):-1].split(", ")
    return names if all(n and n == n.strip() for n in names) else []


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _openai(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in messages]}


def _sharegpt(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"conversations": [{"from": SHAREGPT_FROM[m["role"]], "value": m["content"]}
                              for m in messages]}


def _alpaca(messages: list[dict[str, str]]) -> dict[str, Any]:
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    turns = messages[1:] if system is not None else messages
    pairs = [(turns[i]["content"], turns[i + 1]["content"]) for i in range(0, len(turns), 2)]
    out: dict[str, Any] = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if system is not None:
        out["system"] = system
    if len(pairs) > 1:
        out["history"] = [[q, a] for q, a in pairs[:-1]]
    return out


_CHAT_WRITERS: dict[str, Callable[[list[dict[str, str]]], dict[str, Any]]] = {
    "openai": _openai, "sharegpt": _sharegpt, "alpaca": _alpaca,
}


def _labelled_chat(dataset: Dataset, example: Example) -> list[dict[str, str]]:
    assert example.text is not None and example.label is not None
    return [{"role": "system", "content": classification_instruction(dataset)},
            {"role": "user", "content": example.text},
            {"role": "assistant", "content": example.label}]


def export_examples(dataset: Dataset, examples: list[Example], fmt: str, *,
                    include_unlabelled: bool = False) -> str:
    """``examples`` of ``dataset`` as the text of a file in format ``fmt`` (FORMATS)."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"Unknown export format '{fmt}' (use {', '.join(FORMATS)}).")
    examples = sorted(examples, key=lambda e: e.id)
    if dataset.kind == "chat":
        if fmt == "csv":
            raise InvalidInputError(
                "CSV is for labelled texts; export chat examples as openai, sharegpt or alpaca.")
        write = _CHAT_WRITERS["openai" if fmt == "jsonl" else fmt]
        return "".join(_dumps(write(e.messages or [])) + "\n" for e in examples)
    if not include_unlabelled:
        examples = [e for e in examples if e.label is not None]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["text", "label"])
        for e in examples:
            writer.writerow([e.text, e.label or ""])
        return out.getvalue()
    if fmt == "jsonl":
        return "".join(_dumps({"text": e.text, "label": e.label}) + "\n" for e in examples)
    labelled = [e for e in examples if e.label is not None]
    if fmt == "alpaca":
        instruction = classification_instruction(dataset)
        return "".join(
            _dumps({"instruction": instruction, "input": e.text, "output": e.label}) + "\n"
            for e in labelled)
    write = _CHAT_WRITERS[fmt]
    return "".join(_dumps(write(_labelled_chat(dataset, e))) + "\n" for e in labelled)


def export(db: sqlite_utils.Database, dataset_name: str, fmt: str, *, split: str = "all",
           include_unlabelled: bool = False) -> str:
    """A data set (or one split of it) as the text of a file in format ``fmt``.

    Deterministic: the same data gives the same bytes. Chat sets export their messages;
    labelled sets export ``text,label`` rows (``jsonl``, ``csv``; unlabelled texts only
    with ``include_unlabelled``) or, in the chat formats, an instruction with the label
    set, the text and the label as the reply.
    """
    if split not in EXPORT_SPLITS:
        raise InvalidInputError(f"Unknown split '{split}' (use {', '.join(EXPORT_SPLITS)}).")
    repo = DatasetRepository(db)
    dataset = repo.get(dataset_name)
    examples = repo.examples(dataset) if split == "all" else repo.query(dataset, split=split)
    return export_examples(dataset, examples, fmt, include_unlabelled=include_unlabelled)


def data_card(db: sqlite_utils.Database, dataset_name: str) -> str:
    """The data set's Markdown data card (``slmdesk.datasets.card.data_card``), here
    too because it usually goes out with an export."""
    from slmdesk.datasets.card import data_card as card

    return card(db, dataset_name)
