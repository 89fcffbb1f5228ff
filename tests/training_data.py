"""A labelled set that zero-shot cannot solve: arbitrary label names ("zorp", "blick") for a
clear property of the text (about food, or about the weather)."""

from __future__ import annotations

import random

from slmdesk.store.datasets import DatasetRepository, NewExample

FOODS = ("bread", "soup", "pasta", "cake", "rice", "salad", "pizza", "cheese", "apples",
         "noodles", "pancakes", "curry", "cookies", "fish", "beans", "eggs")
FOOD_TEMPLATES = ("We ate {x} for lunch.", "She cooked {x} in the kitchen.",
                  "He bought fresh {x} at the market.", "The {x} tasted delicious.",
                  "My mother baked {x} for the family.")
CITIES = ("Paris", "Oslo", "Lima", "Cairo", "Tokyo", "Dublin", "Quito", "Perth",
          "Boston", "Madrid", "Nairobi", "Vienna", "Hanoi", "Denver", "Porto", "Riga")
WEATHER_TEMPLATES = ("It rained all day in {x}.", "Snow covered {x} this morning.",
                     "A strong wind blew through {x} tonight.", "The sun was hot over {x} today.",
                     "Thick fog rolled into {x} at dawn.")
LABELS = ("zorp", "blick")  # zorp: food, blick: weather


def texts(n_per_label: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n_per_label`` distinct texts per label, shuffled with ``seed``."""
    rng = random.Random(seed)
    food = [t.format(x=x) for t in FOOD_TEMPLATES for x in FOODS]
    weather = [t.format(x=x) for t in WEATHER_TEMPLATES for x in CITIES]
    rng.shuffle(food)
    rng.shuffle(weather)
    out = [(t, "zorp") for t in food[:n_per_label]] + [
        (t, "blick") for t in weather[:n_per_label]]
    rng.shuffle(out)
    return out


def make_dataset(db: object, name: str = "zorp-blick",
                 splits: dict[str, int] | None = None) -> None:
    """The data set with explicit splits (per label: train, validation, test counts), or
    none when ``splits`` is None (24 per label then, for training to split)."""
    repo = DatasetRepository(db)  # type: ignore[arg-type]
    ds = repo.create(name, kind="labels", labels=list(LABELS))
    if splits is None:
        repo.add_examples(ds, [NewExample(text=t, label=g) for t, g in texts(24)])
        return
    total = sum(splits.values())
    items: list[NewExample] = []
    seen: dict[str, int] = {}
    for text, label in texts(total):
        i = seen.get(label, 0)
        seen[label] = i + 1
        split = ("train" if i < splits["train"] else
                 "validation" if i < splits["train"] + splits["validation"] else "test")
        items.append(NewExample(text=text, label=label, split=split))
    repo.add_examples(ds, items)
