"""Labelled data sets kept in the database: labelled texts and chat examples.

A data set is either ``labels`` (a text, a label from the data set's label set or none yet,
optional notes) or ``chat`` (a list of system/user/assistant messages). Every example
keeps where it came from, who labelled it, the model's suggestion next to the person's
label, its split and its times. Bulk edits return the examples as they were, so a caller
can undo them with ``restore_examples``; every write is one transaction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.ids import new_id, utc_now
from slmdesk.json_data import JsonFields
from slmdesk.store.rows import (
    from_row,
    fts_query,
    id_slices,
    insert_new,
    one_row,
    placeholders,
    record_named,
    required,
    rows_by_name,
)

KINDS = ("labels", "chat")
SOURCES = ("typed", "imported", "conversation", "classification")
SPLITS = ("train", "validation", "test")  # persisted values of examples.split
UNASSIGNED = "unassigned"  # the split filter and stats key for examples with no split
ROLES = ("system", "user", "assistant")


class _Unset:
    """The default of optional keyword arguments that may also be set to None."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Dataset(JsonFields):
    id: str
    name: str
    kind: str
    labels: list[str]
    description: str | None
    licence: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Example(JsonFields):
    """One example. For chat examples ``text`` is the messages' contents, one per line,
    kept in step with ``messages`` by the repository (full-text search and duplicate
    checks read it); ``label`` is the person's label, ``model_label`` the model's
    suggestion, which never overwrites it."""

    id: str
    dataset_id: str
    text: str | None
    label: str | None
    messages: list[dict[str, str]] | None
    notes: str | None
    source: str
    source_ref: str | None
    labelled_by: str | None  # "person" or "model:<name>"; None while unlabelled
    model_label: str | None
    model_confidence: float | None
    rating: int | None
    split: str | None
    created_at: str
    updated_at: str
    model_name: str | None = None  # the model that made model_label/model_confidence


@dataclass(frozen=True)
class NewExample:
    """An example to add with ``DatasetRepository.add_examples`` (ids and times are set
    there). Give ``text`` for a labelled text or ``messages`` for a chat example."""

    text: str | None = None
    label: str | None = None
    messages: list[dict[str, str]] | None = None
    notes: str | None = None
    source: str = "typed"
    source_ref: str | None = None
    labelled_by: str | None = None  # defaults to "person" when there is a label
    model_label: str | None = None
    model_confidence: float | None = None
    model_name: str | None = None
    rating: int | None = None
    split: str | None = None


@dataclass(frozen=True)
class DatasetStats(JsonFields):
    total: int
    labelled: int
    unlabelled: int
    per_label: dict[str, int]  # the label set's order (zeros included), then any others
    per_split: dict[str, int]  # train, validation, test, unassigned
    per_source: dict[str, int]  # sources that occur, in SOURCES order
    per_split_label: dict[str, dict[str, int]] = field(default_factory=dict)


# -- checks --------------------------------------------------------------------------------


def check_messages(messages: Any) -> list[dict[str, str]]:
    """The messages of a chat example, checked; raises ``InvalidInputError`` saying what
    is wrong. A chat example is an optional system message, then user and assistant
    messages taking turns, starting with the user and ending with the assistant (what
    chat fine-tuning trains on). Keys other than role and content are dropped."""
    if not isinstance(messages, list) or not messages:
        raise InvalidInputError("A chat example needs a non-empty list of messages.")
    out: list[dict[str, str]] = []
    for i, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise InvalidInputError(f"message {i} is not an object with a role and content.")
        role = message.get("role")
        content = message.get("content")
        if role not in ROLES:
            raise InvalidInputError(
                f"message {i} has role {json.dumps(role)}; use system, user or assistant."
            )
        if not isinstance(content, str):
            raise InvalidInputError(f"message {i} ({role}) has no text content.")
        if not content.strip():
            raise InvalidInputError(f"message {i} ({role}) is empty.")
        out.append({"role": role, "content": content})
    turns = out[1:] if out[0]["role"] == "system" else out
    for i, message in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            number = out.index(message) + 1
            if message["role"] == "system":
                raise InvalidInputError(f"message {number}: only the first message may be "
                                        "a system message.")
            raise InvalidInputError(
                f"message {number} is from the {message['role']}; user and assistant "
                "messages must take turns, starting with the user."
            )
    if not turns or turns[-1]["role"] != "assistant":
        raise InvalidInputError(
            "A chat example must end with an assistant reply (the text a model learns)."
        )
    return out


