"""Sampling presets: the built-in ones, and the user's saved, replaced and deleted."""

from __future__ import annotations

import pytest
import sqlite_utils

from slmdesk.engine.params import SamplingParams
from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.store import PresetRepository


def test_builtin_presets(db: sqlite_utils.Database) -> None:
    presets = PresetRepository(db)
    assert [(p.name, p.builtin) for p in presets.list()] == [
        ("Balanced", True), ("Creative", True), ("Precise", True)
    ]
    assert presets.get("Balanced").sampling == SamplingParams()
    precise = presets.get("Precise").sampling
    assert (precise.temperature, precise.top_p, precise.top_k, precise.min_p,
            precise.repeat_penalty) == (0.2, 0.9, 40, 0.05, 1.1)
    creative = presets.get("Creative").sampling
    assert (creative.temperature, creative.top_p, creative.top_k, creative.min_p,
            creative.repeat_penalty) == (1.0, 0.98, 100, 0.02, 1.05)
    with pytest.raises(InvalidInputError, match="built-in"):
        presets.save("Precise", SamplingParams(temperature=2.0))
    with pytest.raises(InvalidInputError, match="built-in"):
        presets.delete("Creative")
    assert presets.get("Precise").sampling == precise


def test_user_presets_are_saved_replaced_and_deleted(db: sqlite_utils.Database) -> None:
    presets = PresetRepository(db)
    code = presets.save("Code", SamplingParams(temperature=0.1, stop=("```",)),
                        system_prompt="Write Python.")
    assert (code.name, code.builtin, code.system_prompt) == ("Code", False, "Write Python.")
    assert code.sampling.stop == ("```",)
    again = presets.save("Code", SamplingParams(temperature=0.3))
    assert (again.id, again.created_at) == (code.id, code.created_at)
    assert again.sampling.temperature == 0.3
    assert again.system_prompt is None
    presets.save("Alpha", SamplingParams())
    assert [p.name for p in presets.list()] == [
        "Balanced", "Creative", "Precise", "Alpha", "Code"
    ]
    assert presets.get("Code").to_json()["sampling"]["temperature"] == 0.3
    presets.delete("Code")
    with pytest.raises(NotFoundError):
        presets.get("Code")
    with pytest.raises(NotFoundError):
        presets.delete("Code")
    with pytest.raises(InvalidInputError, match="name"):
        presets.save("   ", SamplingParams())
