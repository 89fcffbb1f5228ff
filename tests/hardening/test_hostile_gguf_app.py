"""Malformed GGUF files reach the CLI and the window as one clear error; the app stays alive."""

from __future__ import annotations

import random
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slmdesk.store.models import ModelRecord, ModelRepository
from tests.gguf_factory import GGML_F32, STRING, RawValue, write_gguf
from tests.hardening.helpers import Window, main_in_process, one_line_error, run_cli, send
from tests.unit.engine.test_gguf import (
    VALID_TENSORS,
    truncation_offset,
    valid_metadata,
    write_valid,
)

Maker = Callable[[Path], None]


def _truncated(point: str) -> Maker:
    def make(path: Path) -> None:
        layout = write_valid(path)
        data = path.read_bytes()
        path.write_bytes(data[: truncation_offset(layout, point)])

    return make


def _with_value(key: str, value: object) -> Maker:
    def make(path: Path) -> None:
        metadata = valid_metadata()
        metadata[key] = value
        write_gguf(path, metadata=metadata, tensors=VALID_TENSORS)

    return make


def _tensors(offsets: list[int], data_size: int | None = None) -> Maker:
    def make(path: Path) -> None:
        write_gguf(path, metadata=valid_metadata(),
                   tensors=[("a", (64,), GGML_F32), ("b", (64,), GGML_F32)],
                   tensor_offsets=offsets, data_size=data_size)

    return make


def _bytes(data: bytes) -> Maker:
    return lambda path: path.write_bytes(data)


# (file name, how to make it, words the message must hold besides the file name)
CORPUS: list[tuple[str, Maker, str]] = [
    ("folder.gguf", lambda p: p.mkdir(), "directory"),
    ("zero.gguf", _bytes(b""), "empty"),
    ("cut-magic.gguf", _truncated("inside magic"), "truncated"),
    ("cut-header.gguf", _truncated("inside header"), "truncated"),
    ("cut-key.gguf", _truncated("inside a key"), "truncated"),
    ("cut-vocab.gguf", _truncated("inside a string array"), "truncated"),
    ("cut-tensor-info.gguf", _truncated("inside tensor infos"), "truncated"),
    ("cut-tensor-data.gguf", _truncated("inside tensor data"), "truncated"),
    ("cut-last-byte.gguf", _truncated("last byte"), "truncated"),
    ("magic.gguf", lambda p: write_valid(p, magic=b"GGML"), "not a GGUF"),
    ("version1.gguf", lambda p: write_valid(p, version=1), "version 1"),
    ("version99.gguf", lambda p: write_valid(p, version=99), "version 99"),
    ("tensor-count.gguf", lambda p: write_valid(p, tensor_count=2**60), "tensors"),
    ("kv-count.gguf", lambda p: write_valid(p, kv_count=2**60), "metadata entries"),
    ("string-past-end.gguf",
     _with_value("general.name", RawValue(STRING, struct.pack("<Q", 10**6))), "truncated"),
    ("string-huge.gguf",
     _with_value("general.name", RawValue(STRING, struct.pack("<Q", 2**62))), "string of"),
    ("overlap.gguf", _tensors([0, 128], data_size=512), "overlap"),
    ("offset-outside.gguf", _tensors([0, 2**40]), "truncated"),
    ("data-short.gguf", _tensors([0, 256], data_size=300), "tensor data of 'b'"),
    ("unknown-arch.gguf",
     lambda p: write_gguf(p, metadata=valid_metadata("foo"), tensors=VALID_TENSORS),
     "newer engine"),
    ("text.gguf", _bytes(b"<html>Not a model</html>\n" * 40), "not a GGUF"),
    ("noise.gguf", _bytes(random.Random(9).randbytes(4096)), "not a GGUF"),
]


