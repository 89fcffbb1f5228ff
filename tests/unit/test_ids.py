"""Ids sort by creation."""

from __future__ import annotations

from slmdesk.ids import new_id


def test_ids_sort_by_creation() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
