"""Library operations: remove (downloaded vs imported vs starter), disk usage, details, hashing."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
import sqlite_utils

from slmdesk.catalog.fit import GIB, MemoryBudget
from slmdesk.catalog.library import (
    disk_usage,
    format_details,
    hash_file,
    model_details,
    record_sha256,
    remove_model,
)
from slmdesk.catalog.registry import import_model
from slmdesk.chat import ChatService
from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.ids import new_id, utc_now
from slmdesk.store.db import open_database
from slmdesk.store.models import ModelRecord, ModelRepository
from tests.gguf_factory import GGML_F32, write_gguf

PLENTY = MemoryBudget(total_ram=64 * GIB, available_ram=48 * GIB)
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _gguf(path: Path, *, template: str | None = CHATML, name: str = "Tiny") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str | bytes, object] = {
        "general.architecture": "llama", "general.name": name, "general.license": "mit",
        "llama.context_length": 2048, "llama.block_count": 2,
        "llama.embedding_length": 64, "llama.attention.head_count": 4,
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": [f"t{i}" for i in range(10)],
    }
    if template is not None:
        meta["tokenizer.chat_template"] = template
    write_gguf(path, metadata=meta, tensors=[("token_embd.weight", (64, 10), GGML_F32)])
    return path


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    return open_database(tmp_path / "t.db")


def _add_download_row(db: sqlite_utils.Database, record: ModelRecord, part: Path,
                      state: str = "done") -> None:
    now = utc_now()
    db.table("downloads").insert({
        "id": new_id(), "repo_id": "org/x", "filename": "x.gguf", "revision": "a" * 40,
        "dest_path": record.path, "part_path": str(part), "state": state,
        "model_id": record.id, "created_at": now, "updated_at": now,
    })


def test_removing_a_downloaded_model_deletes_its_file_and_partials(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    path = _gguf(models_dir / "org" / "x" / "x.gguf")
    record = import_model(db, path, source="download", hub=("org/x", "a" * 40, "x.gguf"))
    part = models_dir / "org" / "x" / "x-Q8_0.gguf.part"
    part.write_bytes(b"\0" * 1000)
    _add_download_row(db, record, part, state="paused")
    chat = ChatService(db).new_conversation(model=record)
    size = path.stat().st_size

    usage = disk_usage(db, models_dir)
    assert usage.owned_bytes == size and usage.partial_bytes == 1000
    assert usage.total_bytes == size + 1000 and usage.per_model == {record.id: size}

    removal = remove_model(db, record.id, models_dir=models_dir)
    assert removal.freed_bytes == size + 1000
    assert set(removal.deleted_paths) == {str(path), str(part)}
    assert removal.kept_path is None
    assert not path.exists() and not part.exists()
    assert not (models_dir / "org").exists()  # empty folders pruned, models_dir kept
    assert models_dir.is_dir()
    assert db.execute("SELECT count(*) FROM downloads").fetchone()[0] == 0
    with pytest.raises(NotFoundError):
        ModelRepository(db).get(record.id)
    # The conversation survives without its model.
    assert ChatService(db).chats.get_conversation(chat.id).model_id is None
    assert disk_usage(db, models_dir).total_bytes == 0


def test_removing_an_imported_model_leaves_the_file_unless_asked(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = _gguf(tmp_path / "mine" / "mine.gguf")
    record = import_model(db, path)
    removal = remove_model(db, record.id)
    assert removal.freed_bytes == 0 and removal.deleted_paths == []
    assert removal.kept_path == str(path) and path.is_file()

    record = import_model(db, path)
    size = path.stat().st_size
    removal = remove_model(db, record.id, delete_file=True)
    assert removal.freed_bytes == size and not path.exists()


def test_hard_linked_file_frees_nothing(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = _gguf(tmp_path / "a.gguf")
    (tmp_path / "b.gguf").hardlink_to(path)
    record = import_model(db, path)
    removal = remove_model(db, record.id, delete_file=True)
    assert removal.deleted_paths == [str(path)] and removal.freed_bytes == 0


def test_the_starter_file_is_never_deleted(
    db: sqlite_utils.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _gguf(tmp_path / "install" / "starter.gguf")
    monkeypatch.setenv("SLMDESK_STARTER_MODEL", str(path))
    record = import_model(db, path, source="starter", name="Starter")
    with pytest.raises(InvalidInputError, match="ships with slmdesk"):
        remove_model(db, record.id, delete_file=True)
    assert path.is_file() and ModelRepository(db).get(record.id)
    removal = remove_model(db, record.id)
    assert removal.kept_path == str(path) and path.is_file()


def test_a_link_into_the_hf_cache_is_not_deleted(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    blob = _gguf(tmp_path / "blobs" / "abc")
    link = tmp_path / "snap" / "x.gguf"
    link.parent.mkdir()
    link.symlink_to(blob)
    record = import_model(db, link, source="discovered", keep_path=True)
    assert record.path == str(link)
    with pytest.raises(InvalidInputError, match="delete-cache"):
        remove_model(db, record.id, delete_file=True)
    assert blob.is_file() and link.is_symlink()


def test_disk_usage_counts_each_file_once(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = _gguf(tmp_path / "a.gguf")
    link = tmp_path / "link.gguf"
    link.symlink_to(path)
    first = import_model(db, path)
    second = import_model(db, link, keep_path=True)
    assert first.id != second.id
    missing = import_model(db, _gguf(tmp_path / "gone.gguf"))
    Path(missing.path).unlink()
    usage = disk_usage(db)
    assert usage.total_bytes == path.stat().st_size
    assert usage.owned_bytes == 0 and usage.per_model[missing.id] == 0


def test_hash_file_progress_and_cancel(tmp_path: Path) -> None:
    data = b"slmdesk" * 1_000_000
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    seen: list[tuple[int, int]] = []
    assert hash_file(path, progress=lambda d, t: seen.append((d, t))) == \
        hashlib.sha256(data).hexdigest()
    assert seen[-1] == (len(data), len(data)) and len(seen) >= 2
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(InvalidInputError, match="cancelled"):
        hash_file(path, cancel=cancel)


def test_model_details(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = _gguf(tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf")
    record = import_model(db, path)
    digest = hash_file(path)
    record = record_sha256(db, record.id, digest)
    ModelRepository(db).record_memory(record.id, estimated=110 * 2**20, measured=100 * 2**20,
                                      context=512)
    record = ModelRepository(db).get(record.id)

    details = model_details(record, context=4096, budget=PLENTY)
    assert details["architecture"] == "llama" and details["licence"] == "mit"
    assert details["sha256"] == digest and details["exists"]
    assert details["context"] == 2048  # the setting, capped by the trained length
    assert details["fit"]["verdict"] == "fits" and details["fit"]["context"] == 2048
    assert details["chat_template"] == CHATML
    preview = details["template_preview"]
    assert "<|im_start|>system\nYou are a helpful assistant.<|im_end|>" in preview
    assert preview.count("<|im_start|>user") == 2 and preview.endswith("<|im_start|>assistant\n")
    assert details["template_notice"] is None
    assert details["memory"]["note"] == (
        "100 MiB once loaded at 512 tokens (estimated 110 MiB, 10 % high)")
    assert details["catalog"] is None  # same name as a catalog file, but not its size
    text = format_details(details)
    assert digest in text and "sample conversation" in text
    # Measured at 512 tokens, shown at 2,048: the one figure is the estimate, and the
    # measurement is not put beside it in other words (issue 16, defect 6).
    assert details["fit"]["measured"] is None
    assert "measured memory:" not in text and "once loaded" not in text


def test_details_show_a_failing_or_missing_template(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    broken = import_model(db, _gguf(tmp_path / "b.gguf", template="{% for %}", name="B"))
    details = model_details(broken, budget=PLENTY)
    assert "falls back to a generic template" in details["template_notice"]
    assert "What is the capital of France?" in details["template_preview"]
    none = import_model(db, _gguf(tmp_path / "n.gguf", template=None, name="N"))
    assert "no chat template" in model_details(none, budget=PLENTY)["template_notice"]
    Path(none.path).unlink()
    gone = model_details(none, budget=PLENTY)
    assert not gone["exists"] and gone["template_preview"] is None
    assert "[missing]" in format_details(gone)


def test_details_of_the_real_starter_match_the_catalog(
    db: sqlite_utils.Database, model_path: Path
) -> None:
    record = import_model(db, model_path, source="starter")
    details = model_details(record, context=4096, budget=PLENTY)
    assert details["catalog"]["id"] == "smollm2-135m-instruct-q4_1"
    assert details["catalog"]["pinned"]
    assert "<|im_start|>user" in details["template_preview"]
