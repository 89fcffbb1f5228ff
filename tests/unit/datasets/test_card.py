"""The data card of a data set."""

from __future__ import annotations

import sqlite_utils

from slmdesk.classify.evaluate import evaluate
from slmdesk.datasets.card import LICENCE_UNKNOWN, data_card
from slmdesk.datasets.evaluation import record_eval
from slmdesk.datasets.splits import assign_splits
from slmdesk.store.datasets import DatasetRepository, NewExample


def test_data_card(db: sqlite_utils.Database) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("Reviews | 2026", kind="labels", labels=["pos", "neg", "meh"],
                     description="Film reviews.")
    repo.add_examples(ds, [
        NewExample(text=f"good {i}", label="pos", source="imported", source_ref="a.csv")
        for i in range(6)
    ] + [
        NewExample(text=f"bad {i}", label="neg", source="typed") for i in range(3)
    ] + [NewExample(text="good 0", label="neg", source="classification",
                    model_label="pos", model_confidence=0.9, model_name="m")])
    assign_splits(repo, ds, seed=0)
    card = data_card(db, "reviews | 2026")
    assert card == data_card(db, "Reviews | 2026")  # deterministic
    assert card.startswith("# Reviews \\| 2026\n\nFilm reviews.\n")
    assert "- Examples: 10 (10 labelled, 0 unlabelled)" in card
    assert "| pos | 6 | 60.0 % |" in card and "| meh | 0 | 0.0 % |" in card
    assert "| split | examples | pos | neg | meh |" in card
    assert "| imported from files | 6 |" in card and "`a.csv`" in card
    assert "Duplicates labelled differently: 1 groups" in card
    assert "Model suggestions: 1 (1 disagree with the label)" in card
    assert LICENCE_UNKNOWN in card and "## Evaluations" not in card
    report = evaluate(["pos", "neg"], ["pos", "pos"], ["pos", "neg", "meh"])
    record_eval(db, repo.get("Reviews | 2026"), model_name="Tiny", classifier_spec={},
                report=report, split="test")
    repo.update_dataset(ds, licence="CC-BY-4.0: cite the authors.")
    card = data_card(db, "Reviews | 2026")
    assert "| Tiny | – | test | 2 | 0.500 |" in card
    assert card.endswith("## Licence\n\nCC-BY-4.0: cite the authors.\n")
    chats = repo.create("Chats", kind="chat")
    repo.add_chat_example(chats, [{"role": "user", "content": "Hi"},
                                  {"role": "assistant", "content": "Hello"}], source="typed")
    chat_card = data_card(db, "Chats")
    assert "- Kind: chat examples" in chat_card and "## Labels" not in chat_card
    assert "| unassigned | 1 |" in chat_card
