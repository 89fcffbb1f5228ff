"""The result card lists the methods ``auto`` skipped, each with its reason as tooltip, and the
run's notes under the significance line."""

from __future__ import annotations

from typing import Any

from slmdesk.ui.train.result_card import ResultCard


def _card_with(qtbot: Any, methods: dict[str, Any], **report: Any) -> ResultCard:
    """A card showing a classifier trained with ``head`` and these validation ``methods``."""
    card = ResultCard()
    qtbot.addWidget(card)
    card.show_report({"name": "x", "kind": "classifier", "method": "head", "methods": methods,
                      **report})
    return card


def test_a_skipped_method_is_listed_with_its_reason(qtbot: Any) -> None:
    card = _card_with(
        qtbot, {"prompt": {"accuracy": 0.6, "macro_f1": 0.55},
                "head": {"accuracy": 0.7, "macro_f1": 0.68}},
        skipped={"lora": "LoRA fine-tuning needs the trainer add-on"},
        test={"accuracy": 0.7, "macro_f1": 0.68},
        zero_shot_test={"accuracy": 0.5, "macro_f1": 0.4}, mcnemar={})
    table = card.methods
    rows = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert rows == ["prompt", "head ✓", "lora (skipped)"]
    assert table.item(2, 0).toolTip() == "LoRA fine-tuning needs the trainer add-on"
    assert [table.item(2, c).text() for c in (1, 2)] == ["—", "—"]


def test_the_notes_of_a_run_say_why_a_validation_leader_was_passed_over(qtbot: Any) -> None:
    note = ("Kept the head on the hidden state (last token): prompt: default instructions, "
            "batch calibration led on validation (macro-F1 0.746 vs 0.733) by no more than "
            "chance on 16 texts (McNemar p = 1, the best of 9 other candidates).")
    card = _card_with(
        qtbot, {"prompt": {"accuracy": 0.75, "macro_f1": 0.746},
                "head": {"accuracy": 0.73, "macro_f1": 0.733}},
        test={"accuracy": 0.875, "macro_f1": 0.875},
        zero_shot_test={"accuracy": 0.56, "macro_f1": 0.56},
        mcnemar={"only_first_right": 12, "only_second_right": 2, "p_value": 0.0129},
        notes=[note])
    lines = card.significance.text().splitlines()
    assert "p = 0.0129" in lines[0] and lines[-1] == note