def messages_text(messages: Sequence[dict[str, str]]) -> str:
    """What a chat example keeps in ``text``: every message's content, one per line."""
    return "\n".join(m["content"] for m in messages)


def _check_label(label: str | None) -> str | None:
    if label is None:
        return None
    if not isinstance(label, str) or not label.strip():
        raise InvalidInputError("A label is empty.")
    if label != label.strip():
        raise InvalidInputError(f"The label '{label}' starts or ends with spaces.")
    return label


def _check_split(split: str | None) -> str | None:
    if split is not None and split not in SPLITS:
        raise InvalidInputError(
            f"Unknown split '{split}' (use {', '.join(SPLITS)})."
        )
    return split


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise InvalidInputError(f"Unknown source '{source}' (use {', '.join(SOURCES)}).")
    return source


def _check_rating(rating: Any) -> int | None:
    if rating is not None and (not isinstance(rating, int) or isinstance(rating, bool)):
        raise InvalidInputError("A rating must be a whole number.")
    return rating


def _check_confidence(confidence: Any) -> float | None:
    if confidence is None:
        return None
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not (
        math.isfinite(confidence) and 0.0 <= confidence <= 1.0
    ):
        raise InvalidInputError(f"A confidence must be between 0 and 1 (got {confidence}).")
    return float(confidence)


def _clean_name(name: str, what: str = "data set") -> str:
    name = " ".join(str(name).split())
    if not name:
        raise InvalidInputError(f"A {what} needs a name.")
    return name


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


# -- rows ----------------------------------------------------------------------------------


def _dataset(row: dict[str, Any]) -> Dataset:
    return from_row(Dataset, row, labels=json.loads(row["labels_json"] or "[]"))


def _example(row: dict[str, Any]) -> Example:
    return from_row(Example, row)


def _row(example: Example) -> dict[str, Any]:
    """The database row of an example, every column."""
    return {
        "id": example.id, "dataset_id": example.dataset_id, "text": example.text,
        "label": example.label,
        "messages_json": (json.dumps(example.messages, ensure_ascii=False)
                          if example.messages is not None else None),
        "notes": example.notes, "source": example.source, "source_ref": example.source_ref,
        "labelled_by": example.labelled_by, "model_label": example.model_label,
        "model_confidence": example.model_confidence, "rating": example.rating,
        "split": example.split, "created_at": example.created_at,
        "updated_at": example.updated_at, "model_name": example.model_name,
    }