def build_corpus(folder: Path) -> list[tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, make, words in CORPUS:
        path = folder / name
        make(path)
        out.append((path, words))
    return out


def register_broken(db: Any, corpus: list[tuple[Path, str]]) -> list[ModelRecord]:
    """Register each file as if it had been good at import and broke afterwards."""
    repo = ModelRepository(db)
    return [
        repo.add(name=f"broken {p.stem}", path=str(p), size_bytes=1, architecture="llama",
                 quantization=None, parameter_count=None, context_length=None, licence=None,
                 source="import")
        for p, _words in corpus
    ]


def test_corpus_is_large_and_varied(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path / "corpus")
    assert len(corpus) >= 20
    assert len({p.name for p, _ in corpus}) == len(corpus)


def test_cli_import_and_chat_refuse_each_file_with_one_line(
    tmp_path: Path, slmdesk_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from slmdesk.startup import open_core

    corpus = build_corpus(tmp_path / "corpus")
    for path, words in corpus:
        code, out, err = main_in_process(capsys, "models", "import", str(path))
        one_line_error(code, out, err, path.name, words)
    core = open_core(register_starter=False)
    registered = {m.path for m in ModelRepository(core.db).list()}
    assert not registered & {str(p.resolve()) for p, _ in corpus}  # none was registered
    records = register_broken(core.db, corpus)
    core.db.close()
    for record, (path, _words) in zip(records, corpus, strict=True):
        code, out, err = main_in_process(capsys, "chat", "--model", record.id, "hi")
        # A folder is not a model file: the registered entry reads as missing.
        one_line_error(code, out, err, path.name if path.is_file() else str(path))
        assert out == ""
    # The same through a real process: exit status, stderr, no traceback.
    for path, words in (corpus[0], corpus[4]):
        proc = run_cli(slmdesk_home, "models", "import", str(path))
        one_line_error(proc.returncode, proc.stdout, proc.stderr, path.name, words)


@pytest.mark.model
def test_window_shows_each_error_and_still_chats(
    qtbot: Any, tmp_path: Path, model_path: Path
) -> None:
    app = Window(qtbot)
    win = app.win
    try:
        good = win.model
        assert good is not None
        corpus = build_corpus(tmp_path / "corpus")
        broken = register_broken(win.db, corpus)
        win.refresh_models()
        for record, (path, words) in zip(broken, corpus, strict=True):
            win.clear_error()
            index = win.model_picker.findData(record.id)
            assert index >= 0
            win.model_picker.setCurrentIndex(index)
            win.model_picker.activated.emit(index)  # what picking it with the mouse sends
            qtbot.waitUntil(lambda: win.banner.isVisible() and win.load_job is None,
                            timeout=30_000)
            text = win.banner.text()
            assert path.name in text, text
            if path.is_file():
                assert words in text, text
            # A refused file never becomes the loaded model (a folder is refused before
            # the load starts, so the previous model stays loaded).
            assert win.loaded is None or win.loaded.path != str(path)
        assert not list((win.load_guard.dir).glob("*.json"))  # every failed load unmarked
        # The window is still usable: the good model loads and answers.
        win.model_picker.activated.emit(win.model_picker.findData(good.id))
        qtbot.waitUntil(lambda: win.loaded is not None, timeout=120_000)
        assert not win.banner.isVisible()
        win.chat_page.settings_panel.temperature.setValue(0.0)
        win.chat_page.settings_panel.max_tokens.setValue(24)
        win.chat_page.settings_panel.flush()
        send(qtbot, win, "What is the capital of France?")
        replies = [w.message for w in win.chat_page.chat_view.widgets
                   if w.message.role == "assistant"]
        assert replies and replies[-1].finish_reason in ("stop", "length")
        assert replies[-1].content.strip()
    finally:
        app.close()


@pytest.mark.model
def test_model_file_deleted_or_moved_while_the_app_runs(
    qtbot: Any, tmp_path: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from slmdesk.catalog.registry import import_model

    copy = tmp_path / "models" / "copy.gguf"
    copy.parent.mkdir()
    shutil.copyfile(model_path, copy)
    app = Window(qtbot)
    win = app.win
    try:
        starter = win.model
        assert starter is not None
        record = import_model(win.db, copy, name="My copy")
        win.refresh_models()
        win.select_model(record)
        qtbot.waitUntil(lambda: win.loaded is not None and win.model.id == record.id,
                        timeout=120_000)
        copy.unlink()  # deleted while loaded: the running model may go on (mmap)
        win.select_model(starter)
        qtbot.waitUntil(lambda: win.loaded is not None and win.model.id == starter.id,
                        timeout=120_000)
        # Switching back needs the file again: a clear message naming where it was.
        win.select_model(record)
        assert win.banner.isVisible()
        assert str(copy.resolve()) in win.banner.text() and "missing" in win.banner.text()
        assert win.loaded is not None and win.model.id == starter.id  # still usable
        index = win.model_picker.findData(record.id)
        assert "(file missing)" in win.model_picker.itemText(index)
    finally:
        app.close()
    # Moved rather than deleted, seen from the command line.
    moved = tmp_path / "elsewhere.gguf"
    shutil.copyfile(model_path, copy)
    copy.rename(moved)
    code, out, err = main_in_process(capsys, "chat", "--model", "My copy", "hi")
    one_line_error(code, out, err, str(copy.resolve()), "moved or deleted")
