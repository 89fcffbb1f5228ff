"""Data sets in the store: m004, adding, filters and search, bulk edits with undo, stats."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.store.datasets import (
    Dataset,
    DatasetRepository,
    Example,
    NewExample,
    check_messages,
)
from slmdesk.store.db import integrity_check, open_database
from slmdesk.store.migrations import MIGRATIONS

CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]




@pytest.fixture
def repo(db: sqlite_utils.Database) -> DatasetRepository:
    return DatasetRepository(db)


@pytest.fixture
def reviews(repo: DatasetRepository) -> Dataset:
    ds = repo.create("Reviews", kind="labels", labels=["positive", "negative", "neutral"])
    repo.add_examples(ds, [
        NewExample(text="I loved the film", label="positive", source="imported",
                   source_ref="a.csv"),
        NewExample(text="Terrible acting, awful plot", label="negative", source="imported"),
        NewExample(text="It was fine I guess", label=None, source="typed"),
        NewExample(text="Loved-it! (really)", label="positive", source="classification",
                   model_label="negative", model_confidence=0.7, model_name="tiny"),
        NewExample(text="Not for me", label="negative", source="typed",
                   notes="sarcasm? lovely"),
    ])
    return repo.get("reviews")


def _texts(examples: list[Example]) -> list[str | None]:
    return [e.text for e in examples]


def _dump(db: sqlite_utils.Database) -> list[str]:
    return list(db.conn.iterdump())


# -- schema -------------------------------------------------------------------------------


def test_m004_schema(db: sqlite_utils.Database) -> None:
    assert "m004_dataset_curation" in {m.name for m in MIGRATIONS.applied(db)}
    assert "model_name" in db["examples"].columns_dict
    assert [(c.name, c.type, c.notnull) for c in db["eval_runs"].columns] == [
        ("id", "TEXT", 0), ("dataset_id", "TEXT", 1), ("model_name", "TEXT", 1),
        ("model_id", "TEXT", 0), ("classifier_name", "TEXT", 0), ("spec_json", "TEXT", 1),
        ("split", "TEXT", 1), ("n", "INTEGER", 1), ("accuracy", "REAL", 1),
        ("macro_f1", "REAL", 1), ("report_json", "TEXT", 1), ("created_at", "TEXT", 1),
    ]
    assert {(fk.column, fk.other_table) for fk in db["eval_runs"].foreign_keys} == {
        ("dataset_id", "datasets"), ("model_id", "models")}
    assert {i.name: i.columns for i in db["examples"].indexes if i.origin == "c"} == {
        "examples_dataset": ["dataset_id", "id"],
        "examples_label": ["dataset_id", "label"],
        "examples_split": ["dataset_id", "split"],
        "examples_source": ["dataset_id", "source"],
    }
    assert {"examples_ai", "examples_ad", "examples_au"} <= {t.name for t in db.triggers}


def test_m004_on_a_frozen_m003_database_backfills_chat_text(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    old = sqlite_utils.Database(conn)
    old.execute("PRAGMA foreign_keys = ON")
    MIGRATIONS.apply(old, stop_before="m004_dataset_curation")
    now = "2026-01-01T00:00:00+00:00"
    old["datasets"].insert({"id": "D", "name": "Chats", "kind": "chat", "labels_json": "[]",
                            "created_at": now, "updated_at": now})
    old["examples"].insert({"id": "E", "dataset_id": "D", "text": None,
                            "messages_json": json.dumps(CHAT), "source": "conversation",
                            "created_at": now, "updated_at": now})
    conn.commit()
    old.close()

    db = open_database(path)
    repo = DatasetRepository(db)
    example = repo.get_example("E")
    assert example.text == "You are terse.\nCapital of France?\nParis."
    assert example.model_name is None
    assert [e.id for e in repo.query(repo.get("chats"), search="paris")] == ["E"]
    assert integrity_check(db) == "ok"
    db.close()


# -- adding ---------------------------------------------------------------------------------


def test_chat_examples_keep_messages_and_searchable_text(repo: DatasetRepository) -> None:
    ds = repo.create("Chats", kind="chat")
    ex = repo.add_chat_example(ds, CHAT, source="conversation", source_ref="C1", rating=1)
    assert ex.messages == CHAT
    assert ex.text == "You are terse.\nCapital of France?\nParis."
    assert (ex.source, ex.source_ref, ex.rating, ex.label) == ("conversation", "C1", 1, None)
    assert repo.query(ds, search="capit") == [ex]
    with pytest.raises(InvalidInputError):
        repo.add_labelled_text(ds, "text", "x", source="typed")
    with pytest.raises(InvalidInputError):
        repo.add_chat_example(repo.create("L", kind="labels"), CHAT, source="typed")
    with pytest.raises(InvalidInputError, match="Unknown source"):
        repo.add_chat_example(ds, CHAT, source="web")


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ([], "non-empty list"),
        ([{"role": "user", "content": "hi"}], "end with an assistant"),
        ([{"role": "assistant", "content": "hi"}], "take turns"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
          {"role": "assistant", "content": "c"}], "take turns"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"},
          {"role": "assistant", "content": "c"}], "only the first"),
        ([{"role": "tool", "content": "a"}], "use system, user or assistant"),
        ([{"role": "user", "content": 3}, {"role": "assistant", "content": "c"}],
         "no text content"),
        ([{"role": "user", "content": "  "}, {"role": "assistant", "content": "c"}],
         "is empty"),
        (["hi"], "not an object"),
    ],
)
def test_bad_chat_messages_are_refused(messages: list[object], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        check_messages(messages)


def test_check_messages_keeps_role_and_content_only() -> None:
    assert check_messages([{"role": "user", "content": "a", "weight": 0},
                           {"role": "assistant", "content": "b", "name": "x"}]) == [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]


def test_new_labels_join_the_label_set_and_unlabelled_texts_are_allowed(
    repo: DatasetRepository, reviews: Dataset
) -> None:
    ex = repo.add_labelled_text(reviews, "So so", None, source="typed")
    assert ex.label is None and ex.labelled_by is None
    ex = repo.add_labelled_text(reviews, "Meh", "mixed", source="typed")
    assert ex.labelled_by == "person"
    assert repo.get("reviews").labels == ["positive", "negative", "neutral", "mixed"]
    with pytest.raises(InvalidInputError, match="spaces"):
        repo.add_labelled_text(reviews, "x", " positive", source="typed")
    with pytest.raises(InvalidInputError, match="empty"):
        repo.add_labelled_text(reviews, "   ", "positive", source="typed")


def test_add_examples_is_all_or_nothing(
    db: sqlite_utils.Database, repo: DatasetRepository, reviews: Dataset
) -> None:
    before = _dump(db)
    with pytest.raises(InvalidInputError, match="split"):
        repo.add_examples(reviews, [NewExample(text="fine", label="brand-new"),
                                    NewExample(text="bad", split="dev")])
    assert _dump(db) == before


# -- filters and search -----------------------------------------------------------------------


def test_filters(repo: DatasetRepository, reviews: Dataset) -> None:
    assert _texts(repo.query(reviews, label="positive")) == [
        "I loved the film", "Loved-it! (really)"]
    assert _texts(repo.query(reviews, unlabelled=True)) == ["It was fine I guess"]
    assert _texts(repo.query(reviews, source="typed")) == [
        "It was fine I guess", "Not for me"]
    assert _texts(repo.query(reviews, disagreement=True)) == ["Loved-it! (really)"]
    assert _texts(repo.query(reviews, split="unassigned")) == _texts(repo.examples(reviews))
    assert repo.query(reviews, split="train") == []
    assert _texts(repo.query(reviews, limit=2, offset=1)) == [
        "Terrible acting, awful plot", "It was fine I guess"]
    assert _texts(repo.query(reviews, offset=4)) == ["Not for me"]
    assert repo.query_count(reviews, label="negative") == 2
    with pytest.raises(InvalidInputError):
        repo.query(reviews, label="positive", unlabelled=True)
    with pytest.raises(InvalidInputError):
        repo.query(reviews, split="dev")
    with pytest.raises(InvalidInputError):
        repo.query(reviews, source="web")


def test_disagreement_needs_both_labels(repo: DatasetRepository, reviews: Dataset) -> None:
    unlabelled = repo.query(reviews, unlabelled=True)[0]
    repo.set_model_suggestion(unlabelled.id, "neutral", 0.9, model_name="tiny")
    agreeing = repo.query(reviews, label="negative")[0]
    repo.set_model_suggestion(agreeing.id, "negative", 0.8, model_name="tiny")
    assert _texts(repo.query(reviews, disagreement=True)) == ["Loved-it! (really)"]


def test_search_uses_prefixes_and_neutralises_fts_syntax(
    repo: DatasetRepository, reviews: Dataset
) -> None:
    assert _texts(repo.query(reviews, search="lov")) == [
        "I loved the film", "Loved-it! (really)", "Not for me"]  # the last by its notes
    assert _texts(repo.query(reviews, search="awful terrible")) == [
        "Terrible acting, awful plot"]
    for hostile in ('"', "NEAR(", "a OR", "*", "text:loved", "-(", "^lov", "'; DROP"):
        repo.query(reviews, search=hostile)  # no FTS syntax error
    assert repo.query(reviews, search="!!!") == []
    assert len(repo.query(reviews, search="   ")) == 5
    assert _texts(repo.query(reviews, search="loved", label="positive", source="imported")) \
        == ["I loved the film"]


# -- bulk edits and undo -------------------------------------------------------------------------


def test_set_label_returns_the_old_examples_and_undo_restores_them(
    db: sqlite_utils.Database, repo: DatasetRepository, reviews: Dataset
) -> None:
    before_rows = list(db["examples"].rows)
    ids = [e.id for e in repo.query(reviews, label="negative")]
    old = repo.set_label(ids, "neutral")
    assert [e.label for e in old] == ["negative", "negative"]
    assert [e.label for e in repo.get_examples(ids)] == ["neutral", "neutral"]
    repo.restore_examples(old)
    assert repo.get_examples(ids) == old
    assert list(db["examples"].rows) == before_rows


def test_set_label_keeps_the_model_suggestion_and_can_clear(
    repo: DatasetRepository, reviews: Dataset
) -> None:
    ex = repo.query(reviews, disagreement=True)[0]
    repo.set_label([ex.id], "negative", labelled_by="model:tiny")
    now = repo.get_example(ex.id)
    assert (now.label, now.labelled_by, now.model_label, now.model_confidence) == (
        "negative", "model:tiny", "negative", 0.7)
    repo.set_label([ex.id], None)
    now = repo.get_example(ex.id)
    assert (now.label, now.labelled_by) == (None, None)
    repo.set_label([ex.id], "fresh")
    assert "fresh" in repo.get("reviews").labels
    with pytest.raises(NotFoundError):
        repo.set_label([ex.id, "nope"], "positive")
    assert repo.get_example(ex.id).label == "fresh"


def test_model_suggestion_never_overwrites_the_label(
    repo: DatasetRepository, reviews: Dataset
) -> None:
    ex = repo.query(reviews, label="positive")[0]
    repo.set_model_suggestion(ex.id, "negative", 0.61, model_name="SmolLM2")
    now = repo.get_example(ex.id)
    assert (now.label, now.model_label, now.model_confidence, now.model_name) == (
        "positive", "negative", 0.61, "SmolLM2")
    with pytest.raises(InvalidInputError, match="not one of the labels"):
        repo.set_model_suggestion(ex.id, "other", 0.5, model_name="m")
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        repo.set_model_suggestion(ex.id, "negative", 1.5, model_name="m")
    others = [e.id for e in repo.query(reviews, unlabelled=True)]
    with pytest.raises(InvalidInputError):  # all or nothing
        repo.set_model_suggestions([(others[0], "neutral", 0.5), (ex.id, "x", 0.5)],
                                   model_name="m")
    assert repo.get_example(others[0]).model_label is None


def test_delete_and_undo_bring_back_the_same_rows_and_search(
    db: sqlite_utils.Database, repo: DatasetRepository, reviews: Dataset
) -> None:
    ids = [e.id for e in repo.query(reviews, search="loved")]
    deleted = repo.delete_examples(ids)
    assert len(ids) == 2 and repo.count(reviews) == 3
    assert repo.query(reviews, search="loved") == []
    repo.restore_examples(deleted)
    assert repo.get_examples(ids) == deleted
    assert [e.id for e in repo.query(reviews, search="loved")] == ids
    assert integrity_check(db) == "ok"
    db.execute("INSERT INTO examples_fts(examples_fts) VALUES ('integrity-check')")


def test_restore_into_a_deleted_data_set_fails(
    repo: DatasetRepository, reviews: Dataset
) -> None:
    deleted = repo.delete_examples([repo.examples(reviews)[0].id])
    repo.delete_dataset(reviews)
    with pytest.raises(NotFoundError):
        repo.restore_examples(deleted)


def test_update_example(repo: DatasetRepository, reviews: Dataset) -> None:
    ex = repo.examples(reviews)[0]
    new = repo.update_example(ex.id, text="I adored the film", notes="edited", rating=4)
    assert (new.text, new.notes, new.rating, new.label) == (
        "I adored the film", "edited", 4, "positive")
    assert new.updated_at >= ex.updated_at and new.created_at == ex.created_at
    assert repo.query(reviews, search="adored") == [new]
    assert repo.update_example(ex.id, notes=None).notes is None
    with pytest.raises(InvalidInputError):
        repo.update_example(ex.id, text=" ")
    with pytest.raises(InvalidInputError):
        repo.update_example(ex.id, messages=CHAT)
    chats = repo.create("Chats", kind="chat")
    chat = repo.add_chat_example(chats, CHAT, source="typed")
    changed = [*CHAT[:2], {"role": "assistant", "content": "Paris, of course."}]
    new = repo.update_example(chat.id, messages=changed)
    assert new.messages == changed and new.text is not None and "of course" in new.text
    with pytest.raises(InvalidInputError):
        repo.update_example(chat.id, text="plain")
    with pytest.raises(InvalidInputError):
        repo.update_example(chat.id, messages=CHAT[:2])


# -- stats and data sets ------------------------------------------------------------------------


def test_stats(repo: DatasetRepository, reviews: Dataset) -> None:
    stats = repo.stats(reviews)
    assert (stats.total, stats.labelled, stats.unlabelled) == (5, 4, 1)
    assert stats.per_label == {"positive": 2, "negative": 2, "neutral": 0}
    assert stats.per_split == {"train": 0, "validation": 0, "test": 0, "unassigned": 5}
    assert stats.per_source == {"typed": 2, "imported": 2, "classification": 1}
    assert stats.per_split_label["unassigned"] == {"positive": 2, "negative": 2,
                                                   "neutral": 0}
    assert json.loads(json.dumps(stats.to_json()))["per_label"]["neutral"] == 0


def test_rename_update_delete_data_set(
    db: sqlite_utils.Database, repo: DatasetRepository, reviews: Dataset
) -> None:
    other = repo.create("Other", kind="chat")
    with pytest.raises(InvalidInputError, match="already exists"):
        repo.rename_dataset(reviews, "other")
    renamed = repo.rename_dataset(reviews, "  Film   reviews ")
    assert renamed.name == "Film reviews" and renamed.id == reviews.id
    assert repo.rename_dataset(renamed, "FILM REVIEWS").name == "FILM REVIEWS"
    updated = repo.update_dataset(renamed, licence="CC-BY-4.0", description="Films")
    assert (updated.licence, updated.description) == ("CC-BY-4.0", "Films")
    repo.delete_dataset(updated)
    assert repo.find("film reviews") is None
    assert db["examples"].count == 0
    assert [d.id for d in repo.all()] == [other.id]


def test_label_set_edits(repo: DatasetRepository, reviews: Dataset) -> None:
    with pytest.raises(InvalidInputError, match="still used"):
        repo.set_labels(reviews, ["positive", "neutral"])
    ds = repo.set_labels(reviews, ["negative", "positive"])
    assert ds.labels == ["negative", "positive"]
    ds = repo.rename_label(ds, "positive", "good")
    assert ds.labels == ["negative", "good"]
    assert [e.label for e in repo.examples(ds)].count("good") == 2
    assert repo.query(ds, disagreement=True)[0].model_label == "negative"
    with pytest.raises(InvalidInputError):
        repo.rename_label(ds, "good", "negative")
    with pytest.raises(InvalidInputError):
        repo.create("Dup", kind="labels", labels=["a", "a"])
    with pytest.raises(InvalidInputError):
        repo.create("ChatWithLabels", kind="chat", labels=["a"])
