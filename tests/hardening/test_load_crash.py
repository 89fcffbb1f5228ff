"""A model whose load takes the process down is not loaded again automatically at the next start."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from slmdesk.loadguard import LoadGuard, LoadMark, crash_message
from tests.gguf_factory import write_gguf
from tests.hardening.helpers import (
    Window,
    cli_command,
    cli_env,
    fast_settings,
    one_line_error,
    run_cli,
)
from tests.unit.engine.test_gguf import VALID_TENSORS, valid_metadata


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _leave_mark(guard_dir: Path, path: Path, pid: int, started: float | None = None) -> None:
    """A mark as a process that died while loading ``path`` would have left it."""
    (guard_dir / "loading").mkdir(parents=True, exist_ok=True)
    mark = LoadMark(path=str(path), model_id="m1", model_name="Crashy", pid=pid,
                    process_started=started, started_at="2026-01-02T03:04:05+00:00")
    (guard_dir / "loading" / f"{pid}-dead.json").write_text(json.dumps(mark.to_json()))


# -- the guard on its own -----------------------------------------------------------------
def test_a_normal_load_leaves_no_mark(tmp_path: Path) -> None:
    guard = LoadGuard(tmp_path)
    with guard.loading(tmp_path / "m.gguf", model_id="x") as mark:
        assert mark.pid == os.getpid()
        [file] = (tmp_path / "loading").glob("*.json")
        assert json.loads(file.read_text())["path"] == str(tmp_path / "m.gguf")
        # Our own live mark is not a crash, not even for another guard of this process.
        assert LoadGuard(tmp_path).crashed() == []
    assert not list((tmp_path / "loading").glob("*"))
    with pytest.raises(RuntimeError), guard.loading(tmp_path / "m.gguf"):
        raise RuntimeError("a load that fails with an error is not a crash")
    assert not list((tmp_path / "loading").glob("*"))


def test_end_of_an_older_load_keeps_the_newer_mark(tmp_path: Path) -> None:
    guard = LoadGuard(tmp_path)
    guard.begin(tmp_path / "b.gguf")
    guard.end(tmp_path / "a.gguf")
    assert len(list((tmp_path / "loading").glob("*.json"))) == 1
    guard.end(tmp_path / "b.gguf")
    assert not list((tmp_path / "loading").glob("*.json"))


def test_marks_of_dead_and_reused_pids_are_crashes(tmp_path: Path) -> None:
    model = tmp_path / "crashy.gguf"
    dead = _dead_pid()
    _leave_mark(tmp_path, model, dead)
    # A live process with a different start time: its pid was reused after the crash.
    _leave_mark(tmp_path, tmp_path / "other.gguf", os.getppid(), started=1.0)
    # A live process that really is the writer: a load in progress elsewhere.
    (tmp_path / "loading" / "live.json").write_text(json.dumps(LoadMark(
        path=str(tmp_path / "busy.gguf"), model_id=None, model_name=None, pid=os.getppid(),
        process_started=None, started_at="").to_json()))
    # Damaged or foreign files are ignored.
    (tmp_path / "loading" / "junk.json").write_text("{not json")
    (tmp_path / "loading" / "list.json").write_text("[1, 2]")
    guard = LoadGuard(tmp_path)
    assert sorted(Path(m.path).name for m in guard.crashed()) == ["crashy.gguf", "other.gguf"]
    mark = guard.crash_for(model)
    assert mark is not None and mark.pid == dead
    message = crash_message(mark, retry="Try again by naming it.")
    assert "Crashy" in message and "2026-01-02 03:04 UTC" in message
    assert "not loaded automatically" in message and message.endswith("Try again by naming it.")
    assert guard.crash_for(tmp_path / "busy.gguf") is None
    assert guard.forget(model) == 1
    assert guard.crash_for(model) is None
    assert guard.forget(tmp_path / "busy.gguf") == 0  # never removes a live process's mark


def test_an_unwritable_guard_does_not_stop_a_load(tmp_path: Path) -> None:
    (tmp_path / "loading").write_text("a file where the folder should be")
    guard = LoadGuard(tmp_path)
    with guard.loading(tmp_path / "m.gguf"):
        pass
    assert guard.crashed() == []


# -- a real load that aborts the process ----------------------------------------------------
def _aborting_model(path: Path) -> None:
    """A GGUF that passes slmdesk's checks but makes llama.cpp abort (GGML_ASSERT).

    llama.cpp asserts that it knows the RoPE scaling type while it reads the
    hyperparameters (llama-model.cpp, load_hparams); an unknown name trips the assertion and
    the process aborts. (slmdesk's validator refuses the layer and expert counts llama.cpp
    asserts on; it does not mirror every assertion, which is why the load guard exists.)
    """
    metadata = valid_metadata()
    metadata["llama.rope.scaling.type"] = "not-a-scaling-type"
    write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)


@pytest.mark.model
def test_a_load_that_aborts_is_not_repeated_at_the_next_start(
    qtbot: Any, tmp_path: Path, slmdesk_home: Path, model_path: Path
) -> None:
    from slmdesk.catalog.registry import import_model
    from slmdesk.engine.llama_engine import validate_model_file
    from slmdesk.settings import load_settings, save_settings
    from slmdesk.startup import open_core

    crashy = tmp_path / "crashy.gguf"
    _aborting_model(crashy)
    # If the validator learns to refuse this file, pick another llama.cpp abort for the test.
    assert validate_model_file(crashy).architecture == "llama"
    core = open_core(register_starter=False)
    record = import_model(core.db, crashy, name="Crashy")
    settings = load_settings(core.db)
    settings.default_model_id = record.id
    save_settings(core.db, settings)
    core.db.close()
    fast_settings()

    # The app starts, loads its default model at start-up, and llama.cpp aborts it.
    gui = subprocess.run(cli_command(slmdesk_home), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, env=cli_env(), timeout=180)
    assert gui.returncode < 0, (gui.returncode, gui.stderr[-2000:])  # killed by a signal
    marks = list((slmdesk_home / "data" / "loading").glob("*.json"))
    assert len(marks) == 1 and json.loads(marks[0].read_text())["model_id"] == record.id

    # The command line does not load it by itself, and says why and what to do.
    proc = run_cli(slmdesk_home, "chat", "hi")
    line = one_line_error(proc.returncode, proc.stdout, proc.stderr, "Crashy",
                          "not loaded automatically", f"--model {record.id}")
    assert proc.returncode > 0

    # The window starts without loading it, shows why, and stays usable.
    app = Window(qtbot, wait_loaded=False)
    win = app.win
    try:
        assert win.load_job is None and win.loaded is None
        assert win.banner.isVisible()
        assert "Crashy" in win.banner.text() and "Pick it in the model list" in win.banner.text()
        assert win.model_picker.currentData() == record.id
        # Say the person replaced the file with a good copy and picks it to try again:
        # loading it explicitly clears the mark.
        shutil.copyfile(model_path, crashy)
        win.model_picker.activated.emit(win.model_picker.currentIndex())
        qtbot.waitUntil(lambda: win.loaded is not None, timeout=120_000)
        assert not list((slmdesk_home / "data" / "loading").glob("*.json"))
    finally:
        app.close()
    assert "Traceback" not in line
    proc = run_cli(slmdesk_home, "chat", "--max-tokens", "4", "hi")
    assert proc.returncode == 0, proc.stderr
    # On the command line, naming the model is the explicit load that clears a mark.
    _leave_mark(slmdesk_home / "data", crashy, _dead_pid())
    proc = run_cli(slmdesk_home, "chat", "--max-tokens", "4", "hi")
    one_line_error(proc.returncode, proc.stdout, proc.stderr, "not loaded automatically")
    proc = run_cli(slmdesk_home, "chat", "--model", record.id, "--max-tokens", "4", "hi")
    assert proc.returncode == 0, proc.stderr
    assert not list((slmdesk_home / "data" / "loading").glob("*.json"))
