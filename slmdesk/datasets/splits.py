"""Reproducible, stratified train/validation/test splits: the assignment is computed here
(pure functions), the repository stores it."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from slmdesk.errors import InvalidInputError
from slmdesk.store.datasets import SPLITS, Dataset, DatasetRepository, DatasetStats

__all__ = ["DEFAULT_FRACTIONS", "SPLITS", "assign_splits", "stratified_assignment"]

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def assign_splits(
    repo: DatasetRepository, dataset: Dataset, *, seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS, overwrite: bool = False,
) -> DatasetStats:
    """Put a data set's examples into train/validation/test, stratified by label,
    reproducibly (``stratified_assignment``). Without ``overwrite``, examples that have a
    split keep it; one transaction. Returns the new counts."""
    members = repo.split_members(dataset)
    chosen = stratified_assignment(members, seed=seed, fractions=fractions,
                                   overwrite=overwrite)
    changed = {eid: split for eid, _label, old in members
               if (split := chosen.get(eid, old)) is not None and split != old}
    return repo.set_splits(dataset, changed)


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Three shares (train, validation, test), each from 0 to 1, adding up to 1."""
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("The split fractions must be numbers.") from exc
    if len(values) != len(SPLITS) or any(
        not math.isfinite(f) or f < 0 for f in values
    ) or abs(sum(values) - 1.0) > 1e-6:
        raise InvalidInputError(
            "The split fractions must be three numbers (train, validation, test) from 0 to 1 "
            "that add up to 1."
        )
    return values[0], values[1], values[2]


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """``n`` split into whole counts proportional to ``fractions`` (largest remainder;
    ties go to the later splits, so a small label still reaches the test split)."""
    exact = [n * f for f in fractions]
    counts = [math.floor(x + 1e-9) for x in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - counts[i]), -i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def stratified_assignment(
    members: Sequence[tuple[str, str | None, str | None]], *, seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS, overwrite: bool = False,
) -> dict[str, str]:
    """The split of every member (id, label, current split) that needs one.

    Each label (and the unlabelled members, together) is split on its own, so every split
    gets its share of every label. Within a label, members are taken in id order and
    shuffled by a generator seeded with ``seed`` and the label: the same members and seed
    always give the same answer, and adding members of one label leaves the others
    alone. Without ``overwrite`` a member keeps its split, and the rest fill each split
    up to its share of the label; with it, every member is assigned afresh.
    """
    shares = check_fractions(fractions)
    strata: dict[str | None, list[tuple[str, str | None]]] = {}
    for eid, label, split in sorted(members, key=lambda m: m[0]):
        strata.setdefault(label, []).append((eid, None if overwrite else split))
    out: dict[str, str] = {}
    for label in sorted(strata, key=lambda k: (k is not None, k or "")):
        group = strata[label]
        targets = split_counts(len(group), shares)
        have = [sum(1 for _e, s in group if s == name) for name in SPLITS]
        need = [max(0, t - h) for t, h in zip(targets, have, strict=True)]
        todo = [eid for eid, s in group if s not in SPLITS]
        rng = random.Random(f"slmdesk-split/{seed}/{'' if label is None else label}")
        rng.shuffle(todo)
        for eid in todo:
            # The split furthest below its share (ties: test, validation, train).
            best = max(range(len(SPLITS)),
                       key=lambda i: (need[i] / targets[i] if targets[i] else -1.0, i))
            need[best] -= 1
            out[eid] = SPLITS[best]
    return out
