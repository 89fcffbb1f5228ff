"""Quality checks on examples: duplicates, near-empty texts, duplicates labelled apart."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slmdesk.json_data import JsonFields
from slmdesk.store.datasets import Example


def normalise_text(text: str) -> str:
    """Text as compared for duplicates: Unicode-normalised (NFKC), case-folded, without
    punctuation or symbols, whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] not in "PSC"
    )
    return " ".join(kept.split())


def _key(example: Example) -> str:
    if example.messages is not None:
        # Roles count: the same words from another speaker are another example.
        return "\x1f".join(f"{m['role']}\x1e{normalise_text(m['content'])}"
                           for m in example.messages)
    return normalise_text(example.text or "")


def _content(example: Example) -> str:
    if example.messages is not None:
        return " ".join(normalise_text(m["content"]) for m in example.messages
                        if m["role"] != "system")
    return normalise_text(example.text or "")


def find_duplicates(examples: Sequence[Example]) -> list[list[str]]:
    """Groups of example ids whose normalised text (chat: roles and messages) is equal;
    ids in order inside a group, groups in the order of their first id. Examples with
    nothing left after normalising are near-empty, not duplicates."""
    groups: dict[str, list[str]] = {}
    for example in sorted(examples, key=lambda e: e.id):
        if not _content(example):
            continue
        groups.setdefault(_key(example), []).append(example.id)
    return [ids for ids in groups.values() if len(ids) > 1]


def find_near_empty(examples: Sequence[Example], min_chars: int = 3) -> list[str]:
    """Ids (in order) of examples with fewer than ``min_chars`` letters or digits
    (spaces, punctuation and symbols do not count; chat: the non-system messages)."""
    return [
        e.id for e in sorted(examples, key=lambda e: e.id)
        if len(_content(e).replace(" ", "")) < min_chars
    ]


def find_label_conflicts(examples: Sequence[Example]) -> list[list[str]]:
    """Duplicate groups whose examples carry different labels (one of them is wrong)."""
    by_id = {e.id: e for e in examples}
    return [
        ids for ids in find_duplicates(examples)
        if len({by_id[i].label for i in ids if by_id[i].label is not None}) > 1
    ]


@dataclass(frozen=True)
class QualityReport(JsonFields):
    duplicates: list[list[str]]
    near_empty: list[str]
    label_conflicts: list[list[str]]

    @property
    def redundant(self) -> int:
        """Examples that could go without losing a text: all but one of each group."""
        return sum(len(g) - 1 for g in self.duplicates)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "redundant": self.redundant}


def check_quality(examples: Sequence[Example], *, min_chars: int = 3) -> QualityReport:
    return QualityReport(
        duplicates=find_duplicates(examples),
        near_empty=find_near_empty(examples, min_chars),
        label_conflicts=find_label_conflicts(examples),
    )