def _filter_sql(
    dataset: Dataset, *, label: str | None, unlabelled: bool, split: str | None,
    source: str | None, disagreement: bool, search: str | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause and its parameters for ``DatasetRepository.query``'s filters."""
    clauses = ["dataset_id = ?"]
    params: list[Any] = [dataset.id]
    if label is not None and unlabelled:
        raise InvalidInputError("Filter by a label or by unlabelled, not both.")
    if label is not None:
        clauses.append("label = ?")
        params.append(label)
    if unlabelled:
        clauses.append("label IS NULL")
    if split is not None:
        if split == UNASSIGNED:
            clauses.append("split IS NULL")
        else:
            if split not in SPLITS:
                raise InvalidInputError(
                    f"Unknown split '{split}' (use {', '.join(SPLITS)} or {UNASSIGNED})."
                )
            clauses.append("split = ?")
            params.append(split)
    if source is not None:
        clauses.append("source = ?")
        params.append(_check_source(source))
    if disagreement:
        clauses.append(
            "label IS NOT NULL AND model_label IS NOT NULL AND label != model_label")
    if search is not None and search.strip():
        q = fts_query(search)
        if not q:
            # Only punctuation: nothing a word index can match.
            clauses.append("0")
        else:
            clauses.append(
                "rowid IN (SELECT rowid FROM examples_fts WHERE examples_fts MATCH ?)")
            params.append(q)
    return " AND ".join(clauses), params


class DatasetRepository:
    """Data sets and their examples."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    # data sets ---------------------------------------------------------------------------
    def create(self, name: str, *, kind: str, labels: list[str] | None = None,
               description: str | None = None, licence: str | None = None) -> Dataset:
        name = _clean_name(name)
        if kind not in KINDS:
            raise InvalidInputError(f"Unknown data set kind '{kind}' (use labels or chat).")
        if kind == "chat" and labels:
            raise InvalidInputError("A chat data set has no labels.")
        names = [_check_label(lab) for lab in labels or []]
        if len(set(names)) != len(names):
            raise InvalidInputError("A label is given twice.")
        if self.find(name) is not None:
            raise InvalidInputError(f"A data set named '{name}' already exists.")
        insert_new(self.db, "datasets", {
            "name": name, "kind": kind, "labels_json": json.dumps(names, ensure_ascii=False),
            "description": description, "licence": licence,
        })
        return self.get(name)

    def find(self, name: str) -> Dataset | None:
        return record_named(self.db, "datasets", name, _dataset)

    def get(self, name: str) -> Dataset:
        return required(self.find(name), f"No data set named '{name}'.")

    def get_by_id(self, dataset_id: str) -> Dataset:
        return _dataset(one_row(self.db, "datasets", "id = ?", [dataset_id],
                                f"No data set with id {dataset_id}."))

    def all(self) -> list[Dataset]:
        return [_dataset(r) for r in rows_by_name(self.db, "datasets")]

    def rename_dataset(self, dataset: Dataset, new_name: str) -> Dataset:
        new_name = _clean_name(new_name)
        other = self.find(new_name)
        if other is not None and other.id != dataset.id:
            raise InvalidInputError(f"A data set named '{new_name}' already exists.")
        with self.db.atomic():
            self.db.table("datasets").update(
                dataset.id, {"name": new_name, "updated_at": utc_now()})
        return self.get_by_id(dataset.id)

    def update_dataset(self, dataset: Dataset, *, description: str | None = UNSET,
                       licence: str | None = UNSET) -> Dataset:
        """Change the description or the licence note (None clears it)."""
        changes: dict[str, Any] = {}
        if description is not UNSET:
            changes["description"] = description or None
        if licence is not UNSET:
            changes["licence"] = licence or None
        if changes:
            with self.db.atomic():
                self.db.table("datasets").update(
                    dataset.id, {**changes, "updated_at": utc_now()})
        return self.get_by_id(dataset.id)

    def delete_dataset(self, dataset: Dataset) -> None:
        """Delete the data set with its examples and evaluation runs, for good."""
        with self.db.atomic():
            self.db.execute("DELETE FROM datasets WHERE id = ?", [dataset.id])

    # label set ---------------------------------------------------------------------------
    def add_labels(self, dataset: Dataset, labels: list[str]) -> Dataset:
        current = self.get_by_id(dataset.id)
        if current.kind != "labels" and labels:
            raise InvalidInputError(f"'{current.name}' holds chat examples; it has no labels.")
        new = [_check_label(lab) for lab in labels]
        merged = list(current.labels)
        for lab in new:
            if lab is not None and lab not in merged:
                merged.append(lab)
        if merged != current.labels:
            with self.db.atomic():
                self.db.table("datasets").update(dataset.id, {
                    "labels_json": json.dumps(merged, ensure_ascii=False),
                    "updated_at": utc_now()})
        return self.get_by_id(dataset.id)

    def set_labels(self, dataset: Dataset, labels: list[str]) -> Dataset:
        """Replace the label set (its order is the order shown); a label that examples
        still carry cannot be dropped."""
        current = self.get_by_id(dataset.id)
        if current.kind != "labels":
            raise InvalidInputError(f"'{current.name}' holds chat examples; it has no labels.")
        names = [_check_label(lab) for lab in labels]
        if len(set(names)) != len(names):
            raise InvalidInputError("A label is given twice.")
        used = self.stats(current).per_label
        dropped = [lab for lab, n in used.items() if n and lab not in names]
        if dropped:
            raise InvalidInputError(
                f"The label '{dropped[0]}' is still used by {used[dropped[0]]} example(s); "
                "relabel them first."
            )
        with self.db.atomic():
            self.db.table("datasets").update(dataset.id, {
                "labels_json": json.dumps(names, ensure_ascii=False), "updated_at": utc_now()})
        return self.get_by_id(dataset.id)

    def rename_label(self, dataset: Dataset, old: str, new: str) -> Dataset:
        """Rename a label in the label set and on every example (person's and model's)."""
        current = self.get_by_id(dataset.id)
        new_label = _check_label(new)
        if old not in current.labels:
            raise NotFoundError(f"'{current.name}' has no label '{old}'.")
        if new_label in current.labels and new_label != old:
            raise InvalidInputError(f"'{current.name}' already has a label '{new_label}'.")
        labels = [new_label if lab == old else lab for lab in current.labels]
        now = utc_now()
        with self.db.atomic():
            self.db.table("datasets").update(dataset.id, {
                "labels_json": json.dumps(labels, ensure_ascii=False), "updated_at": now})
            self.db.execute("UPDATE examples SET label = ?, updated_at = ? "
                            "WHERE dataset_id = ? AND label = ?", [new_label, now, dataset.id, old])
            self.db.execute("UPDATE examples SET model_label = ? "
                            "WHERE dataset_id = ? AND model_label = ?",
                            [new_label, dataset.id, old])
        return self.get_by_id(dataset.id)

    # adding ------------------------------------------------------------------------------
    def add_examples(self, dataset: Dataset, items: Sequence[NewExample]) -> list[str]:
        """Add many examples in one transaction (all or none); returns their ids, in
        order. Labels new to the data set join its label set."""
        current = self.get_by_id(dataset.id)
        now = utc_now()
        rows: list[dict[str, Any]] = []
        new_labels: list[str] = []
        for item in items:
            label = _check_label(item.label)
            if current.kind == "labels":
                if item.messages is not None:
                    raise InvalidInputError(
                        f"'{current.name}' holds labelled texts, not chat examples.")
                if item.text is None or not item.text.strip():
                    raise InvalidInputError("The text is empty.")
                text, messages_json = item.text, None
                if label is not None and label not in current.labels \
                        and label not in new_labels:
                    new_labels.append(label)
            else:
                if item.text is not None or label is not None:
                    raise InvalidInputError(
                        f"'{current.name}' holds chat examples, not labelled texts.")
                messages = check_messages(item.messages)
                text = messages_text(messages)
                messages_json = json.dumps(messages, ensure_ascii=False)
            rows.append({
                "id": new_id(), "dataset_id": current.id, "text": text, "label": label,
                "messages_json": messages_json, "notes": item.notes or None,
                "source": _check_source(item.source), "source_ref": item.source_ref,
                "labelled_by": (item.labelled_by or "person") if label is not None else None,
                "model_label": _check_label(item.model_label),
                "model_confidence": _check_confidence(item.model_confidence),
                "model_name": item.model_name, "rating": _check_rating(item.rating),
                "split": _check_split(item.split), "created_at": now, "updated_at": now,
            })
        with self.db.atomic():
            if new_labels:
                self.add_labels(current, new_labels)
            if rows:
                self.db.table("examples").insert_all(rows, batch_size=200)
                self._touch([current.id], now)
        return [r["id"] for r in rows]

    def add_labelled_text(
        self, dataset: Dataset, text: str, label: str | None, *, source: str,
        source_ref: str | None = None, labelled_by: str = "person",
        model_label: str | None = None, model_confidence: float | None = None,
        notes: str | None = None, model_name: str | None = None, split: str | None = None,
    ) -> Example:
        """Add a labelled (or, with ``label=None``, unlabelled) text; a label new to the
        data set joins its label set."""
        if dataset.kind != "labels":
            raise InvalidInputError(f"'{dataset.name}' holds chat examples, not labelled texts.")
        (eid,) = self.add_examples(dataset, [NewExample(
            text=text, label=label, notes=notes, source=source, source_ref=source_ref,
            labelled_by=labelled_by, model_label=model_label,
            model_confidence=model_confidence, model_name=model_name, split=split,
        )])
        return self.get_example(eid)

    def add_chat_example(
        self, dataset: Dataset, messages: list[dict[str, str]], *, source: str,
        source_ref: str | None = None, rating: int | None = None, notes: str | None = None,
    ) -> Example:
        """Add a chat example: [system], user, assistant, ... ending with the assistant."""
        if dataset.kind != "chat":
            raise InvalidInputError(f"'{dataset.name}' holds labelled texts, not chat examples.")
        (eid,) = self.add_examples(dataset, [NewExample(
            messages=messages, source=source, source_ref=source_ref, rating=rating,
            notes=notes,
        )])
        return self.get_example(eid)

    # reading -----------------------------------------------------------------------------
    def get_example(self, example_id: str) -> Example:
        return _example(one_row(self.db, "examples", "id = ?", [example_id],
                                f"No example with id {example_id}."))

    def get_examples(self, example_ids: Sequence[str]) -> list[Example]:
        """The examples with these ids, in the order given (repeats dropped)."""
        ids = _unique(example_ids)
        found: dict[str, Example] = {}
        for part in id_slices(ids):
            for row in self.db.query(
                f"SELECT * FROM examples WHERE id IN ({placeholders(part)})",
                list(part),
            ):
                found[row["id"]] = _example(row)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(f"No example with id {missing[0]}.")
        return [found[i] for i in ids]

    def examples(self, dataset: Dataset) -> list[Example]:
        return [_example(r) for r in self.db.table("examples").rows_where(
            "dataset_id = ?", [dataset.id], order_by="id")]

    def count(self, dataset: Dataset) -> int:
        return int(self.db.execute(
            "SELECT count(*) FROM examples WHERE dataset_id = ?", [dataset.id]).fetchone()[0])

    def query(
        self, dataset: Dataset, *, label: str | None = None, unlabelled: bool = False,
        split: str | None = None, source: str | None = None, disagreement: bool = False,
        search: str | None = None, limit: int | None = None, offset: int = 0,
    ) -> list[Example]:
        """Examples matching every filter given, oldest first.

        ``split`` is one of SPLITS or ``"unassigned"``; ``disagreement`` keeps examples
        whose label and model suggestion differ; ``search`` matches words (prefixes) of
        the text and notes, whatever punctuation or FTS syntax it contains.
        """
        where, params = _filter_sql(
            dataset, label=label, unlabelled=unlabelled, split=split, source=source,
            disagreement=disagreement, search=search)
        sql = f"SELECT * FROM examples WHERE {where} ORDER BY id"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else max(limit, 0), max(offset, 0)]
        return [_example(r) for r in self.db.query(sql, params)]

    def query_count(
        self, dataset: Dataset, *, label: str | None = None, unlabelled: bool = False,
        split: str | None = None, source: str | None = None, disagreement: bool = False,
        search: str | None = None,
    ) -> int:
        """How many examples ``query`` with the same filters finds (without limit)."""
        where, params = _filter_sql(
            dataset, label=label, unlabelled=unlabelled, split=split, source=source,
            disagreement=disagreement, search=search)
        return int(self.db.execute(
            f"SELECT count(*) FROM examples WHERE {where}", params).fetchone()[0])

    def stats(self, dataset: Dataset) -> DatasetStats:
        current = self.get_by_id(dataset.id)
        per_label = {lab: 0 for lab in current.labels}
        per_split = {s: 0 for s in (*SPLITS, UNASSIGNED)}
        per_split_label: dict[str, dict[str, int]] = {
            s: {lab: 0 for lab in current.labels} for s in (*SPLITS, UNASSIGNED)}
        unlabelled = 0
        total = 0
        for label, split, n in self.db.execute(
            "SELECT label, split, count(*) FROM examples WHERE dataset_id = ? "
            "GROUP BY label, split ORDER BY label, split", [current.id]
        ).fetchall():
            key = split if split in SPLITS else UNASSIGNED
            total += n
            per_split[key] += n
            if label is None:
                unlabelled += n
                continue
            per_label[label] = per_label.get(label, 0) + n
            per_split_label[key][label] = per_split_label[key].get(label, 0) + n
        sources = dict(self.db.execute(
            "SELECT source, count(*) FROM examples WHERE dataset_id = ? GROUP BY source",
            [current.id]).fetchall())
        per_source = {s: int(sources.pop(s)) for s in SOURCES if s in sources}
        per_source.update({str(k): int(v) for k, v in sorted(sources.items())})
        if current.kind == "chat":
            per_split_label = {}
        return DatasetStats(
            total=total, labelled=total - unlabelled, unlabelled=unlabelled,
            per_label=per_label, per_split=per_split, per_source=per_source,
            per_split_label=per_split_label,
        )

    # editing -----------------------------------------------------------------------------
    def _touch(self, dataset_ids: Iterable[str], now: str) -> None:
        for dataset_id in set(dataset_ids):
            self.db.execute("UPDATE datasets SET updated_at = ? WHERE id = ?", [now, dataset_id])

    def set_label(self, example_ids: Sequence[str], label: str | None, *,
                  labelled_by: str = "person") -> list[Example]:
        """Give every example this label (None: unlabelled), in one transaction.

        Returns the examples as they were before, for ``restore_examples`` (undo). A label
        new to a data set joins its label set. The model's suggestion stays as it is.
        """
        label = _check_label(label)
        before = self.get_examples(example_ids)
        datasets = {d: self.get_by_id(d) for d in {e.dataset_id for e in before}}
        for ds in datasets.values():
            if ds.kind != "labels":
                raise InvalidInputError(f"'{ds.name}' holds chat examples; they have no label.")
        now = utc_now()
        ids = [e.id for e in before]
        with self.db.atomic():
            if label is not None:
                for ds in datasets.values():
                    self.add_labels(ds, [label])
            for part in id_slices(ids):
                self.db.execute(
                    f"UPDATE examples SET label = ?, labelled_by = ?, updated_at = ? "
                    f"WHERE id IN ({placeholders(part)})",
                    [label, labelled_by if label is not None else None, now, *part],
                )
            self._touch(datasets, now)
        return before

    def set_split(self, example_ids: Sequence[str], split: str | None) -> list[Example]:
        """Put examples into a split by hand (None: no split); returns them as before."""
        split = _check_split(split)
        before = self.get_examples(example_ids)
        now = utc_now()
        ids = [e.id for e in before]
        with self.db.atomic():
            for part in id_slices(ids):
                self.db.execute(
                    f"UPDATE examples SET split = ?, updated_at = ? "
                    f"WHERE id IN ({placeholders(part)})", [split, now, *part])
            self._touch({e.dataset_id for e in before}, now)
        return before

    def set_model_suggestion(self, example_id: str, model_label: str, confidence: float, *,
                             model_name: str) -> None:
        """Keep a model's label and confidence next to the person's label (never over it)."""
        self.set_model_suggestions([(example_id, model_label, confidence)],
                                   model_name=model_name)

    def set_model_suggestions(self, suggestions: Sequence[tuple[str, str, float]], *,
                              model_name: str) -> None:
        """``set_model_suggestion`` for many (example id, label, confidence), all or none."""
        examples = self.get_examples([s[0] for s in suggestions])
        datasets = {d: self.get_by_id(d) for d in {e.dataset_id for e in examples}}
        by_id = {e.id: e for e in examples}
        rows: list[list[Any]] = []
        for example_id, model_label, confidence in suggestions:
            ds = datasets[by_id[example_id].dataset_id]
            if ds.kind != "labels":
                raise InvalidInputError(f"'{ds.name}' holds chat examples; they have no label.")
            name = _check_label(model_label)
            if ds.labels and name not in ds.labels:
                raise InvalidInputError(
                    f"The model's label '{model_label}' is not one of the labels of "
                    f"'{ds.name}' ({', '.join(ds.labels)})."
                )
            rows.append([name, _check_confidence(confidence), model_name, example_id])
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE examples SET model_label = ?, model_confidence = ?, model_name = ? "
                "WHERE id = ?", rows)

    def clear_model_suggestions(self, dataset: Dataset) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE examples SET model_label = NULL, model_confidence = NULL, "
                "model_name = NULL WHERE dataset_id = ?", [dataset.id])

    def update_example(
        self, example_id: str, *, text: str = UNSET, notes: str | None = UNSET,
        messages: list[dict[str, str]] = UNSET, rating: int | None = UNSET,
    ) -> Example:
        """Change what is given: the text of a labelled text, the messages of a chat
        example, the notes or the rating (None clears those two)."""
        example = self.get_example(example_id)
        ds = self.get_by_id(example.dataset_id)
        changes: dict[str, Any] = {}
        if text is not UNSET:
            if ds.kind != "labels":
                raise InvalidInputError("A chat example's text comes from its messages; "
                                        "change the messages.")
            if not isinstance(text, str) or not text.strip():
                raise InvalidInputError("The text is empty.")
            changes["text"] = text
        if messages is not UNSET:
            if ds.kind != "chat":
                raise InvalidInputError("A labelled text has no messages; change its text.")
            checked = check_messages(messages)
            changes["messages_json"] = json.dumps(checked, ensure_ascii=False)
            changes["text"] = messages_text(checked)
        if notes is not UNSET:
            changes["notes"] = notes or None
        if rating is not UNSET:
            changes["rating"] = _check_rating(rating)
        if changes:
            now = utc_now()
            with self.db.atomic():
                self.db.table("examples").update(example.id, {**changes, "updated_at": now})
                self._touch([ds.id], now)
        return self.get_example(example.id)

    def delete_examples(self, example_ids: Sequence[str]) -> list[Example]:
        """Delete examples in one transaction; returns them, for ``restore_examples``."""
        before = self.get_examples(example_ids)
        now = utc_now()
        with self.db.atomic():
            for part in id_slices([e.id for e in before]):
                self.db.execute(
                    f"DELETE FROM examples WHERE id IN ({placeholders(part)})",
                    list(part))
            self._touch({e.dataset_id for e in before}, now)
        return before

    def restore_examples(self, examples: Sequence[Example]) -> None:
        """Write these examples back exactly as they are (undo of a delete or an edit):
        an example that still exists is overwritten, a deleted one comes back with its id."""
        if not examples:
            return
        dataset_ids = {e.dataset_id for e in examples}
        with self.db.atomic():
            for dataset_id in dataset_ids:
                ds = self.get_by_id(dataset_id)  # NotFoundError: the data set is gone
                labels = [e.label for e in examples
                          if e.dataset_id == dataset_id and e.label is not None]
                if labels:
                    self.add_labels(ds, _unique(labels))
            table = self.db.table("examples")
            for example in examples:
                row = _row(example)
                # UPDATE or INSERT (not INSERT OR REPLACE, whose implicit delete would
                # skip the FTS delete trigger and leave the search index stale).
                exists = self.db.execute(
                    "SELECT 1 FROM examples WHERE id = ?", [example.id]).fetchone()
                if exists:
                    table.update(example.id, {k: v for k, v in row.items() if k != "id"})
                else:
                    table.insert(row)
            self._touch(dataset_ids, utc_now())

    # splits ------------------------------------------------------------------------------
    def split_members(self, dataset: Dataset) -> list[tuple[str, str | None, str | None]]:
        """(id, label, split) of every example: what a split assignment works from."""
        return [(str(eid), label, split) for eid, label, split in self.db.execute(
            "SELECT id, label, split FROM examples WHERE dataset_id = ?", [dataset.id]
        ).fetchall()]

    def set_splits(self, dataset: Dataset, splits: dict[str, str]) -> DatasetStats:
        """Give examples (id -> split) their split in one transaction; the new counts."""
        current = self.get_by_id(dataset.id)
        unknown = set(splits.values()) - set(SPLITS)
        if unknown:
            raise InvalidInputError(f"Unknown split {sorted(unknown)[0]!r}.")
        if splits:
            now = utc_now()
            with self.db.atomic():
                self.db.conn.executemany(
                    "UPDATE examples SET split = ?, updated_at = ? "
                    "WHERE id = ? AND dataset_id = ?",
                    [(split, now, eid, current.id) for eid, split in splits.items()])
                self._touch([current.id], now)
        return self.stats(current)
