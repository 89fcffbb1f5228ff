"""Duplicate and near-empty detection."""

from __future__ import annotations

import sqlite_utils

from slmdesk.datasets.quality import (
    check_quality,
    find_duplicates,
    find_label_conflicts,
    find_near_empty,
    normalise_text,
)
from slmdesk.store.datasets import DatasetRepository, NewExample


def test_normalise_text() -> None:
    assert normalise_text("  Hello,   WORLD!! ") == "hello world"
    assert normalise_text("Ｆｕｌｌ\u00a0width\t—\ncafé") == "full width café"
    assert normalise_text("¡¿…!!") == ""


def test_duplicates_near_empty_and_conflicts(db: sqlite_utils.Database) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("Q", kind="labels")
    ids = repo.add_examples(ds, [
        NewExample(text="Great film!", label="pos"),          # 0
        NewExample(text="great   FILM", label="pos"),         # 1 duplicate of 0
        NewExample(text="Great film?!", label="neg"),         # 2 duplicate, other label
        NewExample(text="Awful", label="neg"),                # 3
        NewExample(text="ok", label="pos"),                   # 4 near-empty (2 chars)
        NewExample(text="!!!", label="neg"),                  # 5 near-empty, not a duplicate
        NewExample(text="???", label=None),                   # 6 near-empty, not a duplicate
        NewExample(text="Awful.", label=None),                # 7 duplicate of 3, unlabelled
    ])
    examples = repo.examples(ds)
    assert find_duplicates(examples) == [[ids[0], ids[1], ids[2]], [ids[3], ids[7]]]
    assert find_duplicates(list(reversed(examples))) == find_duplicates(examples)
    assert find_near_empty(examples) == [ids[4], ids[5], ids[6]]
    assert find_near_empty(examples, min_chars=1) == [ids[5], ids[6]]
    assert find_label_conflicts(examples) == [[ids[0], ids[1], ids[2]]]
    report = check_quality(examples)
    assert report.redundant == 3
    assert report.to_json()["redundant"] == 3


def test_chat_duplicates_count_roles(db: sqlite_utils.Database) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("C", kind="chat")
    hi = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    ids = repo.add_examples(ds, [
        NewExample(messages=hi),
        NewExample(messages=[{"role": "user", "content": "hi!"},
                             {"role": "assistant", "content": "hello."}]),
        NewExample(messages=[{"role": "user", "content": "Hello"},
                             {"role": "assistant", "content": "Hi"}]),
        NewExample(messages=[{"role": "system", "content": "A long system prompt"},
                             {"role": "user", "content": "?"},
                             {"role": "assistant", "content": "!"}]),
    ])
    examples = repo.examples(ds)
    assert find_duplicates(examples) == [[ids[0], ids[1]]]
    assert find_near_empty(examples) == [ids[3]]
