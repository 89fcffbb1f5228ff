"""The labelled texts a training run learns from, checked and split before anything starts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sqlite_utils

from slmdesk.datasets.splits import assign_splits
from slmdesk.errors import InvalidInputError
from slmdesk.store.datasets import SPLITS, Dataset, DatasetRepository

# Below this many labelled examples a label cannot give train, validation and test at
# least one each with the default 80/10/10 split (8 gives 6/1/1).
MIN_PER_LABEL = 8
SPLIT_SEED = 0

Example = tuple[str, str]  # (text, label)


class TrainingDataError(InvalidInputError):
    """A data set cannot be trained on: not labelled texts, too few labels or examples."""


@dataclass(frozen=True)
class TrainingData:
    """A data set's labelled texts by split, with its labels in the data set's order."""

    dataset: str
    labels: tuple[str, ...]
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    split_made: bool  # whether training assigned the splits (the data set had none)

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation),
                "test": len(self.test)}


def check_dataset(db: sqlite_utils.Database, dataset: Dataset) -> dict[str, int]:
    """Refuse a data set that cannot be trained on; returns the labelled count per label."""
    if dataset.kind != "labels":
        raise TrainingDataError(
            f"'{dataset.name}' holds chat examples; a classifier trains on labelled texts."
        )
    repo = DatasetRepository(db)
    per_label = Counter(e.label for e in repo.examples(dataset)
                        if e.label is not None and (e.text or "").strip())
    if not per_label:
        raise TrainingDataError(f"'{dataset.name}' has no labelled texts; label some first.")
    labels = list(dataset.labels)
    if len(labels) < 2:
        raise TrainingDataError(
            f"'{dataset.name}' has {len(labels)} label(s); a classifier needs at least two."
        )
    empty = [label for label in labels if per_label.get(label, 0) == 0]
    if empty:
        raise TrainingDataError(
            f"The label '{empty[0]}' of '{dataset.name}' has no examples; label some texts "
            "with it or remove it from the data set's labels."
        )
    few = [label for label in labels if per_label[label] < MIN_PER_LABEL]
    if few:
        raise TrainingDataError(
            f"The label '{few[0]}' has {per_label[few[0]]} example(s); training needs at "
            f"least {MIN_PER_LABEL} per label (for train, validation and test)."
        )
    return {label: per_label[label] for label in labels}


def load_training_data(db: sqlite_utils.Database, dataset: Dataset) -> TrainingData:
    """The data set's labelled texts by split, after ``check_dataset``.

    Examples without a split get one (``assign_splits``: stratified by label, seeded, the
    examples that have a split keep it). A split that ends up without any example, or a
    label missing from the train split, is refused with what to do.
    """
    check_dataset(db, dataset)
    repo = DatasetRepository(db)
    examples = [e for e in repo.examples(dataset) if e.label is not None and (e.text or "")
                .strip()]
    split_made = any(e.split not in SPLITS for e in examples)
    if split_made:
        assign_splits(repo, dataset, seed=SPLIT_SEED)
        examples = [e for e in repo.examples(dataset)
                    if e.label is not None and (e.text or "").strip()]
    by_split: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for e in examples:
        if e.split in by_split and e.label is not None:
            by_split[e.split].append(((e.text or "").strip(), e.label))
    for split in SPLITS:
        if not by_split[split]:
            raise TrainingDataError(
                f"The {split} split of '{dataset.name}' has no labelled texts; move some "
                f"there (`slmdesk data split {dataset.name} --overwrite`)."
            )
    in_train = {label for _, label in by_split["train"]}
    missing = [label for label in dataset.labels if label not in in_train]
    if missing:
        raise TrainingDataError(
            f"The label '{missing[0]}' has no examples in the train split of "
            f"'{dataset.name}'."
        )
    return TrainingData(
        dataset=dataset.name, labels=tuple(dataset.labels), train=by_split["train"],
        validation=by_split["validation"], test=by_split["test"], split_made=split_made,
    )
