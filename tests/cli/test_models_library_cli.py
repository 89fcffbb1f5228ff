"""`slmdesk models info/rm/catalog/discover/folders` and the memory refusal, in subprocesses."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from slmdesk.catalog.fit import format_bytes
from tests.cli.test_cli import THREADS, TINY_METADATA, TINY_TENSORS, Cli, assert_one_line_error

# The fixtures of test_cli.py, used here by name.
from tests.cli.test_cli import bare_cli as bare_cli
from tests.cli.test_cli import cli as cli
from tests.cli.test_cli import decoy as decoy
from tests.gguf_factory import write_gguf

STARTER_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def _tiny(path: Path, **meta: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(path, metadata={**TINY_METADATA, **meta}, tensors=TINY_TENSORS)
    return path


def _mark_downloaded(cli: Cli, model_id: str) -> None:
    """Make a registered model one that slmdesk downloaded (as `models pull` leaves it)."""
    assert cli.home is not None
    con = sqlite3.connect(cli.home / "data" / "slmdesk.db")
    with con:
        con.execute("UPDATE models SET source = 'download', repo_id = 'org/tiny', "
                    "revision = ?, hub_filename = 'tiny.gguf' WHERE id = ?",
                    ["a" * 40, model_id])
    con.close()


def test_catalog_lists_entries_with_fit_verdicts(bare_cli: Cli) -> None:
    entries = bare_cli.json("models", "catalog", "--json")
    ids = {e["id"] for e in entries}
    assert "smollm2-135m-instruct-q4_1" in ids and "phi-3.5-mini-instruct-q4_k_m" in ids
    for e in entries:
        assert e["fit"]["verdict"] in ("fits", "tight", "wont_fit")
        assert e["fit"]["total"] > e["fit"]["weights"] > 0
        assert e["verification_note"]
        assert e["installed"] is False
    text = bare_cli.run("models", "catalog").stdout
    line = next(ln for ln in text.splitlines() if "SmolLM2 135M Instruct (Q4_1)" in ln)
    # The same wording as `models list` and the library's Fit cell.
    assert " · " in line and line.endswith(" at 4,096 tokens")


def test_info_of_the_starter_with_sha256(cli: Cli, model_path: Path) -> None:
    (starter,) = cli.models()
    assert starter["sha256"] is None
    details = cli.json("models", "info", starter["id"], "--sha256", "--json")
    assert details["sha256"] == STARTER_SHA256
    assert details["catalog"]["id"] == "smollm2-135m-instruct-q4_1"
    assert details["licence"] == "Apache-2.0" and details["source"] == "starter"
    assert details["fit"]["verdict"] in ("fits", "tight")
    assert "<|im_start|>user" in details["template_preview"]
    # The hash is kept on the record.
    assert cli.models()[0]["sha256"] == STARTER_SHA256
    text = cli.run("models", "info", "SmolLM2").stdout
    assert STARTER_SHA256 in text and "sample conversation" in text
    # And the catalog now shows it as installed.
    entries = {e["id"]: e for e in cli.json("models", "catalog", "--json")}
    assert entries["smollm2-135m-instruct-q4_1"]["installed"] is True


def test_rm_of_an_imported_model_leaves_the_file(bare_cli: Cli, tmp_path: Path) -> None:
    path = _tiny(tmp_path / "mine" / "tiny.gguf")
    bare_cli.run("models", "import", str(path))
    proc = bare_cli.run("models", "rm", "Tiny Test")
    assert proc.stdout == f"Removed Tiny Test; its file stays at {path.resolve()}\n"
    assert path.is_file() and bare_cli.models() == []
    # --delete-file asks first; without a terminal it needs --yes.
    bare_cli.run("models", "import", str(path))
    proc = bare_cli.run("models", "rm", "Tiny Test", "--delete-file", check=False)
    assert_one_line_error(proc, "add --yes")
    assert path.is_file() and len(bare_cli.models()) == 1
    out = bare_cli.json("models", "rm", "Tiny Test", "--delete-file", "--yes", "--json")
    assert out["freed_bytes"] > 0 and out["deleted_paths"] == [str(path.resolve())]
    assert not path.exists()


def test_rm_of_a_downloaded_model_deletes_it_and_prints_the_space_freed(
    bare_cli: Cli,
) -> None:
    assert bare_cli.home is not None
    models_dir = bare_cli.home / "data" / "models"
    path = _tiny(models_dir / "org" / "tiny" / "tiny.gguf")
    model = bare_cli.json("models", "import", str(path), "--json")
    _mark_downloaded(bare_cli, model["id"])
    size = path.stat().st_size
    listing = bare_cli.run("models", "list").stdout
    assert listing.splitlines()[-1] == (
        f"total disk usage: {format_bytes(size)} ({format_bytes(size)} downloaded by slmdesk)")
    proc = bare_cli.run("models", "rm", model["id"], check=False)
    assert_one_line_error(proc, "deletes its file", "--yes")
    assert path.is_file()
    proc = bare_cli.run("models", "rm", model["id"], "--yes")
    assert proc.stdout == f"Removed Tiny Test; {format_bytes(size)} freed\n"
    assert not path.exists() and not (models_dir / "org").exists()
    assert bare_cli.models() == []


def test_rm_of_the_starter_refuses_to_delete_its_file(cli: Cli, model_path: Path) -> None:
    proc = cli.run("models", "rm", "SmolLM2", "--delete-file", "--yes", check=False)
    assert_one_line_error(proc, "starter model that ships with slmdesk")
    assert model_path.is_file() and len(cli.models()) == 1


def test_folders_and_discover_register_in_place(bare_cli: Cli, tmp_path: Path) -> None:
    lmstudio = tmp_path / "lmstudio" / "models"
    found_file = _tiny(lmstudio / "pub" / "repo" / "tiny-Q4_0.gguf")
    (lmstudio / "pub" / "repo" / "tiny-Q8_0.gguf.part").write_bytes(b"GGUF")
    # A Hugging Face cache with the real layout: a snapshot symlink to a blob.
    hf_home = tmp_path / "hf"
    repo = hf_home / "hub" / "models--org--Tiny-GGUF"
    blob = _tiny(repo / "blobs" / ("a" * 64))
    snap = repo / "snapshots" / ("b" * 40)
    snap.mkdir(parents=True)
    (snap / "tiny-Q4_K_M.gguf").symlink_to(os.path.relpath(blob, snap))
    bare_cli.env["HF_HOME"] = str(hf_home)
    bare_cli.env.pop("HF_HUB_CACHE", None)

    assert bare_cli.run("models", "folders", "list").stdout.startswith("No library folders")
    bare_cli.run("models", "folders", "add", str(lmstudio))
    assert bare_cli.json("models", "folders", "list", "--json")["folders"] == [str(lmstudio)]
    found = bare_cli.json("models", "discover", "--json")
    by_name = {f["name"]: f for f in found}
    assert set(by_name) == {"tiny-Q4_0.gguf", "tiny-Q4_K_M.gguf"}
    assert by_name["tiny-Q4_K_M.gguf"]["repo_id"] == "org/Tiny-GGUF"
    assert by_name["tiny-Q4_0.gguf"]["source"] == "folder"

    registered = bare_cli.json("models", "discover", "--register", str(found_file), "--json")
    assert [r["path"] for r in registered] == [str(found_file)]
    assert registered[0]["source"] == "discovered"
    rest = bare_cli.json("models", "discover", "--all", "--json")
    assert [r["repo_id"] for r in rest] == ["org/Tiny-GGUF"]
    assert rest[0]["path"] == str(snap / "tiny-Q4_K_M.gguf")
    assert bare_cli.run("models", "discover", "--all").stdout == "Nothing new to register.\n"
    # Nothing was copied into slmdesk's home.
    assert bare_cli.home is not None
    assert not list(bare_cli.home.rglob("*.gguf"))

    proc = bare_cli.run("models", "discover", "--register", str(tmp_path / "nope.gguf"),
                        check=False)
    assert_one_line_error(proc, "is not among the files found")
    bare_cli.run("models", "folders", "remove", str(lmstudio))
    assert bare_cli.json("models", "folders", "list", "--json")["folders"] == []
    proc = bare_cli.run("models", "folders", "remove", str(lmstudio), check=False)
    assert_one_line_error(proc, "is not a library folder")
    assert found_file.is_file()


def test_a_model_too_big_for_memory_is_refused_unless_forced(
    bare_cli: Cli, tmp_path: Path
) -> None:
    # The header claims a model whose KV cache alone is a terabyte; the file is tiny.
    # (512 layers: llama.cpp aborts the process on more, see LLAMA_MAX_LAYERS.)
    huge = _tiny(tmp_path / "huge.gguf", **{
        "general.name": "Huge", "llama.block_count": 512,
        "llama.embedding_length": 262_144, "llama.attention.head_count": 64,
    })
    bare_cli.run("models", "import", str(huge))
    for command in (["chat", *THREADS, "hello"],
                    ["classify", *THREADS, "--labels", "a,b", "some text"]):
        proc = bare_cli.run(*command, check=False)
        line = assert_one_line_error(proc, "Not enough memory for Huge", "KV cache",
                                     "at 2,048 tokens", "of RAM is available", "--force")
        assert "TiB" in line
        # --force gets past the check: now llama.cpp itself refuses the fake file.
        proc = bare_cli.run(*command, "--force", check=False)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert "Not enough memory" not in proc.stderr
    # Nothing was recorded for a load that did not happen.
    assert bare_cli.models()[0]["measured_memory_bytes"] is None


def test_a_load_records_the_measured_memory(cli: Cli, model_path: Path) -> None:
    cli.chat("--max-tokens", "4", "Hi")
    (model,) = cli.models()
    assert model["measured_memory_bytes"] > 50_000_000
    assert model["estimated_memory_bytes"] > 50_000_000
    assert model["measured_context"] == 4096 and model["last_loaded_at"]
    details = cli.json("models", "info", model["id"], "--json")
    note = details["memory"]["note"]
    assert note.startswith(f"{format_bytes(model['measured_memory_bytes'])} once loaded at "
                           "4,096 tokens (")
    estimated, measured = model["estimated_memory_bytes"], model["measured_memory_bytes"]
    assert ("as estimated" in note if round(abs(estimated - measured) * 100 / measured) == 0
            else ("% high)" if estimated > measured else "% low)") in note)


def test_list_and_info_show_the_same_memory_figures_in_the_same_words(
    bare_cli: Cli, tmp_path: Path,
) -> None:
    """One figure, one wording: `models list` and `models info` agree (issue 16, defect 6)."""
    assert bare_cli.home is not None
    model = bare_cli.json("models", "import", str(_tiny(tmp_path / "tiny.gguf")), "--json")
    mib = 1024 * 1024
    con = sqlite3.connect(bare_cli.home / "data" / "slmdesk.db")
    with con:  # a load at the context a load uses (2,048: trained length) measured
        con.execute("UPDATE models SET estimated_memory_bytes = ?, measured_memory_bytes = ?,"
                    " measured_context = 2048 WHERE id = ?", [207 * mib, 202 * mib, model["id"]])
    con.close()
    details = bare_cli.json("models", "info", model["id"], "--json")
    note = details["memory"]["note"]  # the comparison stays in the JSON, as data
    assert note == "202 MiB once loaded at 2,048 tokens (estimated 207 MiB, 2 % high)"
    info = bare_cli.run("models", "info", model["id"]).stdout
    [line] = [ln for ln in bare_cli.run("models", "list").stdout.splitlines()
              if ln.startswith(model["id"])]
    fit = details["fit"]
    assert fit["context"] == 2048 and fit["measured"] == 202 * mib
    # One figure: the measured memory plus what a long prompt adds, in every place.
    assert fit["figure"] == 202 * mib + fit["total"] - fit["at_load"]
    figure = format_bytes(fit["figure"])
    assert f"needs about {figure} at 2,048 tokens (measured " in fit["sentence"]
    # The sentence ends with the RAM available now, which moves between the two commands.
    needs = fit["sentence"].split("; ")[0]
    assert needs in info and "measured memory:" not in info
    verdict = {"fits": "fits", "tight": "tight", "wont_fit": "won't fit"}[fit["verdict"]]
    assert f"  {verdict} · {figure} at 2,048 tokens" in line
    assert "once loaded" not in line and "measured" not in line


def test_models_list_has_a_disk_usage_line(bare_cli: Cli, tmp_path: Path) -> None:
    big = tmp_path / "big.gguf"
    _tiny(big)
    with open(big, "ab") as f:  # padding after the tensor data is allowed
        f.write(b"\0" * (3 * 1024 * 1024))
    bare_cli.run("models", "import", str(big))
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(big, copy)
    bare_cli.run("models", "import", str(copy))
    last = bare_cli.run("models", "list").stdout.splitlines()[-1]
    assert last == "total disk usage: 6 MiB (0 MiB downloaded by slmdesk)"


def test_rename_and_the_same_model_notice_on_import(bare_cli: Cli, tmp_path: Path) -> None:
    """Issue 16, defect 7: a rename, and a notice (not a refusal) for a copy."""
    path = _tiny(tmp_path / "tiny.gguf")
    model = bare_cli.json("models", "import", str(path), "--json")
    assert model["same_as"] == []
    proc = bare_cli.run("models", "rename", model["id"], "My tiny model")
    assert proc.stdout == f"Renamed Tiny Test to My tiny model ({model['id']})\n"
    assert [m["name"] for m in bare_cli.models()] == ["My tiny model"]
    proc = bare_cli.run("models", "rename", model["id"], " ", check=False)
    assert_one_line_error(proc, "cannot be empty")
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(path, copy)
    out = bare_cli.run("models", "import", str(copy)).stdout
    assert out.splitlines()[1] == (
        f"Note: It is the same model as My tiny model (same size and header), already "
        f"installed from {path.resolve()}.")
    assert len(bare_cli.models()) == 2  # registered all the same
