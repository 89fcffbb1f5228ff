"""Tests of slmdesk/training/data.py and the bad-input checks of train_classifier (no model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slmdesk.errors import ModelNotLoadedError, NotFoundError
from slmdesk.store.datasets import DatasetRepository, NewExample
from slmdesk.store.db import open_database
from slmdesk.training import (
    MIN_PER_LABEL,
    TrainingDataError,
    TrainingMethodError,
    train_classifier,
)
from slmdesk.training.data import load_training_data
from slmdesk.training.trainer import few_shot_examples, sample_for_fit
from tests.training_data import make_dataset, texts


class _NoModel:
    info = None


@pytest.fixture
def db(tmp_path: Path) -> Any:
    return open_database(tmp_path / "t.db")


def _train(db: Any, dataset: str = "zorp-blick", **kwargs: Any) -> Any:
    return train_classifier(db, _NoModel(), dataset, "clf", **kwargs)  # type: ignore[arg-type]


def test_a_data_set_without_splits_gets_a_stratified_seeded_one(db: Any) -> None:
    make_dataset(db)
    data = load_training_data(db, DatasetRepository(db).get("zorp-blick"))
    assert data.split_made
    assert data.counts() == {"train": 38, "validation": 4, "test": 6}  # 19/2/3 per label
    for split in (data.train, data.validation, data.test):
        assert {label for _, label in split} == {"zorp", "blick"}
    again = load_training_data(db, DatasetRepository(db).get("zorp-blick"))
    assert not again.split_made and again.test == data.test  # kept, not drawn again


def test_existing_splits_are_used(db: Any) -> None:
    make_dataset(db, splits={"train": 6, "validation": 1, "test": 2})
    data = load_training_data(db, DatasetRepository(db).get("zorp-blick"))
    assert not data.split_made
    assert data.counts() == {"train": 12, "validation": 2, "test": 4}


def test_unknown_method_and_missing_name_fail_first(db: Any) -> None:
    with pytest.raises(TrainingMethodError, match="Unknown training method 'magic'"):
        _train(db, method="magic")
    with pytest.raises(Exception, match="needs a name"):
        train_classifier(db, _NoModel(), "zorp-blick", "  ")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        _train(db, dataset="nothing")


def test_chat_data_sets_are_refused(db: Any) -> None:
    repo = DatasetRepository(db)
    repo.create("talk", kind="chat")
    with pytest.raises(TrainingDataError, match="chat examples"):
        _train(db, dataset="talk")


def test_a_data_set_without_labelled_texts_is_refused(db: Any) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("raw", kind="labels", labels=["a", "b"])
    repo.add_examples(ds, [NewExample(text="no label yet")])
    with pytest.raises(TrainingDataError, match="no labelled texts"):
        _train(db, dataset="raw")


def test_one_label_is_refused(db: Any) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("one", kind="labels", labels=["a"])
    repo.add_examples(ds, [NewExample(text=f"text {i}", label="a") for i in range(20)])
    with pytest.raises(TrainingDataError, match="at least two"):
        _train(db, dataset="one")


def test_a_label_without_examples_is_refused(db: Any) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("gap", kind="labels", labels=["zorp", "blick", "empty"])
    repo.add_examples(ds, [NewExample(text=t, label=g) for t, g in texts(10)])
    with pytest.raises(TrainingDataError, match=r"'empty' .* has no examples"):
        _train(db, dataset="gap")


def test_too_few_examples_per_label_are_refused(db: Any) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("few", kind="labels", labels=["zorp", "blick"])
    items = [(t, g) for t, g in texts(10) if g == "zorp"] + [
        (t, g) for t, g in texts(10) if g == "blick"][: MIN_PER_LABEL - 1]
    repo.add_examples(ds, [NewExample(text=t, label=g) for t, g in items])
    with pytest.raises(TrainingDataError, match=f"'blick' has {MIN_PER_LABEL - 1} example"):
        _train(db, dataset="few")


def test_an_empty_split_is_refused(db: Any) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("nosplit", kind="labels", labels=["zorp", "blick"])
    repo.add_examples(ds, [NewExample(text=t, label=g, split="train") for t, g in texts(10)])
    with pytest.raises(TrainingDataError, match=r"validation split .* has no labelled texts"):
        _train(db, dataset="nosplit")


def test_good_data_without_a_model_says_so(db: Any) -> None:
    make_dataset(db)
    with pytest.raises(ModelNotLoadedError):
        _train(db)


def test_fit_sample_is_stratified_and_bounded() -> None:
    examples = [(f"a{i}", "a") for i in range(90)] + [(f"b{i}", "b") for i in range(10)]
    sample = sample_for_fit(examples, 20)
    assert len(sample) == 20
    assert sum(1 for _, g in sample if g == "b") == 2
    assert sample_for_fit(examples[:5], 20) == examples[:5]


def test_few_shot_examples_take_the_shortest_text_per_label() -> None:
    train = [("a long text here", "a"), ("short", "a"), ("bb", "b")]
    assert few_shot_examples(train, ("a", "b")) == (("short", "a"), ("bb", "b"))
