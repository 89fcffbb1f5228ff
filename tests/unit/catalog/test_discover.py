"""Discovery of GGUF files in a fake Hugging Face cache (real symlinks) and a fake LM Studio dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slmdesk.catalog.discover import discover, hf_cache_dir, register_discovered
from slmdesk.errors import InvalidInputError, ModelFileError
from slmdesk.store.db import open_database
from slmdesk.store.models import ModelRepository
from tests.gguf_factory import GGML_F32, write_gguf

COMMIT_OLD = "1" * 40
COMMIT_MAIN = "2" * 40


def _gguf(path: Path, name: str = "Tiny") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(path, metadata={
        "general.architecture": "llama", "general.name": name,
        "llama.context_length": 2048, "llama.block_count": 1,
        "llama.embedding_length": 64, "llama.attention.head_count": 4,
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": [f"t{i}" for i in range(10)],
    }, tensors=[("token_embd.weight", (64, 10), GGML_F32)])
    return path


def _hf_file(cache: Path, repo_id: str, revision: str, filename: str, blob: str,
             *, write: bool = True) -> Path:
    """A snapshot entry as huggingface_hub makes it: a relative symlink to blobs/<hash>."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    blob_path = repo / "blobs" / blob
    if write and not blob_path.exists():
        _gguf(blob_path)
    link = repo / "snapshots" / revision / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob_path, link.parent))
    return link


@pytest.fixture
def hf_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "hf" / "hub"
    # One repo, two snapshots of the same file (same blob), refs/main at the newer one.
    _hf_file(cache, "org/Tiny-GGUF", COMMIT_OLD, "tiny-Q4_0.gguf", "a" * 64)
    _hf_file(cache, "org/Tiny-GGUF", COMMIT_MAIN, "tiny-Q4_0.gguf", "a" * 64)
    (cache / "models--org--Tiny-GGUF" / "refs").mkdir()
    (cache / "models--org--Tiny-GGUF" / "refs" / "main").write_text(COMMIT_MAIN)
    # A split model: only the first part is offered; a projector is not a language model.
    repo2 = "other/Split-GGUF"
    _hf_file(cache, repo2, COMMIT_MAIN, "big/big-Q8_0-00001-of-00002.gguf", "b" * 64)
    _hf_file(cache, repo2, COMMIT_MAIN, "big/big-Q8_0-00002-of-00002.gguf", "c" * 64)
    _hf_file(cache, repo2, COMMIT_MAIN, "mmproj-model-f16.gguf", "d" * 64)
    # A download in progress lives in blobs/ only; a snapshot link whose blob is gone.
    (cache / "models--other--Split-GGUF" / "blobs" / ("e" * 64 + ".incomplete")).write_bytes(
        b"GGUF")
    _hf_file(cache, repo2, COMMIT_MAIN, "gone.gguf", "f" * 64, write=False)
    # Not a model repository.
    (cache / "datasets--x--y").mkdir()
    return cache


@pytest.fixture
def lmstudio(tmp_path: Path) -> Path:
    root = tmp_path / "lmstudio" / "models"
    _gguf(root / "publisher" / "repo" / "model-Q4_K_M.gguf")
    (root / "publisher" / "repo" / "model-Q8_0.gguf.part").write_bytes(b"GGUF partial")
    (root / "publisher" / "repo" / "notes.txt").write_text("hello")
    _gguf(root / ".hidden" / "secret.gguf")
    # A symlink loop must not be followed.
    (root / "publisher" / "loop").symlink_to(root)
    # Deeper than the walk goes.
    _gguf(root / "a" / "b" / "c" / "d" / "e" / "f" / "g" / "deep.gguf")
    (root / "empty.gguf").write_bytes(b"")
    return root


