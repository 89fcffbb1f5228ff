"""Registering model files: readable names, renaming, and the same-model notice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlite_utils

from slmdesk.catalog.registry import (
    find_same_models,
    import_model,
    model_display_name,
    rename_model,
)
from slmdesk.engine.llama_engine import validate_model_file
from slmdesk.errors import InvalidInputError, NotFoundError
from slmdesk.store.db import open_database
from tests.gguf_factory import GGML_F32, write_gguf


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    return open_database(tmp_path / "t.db")


def _gguf(path: Path, rows: int = 10, **general: object) -> Path:
    meta: dict[str | bytes, object] = {
        "general.architecture": "llama", "llama.context_length": 2048,
        "llama.block_count": 2, "llama.embedding_length": 64, "llama.attention.head_count": 4,
        **{f"general.{k}": v for k, v in general.items()},
    }
    write_gguf(path, metadata=meta, tensors=[("token_embd.weight", (64, rows), GGML_F32)])
    return path


def _name(path: Path) -> str:
    return model_display_name(validate_model_file(path))


def test_the_starter_and_a_copy_of_it_get_readable_names(
    model_path: Path, tmp_path: Path
) -> None:
    """Issue 16: "Smollm2 135M 8k Lc100K Mix1 Ep2" for copy.gguf (general.name repeats a
    training-run tag)."""
    assert _name(model_path) == "SmolLM2 135M Instruct (Q4_1)"
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(model_path, copy)
    assert _name(copy) == "Smollm2 135M (Q4_1)"


def test_names_from_the_gguf_factory_files(tmp_path: Path) -> None:
    # Basename, size label and a one-word fine-tune when the file name says nothing.
    assert _name(_gguf(tmp_path / "model.gguf", basename="qwen2.5", size_label="0.5B",
                       finetune="instruct", name="Qwen2.5 0.5B Instruct Run7",
                       file_type=7)) == "Qwen2.5 0.5B Instruct (Q8_0)"
    # The file name when it names the model, in its author's casing.
    assert _name(_gguf(tmp_path / "Phi-3-mini-Q8_0.gguf", basename="phi-3")) == (
        "Phi 3 mini (Q8_0)")
    # Without a basename: the author's general.name as it is.
    assert _name(_gguf(tmp_path / "x.gguf", name="My Tiny Model")) == "My Tiny Model"
    # Without any name: the file name.
    assert _name(_gguf(tmp_path / "tiny-chat.Q4_K_M.gguf")) == "tiny chat (Q4_K_M)"


def test_rename(db: sqlite_utils.Database, tmp_path: Path) -> None:
    model = import_model(db, _gguf(tmp_path / "a.gguf", name="A"))
    assert rename_model(db, model.id, "  My   model ").name == "My model"
    with pytest.raises(InvalidInputError, match="cannot be empty"):
        rename_model(db, model.id, "   ")
    with pytest.raises(InvalidInputError, match="under 120"):
        rename_model(db, model.id, "x" * 121)
    with pytest.raises(NotFoundError):
        rename_model(db, "nope", "name")
    # A re-import keeps the chosen name.
    assert import_model(db, tmp_path / "a.gguf").name == "My model"


def test_a_copy_of_an_installed_model_is_noticed_not_refused(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    first = import_model(db, _gguf(tmp_path / "a.gguf", name="A"))
    other = import_model(db, _gguf(tmp_path / "b.gguf", rows=12, name="B"))
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(tmp_path / "a.gguf", copy)
    added = import_model(db, copy)
    [same] = find_same_models(db, added)
    assert same.model.id == first.id and same.evidence == "size and header"
    assert "same model as A (same size and header)" in same.sentence
    assert find_same_models(db, other) == []
    # With both hashes known, the sha256 decides.
    repo_sha = "c" * 64
    db.table("models").update(first.id, {"sha256": repo_sha})
    db.table("models").update(added.id, {"sha256": repo_sha})
    [same] = find_same_models(db, import_model(db, copy))
    assert same.evidence == "sha256"
    db.table("models").update(added.id, {"sha256": "d" * 64})
    assert find_same_models(db, import_model(db, copy)) == []
