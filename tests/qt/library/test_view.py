"""The Models tab on the real window: hub search and a download from the local hub with
pause and resume, then switching the chat to the downloaded model and getting a reply;
drag-and-drop import; removal; discovery; the memory refusal; idle unload."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from slmdesk.catalog import fit
from slmdesk.store.chats import ChatRepository
from slmdesk.store.models import ModelRepository
from slmdesk.ui.common.table_model import Column, RowTableModel
from tests.hubserver import SMOL_FILE, SMOL_REPO
from tests.qt.chat.test_window import App, send

pytestmark = pytest.mark.model


@pytest.fixture
def app(qtbot: Any, model_path: Path) -> Any:
    a = App(qtbot)
    a.win.chat_page.settings_panel.max_tokens.setValue(12)
    a.win.chat_page.settings_panel.flush()
    yield a
    if a.core.db.conn is not None:
        try:
            a.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


def _row_of(model: Any, predicate: Any) -> int:
    for i, row in enumerate(model.rows):
        if predicate(row):
            return i
    raise AssertionError("no such row")


def test_download_pause_resume_then_chat_with_the_downloaded_model(
    qtbot: Any, app: Any, hub_server: Any
) -> None:
    win = app.win
    lib = win.library_view
    win.tabs.setCurrentWidget(lib)
    starter_id = win.model.id

    # Search the hub and list the repository's files.
    lib.search_box.setText("SmolLM2")
    with qtbot.waitSignal(lib.search_finished, timeout=30_000) as found:
        qtbot.mouseClick(lib.search_button, Qt.MouseButton.LeftButton)
    assert found.args[0] >= 1
    repo_row = _row_of(lib.repos, lambda r: r.repo_id == SMOL_REPO)
    with qtbot.waitSignal(lib.files_listed, timeout=30_000) as listed:
        lib.select_row(lib.repos_view, lib.repos_proxy, repo_row)
    assert listed.args[0] >= 1
    file_row = _row_of(lib.files, lambda f: f.filename == SMOL_FILE)
    hub_file = lib.files.row_at(file_row)
    assert hub_file.supported and hub_file.quantization == "Q4_1"
    assert lib.files.data(lib.files.index(file_row, 3)) != "?"  # a fit estimate is shown
    lib.select_row(lib.files_view, lib.files_proxy, file_row)

    # Download slowly enough to watch it, pause it, resume it.
    hub_server.chunk_delay_s = 0.002
    qtbot.mouseClick(lib.hub_download_button, Qt.MouseButton.LeftButton)
    assert lib.tabs.currentIndex() == 3
    qtbot.waitUntil(lambda: any((d.fraction or 0) > 0.05 for d in lib.download_rows.rows),
                    timeout=60_000)
    row = _row_of(lib.download_rows, lambda d: d.filename == SMOL_FILE)
    assert "%" in lib.download_rows.data(lib.download_rows.index(row, 2))
    assert lib.tabs.tabText(3) == "Downloads (1)"
    lib.select_row(lib.downloads_view, lib.downloads_proxy, row)
    qtbot.mouseClick(lib.pause_button, Qt.MouseButton.LeftButton)
    # Paused at once; the row then shows what the partial file holds.
    qtbot.waitUntil(lambda: lib.download_rows.rows[row].state == "paused"
                    and lib.download_rows.rows[row].downloaded_bytes > 0, timeout=30_000)
    paused = lib.download_rows.rows[row]
    assert 0 < paused.downloaded_bytes < hub_server.size(SMOL_REPO, SMOL_FILE)
    assert lib.download_rows.data(lib.download_rows.index(row, 1)) == "paused"
    hub_server.chunk_delay_s = 0.0
    with qtbot.waitSignal(lib.download_finished, timeout=120_000) as done:
        qtbot.mouseClick(lib.resume_button, Qt.MouseButton.LeftButton)
    model_id = done.args[1]
    assert model_id

    # Installed, verified, offered in the window's model list.
    record = ModelRepository(app.core.db).get(model_id)
    assert record.source == "download" and record.owns_file
    assert record.sha256 == hub_server.sha256(SMOL_REPO, SMOL_FILE)
    assert (record.repo_id, record.hub_filename) == (SMOL_REPO, SMOL_FILE)
    assert any(r.record.id == model_id for r in lib.installed.rows)
    assert win.model_picker.findData(model_id) >= 0
    # The resumed download fetched only what it lacked (plus what the buffers held).
    size = hub_server.size(SMOL_REPO, SMOL_FILE)
    assert hub_server.bytes_sent(SMOL_FILE) - size < 0.05 * size

    # Switch the chat to it from the library and get a reply.
    lib.tabs.setCurrentIndex(0)
    lib.select_model_row(model_id)
    with qtbot.waitSignal(win.engine.model_loaded, timeout=60_000):
        qtbot.mouseClick(lib.use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.loaded is not None and win.model.id == model_id,
                    timeout=60_000)
    assert win.model.id != starter_id
    assert "loaded in" in win.model_state.text()
    assert win.tabs.currentWidget() is win.chat_page
    send(qtbot, win, "Say hello.")
    reply = ChatRepository(app.core.db).path(win.chat.conversation.id)[-1]
    assert reply.role == "assistant" and reply.status == "complete" and reply.content
    assert reply.model_id == model_id
    # The load's measured memory is kept, with the estimate it is compared with.
    record = ModelRepository(app.core.db).get(model_id)
    assert record.measured_memory_bytes and record.estimated_memory_bytes
    assert record.measured_context == win.loaded.n_ctx


def _drop(win: Any, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    win.dropEvent(event)


def test_dropped_gguf_files_are_validated_and_registered_in_place(
    qtbot: Any, app: Any, model_path: Path, tmp_path: Path
) -> None:
    win, lib = app.win, app.win.library_view
    copy = tmp_path / "my-copy.gguf"
    shutil.copyfile(model_path, copy)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 10)
    with qtbot.waitSignal(lib.imports_finished, timeout=30_000) as finished:
        _drop(win, [copy, broken])
    assert finished.args == [1, 1]
    assert win.tabs.currentWidget() is lib
    assert lib.banner.isVisible() and "broken.gguf" in lib.banner.text()
    record = ModelRepository(app.core.db).get_by_path(str(copy.resolve()))
    assert record is not None and record.source == "import"
    assert win.model_picker.findData(record.id) >= 0
    assert lib.selected_model() is not None and lib.selected_model().id == record.id
    assert "Architecture" in lib.details.toPlainText() or "architecture" in (
        lib.details.toPlainText())

    # Removing an imported model leaves the person's file alone.
    lib.remove_model(record.id)
    assert copy.is_file()
    assert all(r.record.id != record.id for r in lib.installed.rows)
    assert win.model_picker.findData(record.id) < 0
    assert "left where it is" in lib.notice.text()
    # The model in use cannot be removed from under the chat.
    lib.remove_model(win.model.id)
    assert "in use" in lib.banner.text()


def test_models_found_in_the_hugging_face_cache_are_offered_read_only(
    qtbot: Any, app: Any, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--someone--Smol-GGUF"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "blobs").mkdir(parents=True)
    blob = repo / "blobs" / "abc123"
    shutil.copyfile(model_path, blob)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "smol.Q4_1.gguf").symlink_to(blob)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    from huggingface_hub import constants

    # huggingface_hub reads HF_HUB_CACHE once, at import.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    lib = app.win.library_view
    with qtbot.waitSignal(lib.scan_finished, timeout=30_000) as scanned:
        lib.scan_folders()
    assert scanned.args[0] >= 1
    row = _row_of(lib.found, lambda f: f.name == "smol.Q4_1.gguf")
    assert "someone/Smol-GGUF" in lib.found.data(lib.found.index(row, 2))
    lib.select_row(lib.found_view, lib.found_proxy, row)
    qtbot.mouseClick(lib.add_found_button, Qt.MouseButton.LeftButton)
    record = lib.selected_model()
    assert record is not None and record.source == "discovered"
    assert record.repo_id == "someone/Smol-GGUF"
    assert blob.is_file()  # never copied, never moved
    assert not any(Path(r.record.path).parent == Path(
        app.core.paths.default_models_dir) for r in lib.installed.rows)


def test_a_model_that_will_not_fit_is_refused_with_the_numbers_then_loads_anyway(
    qtbot: Any, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    win = app.win
    model = win.model
    tiny = fit.MemoryBudget(total_ram=64 * 2**20, available_ram=16 * 2**20)
    monkeypatch.setattr(fit, "system_memory", lambda: tiny)
    win.select_model(model)
    assert win.banner.isVisible() and "Not enough memory" in win.banner.text()
    assert "MiB" in win.banner.text() and "at 2,048 tokens" in win.banner.text()
    assert "--force" not in win.banner.text()
    assert win.load_anyway_button.isVisible()
    assert win.load_job is None
    with qtbot.waitSignal(win.engine.model_loaded, timeout=60_000):
        qtbot.mouseClick(win.load_anyway_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.loaded is not None, timeout=60_000)
    assert not win.load_anyway_button.isVisible()


def test_idle_unload_frees_the_model_and_sending_loads_it_again(
    qtbot: Any, app: Any
) -> None:
    win, lib = app.win, app.win.library_view
    lib.idle_box.setValue(5)
    assert win.session.idle_timer.isActive() and win.session.idle_timer.interval() == 5 * 60_000
    with qtbot.waitSignal(win.engine.model_unloaded, timeout=30_000):
        win.session.idle_timer.timeout.emit()  # as if five idle minutes had passed
    assert win.loaded is None and "idle" in win.model_state.text()
    assert not win.engine.engine.is_loaded
    send(qtbot, win, "Hi!", wait=False)
    assert win.load_job is not None  # loading again, the message waits for it
    qtbot.waitUntil(lambda: win.chat.conversation is not None and win.chat.gen_job is None,
                    timeout=120_000)
    assert win.loaded is not None
    reply = ChatRepository(app.core.db).path(win.chat.conversation.id)[-1]
    assert reply.role == "assistant" and reply.content
    lib.idle_box.setValue(0)
    assert not win.session.idle_timer.isActive()


def test_row_table_model_passes_the_model_tester(qtmodeltester: Any) -> None:
    model = RowTableModel([Column("Name", lambda r: r[0]), Column("Size", lambda r: str(r[1]),
                                                                  sort=lambda r: r[1])])
    model.set_rows([("a", 2), ("b", 1)])
    qtmodeltester.check(model)
    model.append_row(("c", 3))
    model.replace_row(0, ("z", 9))
    assert model.data(model.index(0, 0)) == "z" and model.rowCount() == 3


def test_download_without_a_selection_asks_for_one_until_one_is_made(library: Any) -> None:
    for view in (library.catalog_view, library.files_view):
        view.clearSelection()
        view.setCurrentIndex(view.model().index(-1, -1))
    library.download_selected_entry()
    assert library.banner.text() == "Pick a model in the catalog first."
    library.download_selected_file()
    assert library.banner.text() == "Pick a file of a repository first."
