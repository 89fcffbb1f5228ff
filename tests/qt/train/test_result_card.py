"""The result card lists the methods ``auto`` skipped, each with its reason as tooltip."""

from __future__ import annotations

from typing import Any

from slmdesk.ui.train.result_card import ResultCard


def test_a_skipped_method_is_listed_with_its_reason(qtbot: Any) -> None:
    card = ResultCard()
    qtbot.addWidget(card)
    card.show_report({
        "name": "x", "kind": "classifier", "method": "head",
        "methods": {"prompt": {"accuracy": 0.6, "macro_f1": 0.55},
                    "head": {"accuracy": 0.7, "macro_f1": 0.68}},
        "skipped": {"lora": "LoRA fine-tuning needs the trainer add-on"},
        "test": {"accuracy": 0.7, "macro_f1": 0.68},
        "zero_shot_test": {"accuracy": 0.5, "macro_f1": 0.4}, "mcnemar": {},
    })
    table = card.methods
    rows = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert rows == ["prompt", "head ✓", "lora (skipped)"]
    assert table.item(2, 0).toolTip() == "LoRA fine-tuning needs the trainer add-on"
    assert [table.item(2, c).text() for c in (1, 2)] == ["—", "—"]
