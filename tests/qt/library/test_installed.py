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
    """One figure, one wording (issue 16: "fits · 251 MiB" beside "208 MiB once loaded"):
    a load measured at the context shown gives the row's and the details' one figure."""
    from slmdesk.catalog.fit import format_bytes
    from slmdesk.store.models import ModelRepository

    model = import_model(library.db, tiny_models[0])
    library.refresh_installed()
    context = library.installed.rows[0].estimate.context
    estimated = library.installed.rows[0].estimate
    mib = 2**20
    ModelRepository(library.db).record_memory(model.id, estimated=estimated.at_load,
                                              measured=estimated.at_load + 3 * mib,
                                              context=context)
    library.refresh_installed()
    library.select_model_row(model.id)
    headers = [c.header for c in library.installed.columns]
    assert "Measured" not in headers
    row = library.installed.rows[0]
    assert row.estimate.measured == estimated.at_load + 3 * mib
    index = library.installed.index(0, headers.index("Fit"))
    cell = str(library.installed.data(index))
    figure = format_bytes(row.estimate.figure)
    assert cell == f"{row.estimate.verdict_text} · {figure}"
    assert figure == format_bytes(estimated.total + 3 * mib)
    details = library.details.toPlainText()
    assert f"needs about {figure} at {context:,} tokens (measured " in details
    assert "once loaded" not in details and "measured memory:" not in details
    from PySide6.QtCore import Qt
    tooltip = str(library.installed.data(index, Qt.ItemDataRole.ToolTipRole))
    assert f"needs about {figure} " in tooltip


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
