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


def test_the_row_and_the_details_give_the_same_memory_figures(
    qtbot: Any, library: Any, tiny_models: list[Path]
) -> None:
    """One figure, one wording (issue 16: "fits · 250.6 MiB" beside "needs about 251 MiB",
    and "2 % over" for a measurement under the estimate)."""
    from slmdesk.catalog.fit import format_bytes
    from slmdesk.store.models import ModelRepository

    model = import_model(library.db, tiny_models[0])
    mib = 2**20
    ModelRepository(library.db).record_memory(model.id, estimated=207 * mib,
                                              measured=202 * mib, context=4096)
    library.refresh_installed()
    library.select_model_row(model.id)
    headers = [c.header for c in library.installed.columns]
    row = library.installed.rows[0]

    def cell(header: str) -> str:
        return str(library.installed.data(library.installed.index(0, headers.index(header))))

    figure = format_bytes(row.estimate.total)
    assert cell("Fit").endswith(f" · {figure}")
    details = library.details.toPlainText()
    assert f"needs about {figure} " in details
    measured = cell("Measured")
    assert measured == "202 MiB once loaded at 4,096 tokens (estimated 207 MiB, 2 % high)"
    assert f"measured memory: {measured}" in details


def test_rename_from_the_library_and_a_notice_for_a_copy(
    qtbot: Any, library: Any, tiny_models: list[Path], tmp_path: Path
) -> None:
    import shutil

    from PySide6.QtWidgets import QInputDialog

    model = import_model(library.db, tiny_models[0])
    library.refresh_installed()
    library.select_model_row(model.id)
    library.rename_button.click()
    dialog = library.findChild(QInputDialog)
    assert dialog is not None and dialog.textValue() == model.name
    dialog.setTextValue("Renamed tiny")
    with qtbot.waitSignal(library.models_changed):
        dialog.accept()
    assert [r.record.name for r in library.installed.rows] == ["Renamed tiny"]
    library.rename_model(model.id, "")
    assert "cannot be empty" in library.banner.text()

    copy = tmp_path / "copy.gguf"
    shutil.copyfile(tiny_models[0], copy)
    with qtbot.waitSignal(library.imports_finished) as done:
        library.import_paths([str(copy)])
    assert done.args == [1, 0]
    assert library.notice.isVisibleTo(library) and not library.banner.isVisibleTo(library)
    assert "copy.gguf: It is the same model as Renamed tiny (same size and header)" in (
        library.notice.text())
