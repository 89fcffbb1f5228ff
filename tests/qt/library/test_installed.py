"""The Installed page without a window: messages about one model go when another is picked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slmdesk.catalog.registry import import_model


def test_the_sha256_line_clears_when_another_model_is_selected(
    qtbot: Any, library: Any, tiny_models: list[Path]
) -> None:
    for path in tiny_models:
        import_model(library.db, path)
    library.refresh_installed()
    library.select_row(library.installed_view, library.installed_proxy, 0)
    first = library.selected_model()
    library.hash_selected()
    qtbot.waitUntil(lambda: f"sha256 of {first.name}:" in library.notice.text())
    assert library.notice.isVisibleTo(library)
    library.select_model_row(first.id)  # the same model again: the line stays
    assert library.notice.isVisibleTo(library)
    other = next(r.record for r in library.installed.rows if r.record.id != first.id)
    library.select_model_row(other.id)
    assert not library.notice.isVisibleTo(library)
