"""Train/validation/test splits: reproducible under a seed, stratified by label."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from slmdesk.datasets.splits import assign_splits, split_counts, stratified_assignment
from slmdesk.errors import InvalidInputError
from slmdesk.store.datasets import Dataset, DatasetRepository, NewExample
from slmdesk.store.db import open_database

# 50 positive, 30 negative, 20 neutral, 7 unlabelled
SIZES = {"positive": 50, "negative": 30, "neutral": 20, None: 7}


@pytest.fixture
def repo(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = open_database(tmp_path / "t.db")
    yield DatasetRepository(db)
    db.close()


def _fill(repo: DatasetRepository, name: str) -> Dataset:
    ds = repo.create(name, kind="labels")
    items = [NewExample(text=f"{label} text {i}", label=label)
             for label, n in SIZES.items() for i in range(n)]
    repo.add_examples(ds, items)
    return repo.get(name)


def _by_text(repo: DatasetRepository, ds: Dataset) -> dict[str, str | None]:
    return {str(e.text): e.split for e in repo.examples(ds)}


def test_split_counts_round_by_largest_remainder() -> None:
    assert split_counts(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert split_counts(7, (0.8, 0.1, 0.1)) == [5, 1, 1]  # 5.6, 0.7, 0.7
    assert split_counts(5, (0.8, 0.1, 0.1)) == [4, 0, 1]  # 4, 0.5, 0.5: a tie goes to test
    assert split_counts(1, (0.8, 0.1, 0.1)) == [1, 0, 0]
    assert split_counts(0, (0.8, 0.1, 0.1)) == [0, 0, 0]
    assert split_counts(3, (0.5, 0.5, 0.0)) == [1, 2, 0]
    assert sum(split_counts(1234, (0.7, 0.15, 0.15))) == 1234


def test_splits_are_stratified_by_label(repo: DatasetRepository) -> None:
    ds = _fill(repo, "A")
    stats = assign_splits(repo, ds, seed=7)
    assert stats.per_split == {"train": 85, "validation": 11, "test": 11, "unassigned": 0}
    assert stats.per_split_label["train"] == {"positive": 40, "negative": 24, "neutral": 16}
    assert stats.per_split_label["validation"] == {"positive": 5, "negative": 3,
                                                   "neutral": 2}
    assert stats.per_split_label["test"] == {"positive": 5, "negative": 3, "neutral": 2}
    unlabelled = Counter(e.split for e in repo.query(ds, unlabelled=True))
    assert unlabelled == Counter({"train": 5, "validation": 1, "test": 1})


def test_splits_are_stable_under_a_fixed_seed(repo: DatasetRepository) -> None:
    a, b = _fill(repo, "A"), _fill(repo, "B")
    assign_splits(repo, a, seed=42)
    assign_splits(repo, b, seed=42)
    first = _by_text(repo, a)
    assert first == _by_text(repo, b)  # same data, same seed: same splits
    assign_splits(repo, a, seed=42, overwrite=True)
    assert _by_text(repo, a) == first  # and again after reassigning
    assign_splits(repo, b, seed=43, overwrite=True)
    assert _by_text(repo, b) != first  # another seed: another shuffle
    assert repo.stats(b).per_split == repo.stats(a).per_split  # same shares


def test_pure_assignment_is_independent_of_input_order() -> None:
    members = [(f"id{i:03d}", "x" if i % 3 else "y", None) for i in range(60)]
    once = stratified_assignment(members, seed=5)
    assert stratified_assignment(list(reversed(members)), seed=5) == once
    assert set(once) == {m[0] for m in members}


def test_existing_splits_are_kept_and_new_examples_fill_the_shares(
    repo: DatasetRepository,
) -> None:
    ds = _fill(repo, "A")
    assign_splits(repo, ds, seed=1)
    before = {e.id: e.split for e in repo.examples(ds)}
    repo.add_examples(ds, [NewExample(text=f"late {i}", label="positive") for i in range(10)])
    stats = assign_splits(repo, ds, seed=1)
    after = {e.id: e.split for e in repo.examples(ds)}
    assert {k: after[k] for k in before} == before
    assert stats.per_split_label["train"]["positive"] == 48  # 60 * 0.8
    assert stats.per_split_label["test"]["positive"] == 6
    assert stats.per_split["unassigned"] == 0


def test_a_hand_made_split_survives_without_overwrite(repo: DatasetRepository) -> None:
    ds = _fill(repo, "A")
    chosen = repo.query(ds, label="neutral")[0]
    repo.set_split([chosen.id], "test")
    assign_splits(repo, ds, seed=3)
    assert repo.get_example(chosen.id).split == "test"
    assert repo.stats(ds).per_split_label["test"]["neutral"] == 2


@pytest.mark.parametrize(
    "fractions", [(0.8, 0.1), (0.5, 0.5, 0.5), (1.2, -0.1, -0.1), (float("nan"), 0.5, 0.5)]
)
def test_bad_fractions_are_refused(repo: DatasetRepository, fractions: tuple[float, ...]
                                   ) -> None:
    ds = _fill(repo, "A")
    with pytest.raises(InvalidInputError, match="fractions"):
        assign_splits(repo, ds, fractions=fractions)
    assert repo.stats(ds).per_split["unassigned"] == 107



def test_the_store_refuses_a_split_name_it_does_not_know(repo: DatasetRepository) -> None:
    ds = _fill(repo, "d")
    eid = repo.split_members(ds)[0][0]
    with pytest.raises(InvalidInputError, match="Unknown split 'holdout'"):
        repo.set_splits(ds, {eid: "holdout"})
    assert all(split is None for _eid, _label, split in repo.split_members(ds))