def test_hf_cache_layout(hf_cache: Path) -> None:
    found = discover([], hf_cache_path=hf_cache)
    by_name = {f.name: f for f in found}
    assert set(by_name) == {"tiny-Q4_0.gguf", "big-Q8_0-00001-of-00002.gguf"}
    tiny = by_name["tiny-Q4_0.gguf"]
    assert tiny.source == "hf-cache" and tiny.repo_id == "org/Tiny-GGUF"
    # The file is listed once, from the snapshot refs/main points at.
    assert tiny.revision == COMMIT_MAIN and tiny.filename == "tiny-Q4_0.gguf"
    assert tiny.quantization == "Q4_0"
    assert tiny.path.endswith(f"snapshots/{COMMIT_MAIN}/tiny-Q4_0.gguf")
    big = by_name["big-Q8_0-00001-of-00002.gguf"]
    assert big.parts == 2 and big.filename == "big/big-Q8_0-00001-of-00002.gguf"


def test_hf_cache_location_follows_the_environment(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache))
    assert hf_cache_dir() == hf_cache
    assert {f.name for f in discover([])} == {"tiny-Q4_0.gguf", "big-Q8_0-00001-of-00002.gguf"}
    assert discover([], hf_cache=False) == []


def test_folder_walk_is_bounded_and_skips_partials(lmstudio: Path) -> None:
    found = discover([lmstudio], hf_cache=False)
    assert [f.name for f in found] == ["model-Q4_K_M.gguf"]
    assert found[0].source == "folder" and found[0].folder == str(lmstudio)
    assert found[0].repo_id is None
    # A folder that does not exist is no error.
    assert discover([lmstudio / "nope"], hf_cache=False) == []


def test_known_files_are_marked_and_symlinked_copies_listed_once(
    lmstudio: Path, tmp_path: Path
) -> None:
    model = lmstudio / "publisher" / "repo" / "model-Q4_K_M.gguf"
    other = tmp_path / "other"
    other.mkdir()
    (other / "link.gguf").symlink_to(model)
    found = discover([lmstudio, other], hf_cache=False, known_paths=[str(model)])
    assert len(found) == 1 and found[0].registered


def test_register_in_place_read_only(hf_cache: Path, lmstudio: Path, tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.db")
    found = {f.name: f for f in discover([lmstudio], hf_cache_path=hf_cache)}
    before = {p: p.stat().st_mtime_ns for p in lmstudio.rglob("*.gguf")}

    folder_record = register_discovered(db, found["model-Q4_K_M.gguf"])
    assert folder_record.source == "discovered"
    assert folder_record.path == found["model-Q4_K_M.gguf"].path
    assert folder_record.repo_id is None

    hf_record = register_discovered(db, found["tiny-Q4_0.gguf"])
    # The snapshot path is kept (it names the file); the hub origin is recorded.
    assert hf_record.path == found["tiny-Q4_0.gguf"].path
    assert (hf_record.repo_id, hf_record.revision, hf_record.hub_filename) == (
        "org/Tiny-GGUF", COMMIT_MAIN, "tiny-Q4_0.gguf")
    assert not hf_record.owns_file

    # Nothing was copied into slmdesk's home, nothing changed where the files are.
    assert {p: p.stat().st_mtime_ns for p in lmstudio.rglob("*.gguf")} == before
    assert len(ModelRepository(db).list()) == 2
    again = discover([lmstudio], hf_cache_path=hf_cache,
                     known_paths=[m.path for m in ModelRepository(db).list()])
    assert {f.name for f in again if f.registered} == {"model-Q4_K_M.gguf", "tiny-Q4_0.gguf"}
    db.close()


def test_register_refuses_what_is_not_a_model(tmp_path: Path, lmstudio: Path) -> None:
    from dataclasses import replace

    db = open_database(tmp_path / "t.db")
    good = discover([lmstudio], hf_cache=False)[0]
    with pytest.raises(InvalidInputError, match="projector"):
        register_discovered(db, replace(good, path=str(tmp_path / "mmproj-x.gguf")))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 10)
    with pytest.raises(ModelFileError):
        register_discovered(db, replace(good, path=str(broken)))
    assert ModelRepository(db).list() == []
    db.close()
