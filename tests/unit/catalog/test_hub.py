"""Hub search, repo files and the architecture check, against the local fake hub."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from slmdesk.catalog import hub
from slmdesk.engine.gguf import read_gguf_prefix, supported_architectures
from slmdesk.errors import InvalidInputError, NetworkError, NotFoundError
from tests.hubserver import (
    ALIEN_FILE,
    ALIEN_REPO,
    GATED_FILE,
    GATED_REPO,
    GATED_TOKEN,
    SMOL_FILE,
    SMOL_REPO,
    TINY_FILES,
    TINY_REPO,
    FakeHub,
)

# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "quant"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-0.5b-instruct-q8_0.gguf", "Q8_0"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("gemma-3-270m-it-IQ2_XS.gguf", "IQ2_XS"),
        ("model-F16.gguf", "F16"),
        ("model.BF16.gguf", "BF16"),
        ("phi-3-mini-Q4_0_4_4.gguf", "Q4_0_4_4"),
        ("Qwen3-30B-A3B-UD-Q4_K_XL.gguf", "Q4_K_XL"),
        ("big-model-Q5_K_S-00001-of-00003.gguf", "Q5_K_S"),
        ("Q6_K/big-model-Q6_K-00002-of-00002.gguf", "Q6_K"),
        ("IQ4_XS.gguf", "IQ4_XS"),
        ("mmproj-model-f16.gguf", "F16"),
        ("model.gguf", None),
        ("XQ4_K_M.gguf", None),  # part of another word
    ],
)
def test_parse_quantization(filename: str, quant: str | None) -> None:
    assert hub.parse_quantization(filename) == quant


def test_split_part() -> None:
    assert hub.split_part("m-Q4_K_M-00002-of-00005.gguf") == (2, 5)
    assert hub.split_part("m-Q4_K_M.gguf") is None


@pytest.mark.parametrize(
    "name",
    [
        "../evil.gguf",
        "a/../../evil.gguf",
        "/etc/evil.gguf",
        "C:evil.gguf",
        "c:/models/evil.gguf",
        "sub\\evil.gguf",
        "evil\0.gguf",
        "evil\n.gguf",
        "./evil.gguf",
        "a//evil.gguf",
        ".hidden/evil.gguf",
        "model.bin",
        "model.gguf.exe",
        "",
        "x" * 600 + ".gguf",
    ],
)
def test_safe_filename_refuses(name: str) -> None:
    with pytest.raises(InvalidInputError, match="Refusing the file name"):
        hub.safe_filename(name)


@pytest.mark.parametrize("name", ["model.Q4_K_M.gguf", "Q4_K_M/model-00001-of-00002.GGUF"])
def test_safe_filename_accepts(name: str) -> None:
    assert hub.safe_filename(name) == name


@pytest.mark.parametrize("repo_id", ["noslash", "a/b/c", "../x", "a/..", "-a/b", "a/b c"])
def test_validate_repo_id_refuses(repo_id: str) -> None:
    with pytest.raises(InvalidInputError):
        hub.validate_repo_id(repo_id)


# -- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "field"),
    [("downloads", "downloads"), ("likes", "likes"), ("recent", "last_modified")],
)
def test_search_sort_orders(hub_server: FakeHub, sort: hub.SortOrder, field: str) -> None:
    results = hub.search_models("", sort=sort)
    expected = sorted(hub_server.repos.values(), key=lambda s: getattr(s, field), reverse=True)
    assert [r.repo_id for r in results] == [s.repo_id for s in expected]
    assert len(results) >= 3
    values = [getattr(r, field) for r in results]
    assert values == sorted(values, reverse=True)
    # The parameters really went over the wire as the Hub API spells them.
    query = hub_server.requests[-1][1]
    assert "filter=gguf" in query
    assert f"sort={ {'recent': 'lastModified'}.get(sort, sort) }" in query


def test_search_query_limit_and_fields(hub_server: FakeHub) -> None:
    results = hub.search_models("gguf", limit=2)
    assert len(results) == 2
    gated = hub.search_models("gated")
    assert [r.repo_id for r in gated] == [GATED_REPO]
    assert gated[0].gated is True
    assert "gguf" in gated[0].tags
    assert gated[0].last_modified is not None and gated[0].last_modified.startswith("2023-01-01")
    assert hub.search_models("no-such-model-anywhere") == []


def test_search_refuses_bad_arguments(hub_server: FakeHub) -> None:
    with pytest.raises(InvalidInputError):
        hub.search_models("x", sort="stars")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        hub.search_models("x", limit=0)


# -- files ---------------------------------------------------------------------------------------


def test_list_gguf_files(hub_server: FakeHub) -> None:
    commit, files = hub.list_gguf_files(TINY_REPO)
    assert commit == hub_server.repos[TINY_REPO].commit
    assert sorted(f.filename for f in files) == sorted(TINY_FILES)  # README.md left out
    for f in files:
        path = hub_server.repos[TINY_REPO].files[f.filename]
        assert f.size_bytes == path.stat().st_size
        assert f.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert f.quantization == hub.parse_quantization(f.filename)
        assert f.revision == commit
        assert f.architecture is None  # this repo has no gguf summary


def test_list_gguf_files_pins_a_revision(hub_server: FakeHub) -> None:
    commit, _ = hub.list_gguf_files(TINY_REPO, revision="main")
    again, _ = hub.list_gguf_files(TINY_REPO, revision=commit)
    assert again == commit
    with pytest.raises(NotFoundError, match="revision"):
        hub.list_gguf_files(TINY_REPO, revision="no-such-branch")


def test_list_gguf_files_unknown_repo(hub_server: FakeHub) -> None:
    with pytest.raises(NotFoundError, match="No model repository"):
        hub.list_gguf_files("nobody/nothing-GGUF")


def test_architecture_from_the_hub_summary_needs_no_file_bytes(
    hub_server: FakeHub, model_path: Path
) -> None:
    _, files = hub.list_gguf_files(SMOL_REPO)
    (smol,) = files
    assert smol.architecture == "llama"
    ok, message = hub.check_architecture(smol)
    assert ok, message
    assert hub_server.file_requests() == []


def test_architecture_from_a_prefix_of_the_file(hub_server: FakeHub, model_path: Path) -> None:
    _, files = hub.list_gguf_files(SMOL_REPO)
    smol = files[0]
    bare = hub.HubFile(smol.repo_id, smol.filename, smol.revision, smol.size_bytes,
                       smol.sha256, smol.quantization, architecture=None)
    assert hub.fetch_architecture(bare) == "llama"
    # SmolLM2's tokenizer metadata is over 1 MiB: the prefix had to grow, yet stay small.
    sent = hub_server.bytes_sent(SMOL_FILE)
    assert 0 < sent <= hub.PREFIX_MAX_BYTES
    assert sent < model_path.stat().st_size // 10
    assert all(r.status == 206 for r in hub_server.file_requests())


def test_unsupported_architecture_is_refused_before_download(hub_server: FakeHub) -> None:
    _, (alien,) = hub.list_gguf_files(ALIEN_REPO)
    ok, message = hub.check_architecture(alien)
    assert not ok
    assert "alienformer" in message and "needs a newer engine" in message
    size = hub_server.size(ALIEN_REPO, ALIEN_FILE)
    assert hub_server.bytes_sent(ALIEN_FILE) <= min(size, hub.PREFIX_FIRST_BYTES)


def test_read_gguf_prefix_grows_then_answers(model_path: Path) -> None:
    data = model_path.read_bytes()[: 4 << 20]
    size = model_path.stat().st_size
    assert read_gguf_prefix(data[:4096], file_size=size, label="x") is None
    meta = read_gguf_prefix(data, file_size=size, label="x",
                            known_architectures=supported_architectures())
    assert meta is not None and meta["general.architecture"] == "llama"


# -- access, offline, failures -----------------------------------------------------------------


def test_gated_repo_without_token_is_a_clear_error(hub_server: FakeHub) -> None:
    with pytest.raises(NetworkError, match=r"gated repository.*HF_TOKEN") as info:
        hub.open_hub_file(GATED_REPO, GATED_FILE, "main")
    assert isinstance(info.value, hub.HTTPStatusError) and not info.value.transient


def test_gated_repo_with_the_persons_token(
    hub_server: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", GATED_TOKEN)
    response = hub.open_hub_file(GATED_REPO, GATED_FILE, "main", start=0, end=3)
    try:
        assert response.status == 206
        assert response.read_at_most(10) == b"GGUF"
    finally:
        response.close()


def test_offline_mode_is_respected(hub_server: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NetworkError, match="HF_HUB_OFFLINE"):
        hub.search_models("tiny")
    with pytest.raises(NetworkError, match="HF_HUB_OFFLINE"):
        hub.list_gguf_files(TINY_REPO)
    with pytest.raises(NetworkError, match="HF_HUB_OFFLINE"):
        hub.open_hub_file(TINY_REPO, TINY_FILES[0], "main")
    assert hub_server.requests == []


def test_unreachable_hub_is_a_network_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(hub.HubUnreachableError, match="Cannot reach the Hugging Face Hub"):
        hub.list_gguf_files(TINY_REPO)
    with pytest.raises(hub.HubUnreachableError, match=r"Cannot reach 127\.0\.0\.1"):
        hub.open_hub_file(TINY_REPO, TINY_FILES[0], "main")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def _count_connects(monkeypatch: pytest.MonkeyPatch, port: int) -> list[object]:
    """Every connection attempt to ``port`` (through conftest's guard)."""
    attempts: list[object] = []
    guarded = socket.socket.connect

    def counting(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple) and address[1] == port:
            attempts.append(address)
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", counting)
    return attempts


def test_refused_connection_is_offline_and_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """huggingface_hub retries a failed connection 5 times (about 24 s); slmdesk must not."""
    port = _closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    attempts = _count_connects(monkeypatch, port)
    with pytest.raises(hub.HubOfflineError, match="refused"):
        hub.search_models("tiny")
    assert len(attempts) == 1
    attempts.clear()
    with pytest.raises(hub.HubOfflineError, match="refused"):
        hub.list_gguf_files(TINY_REPO)
    assert len(attempts) == 1
    attempts.clear()
    with pytest.raises(hub.HubOfflineError, match="refused"):
        hub.open_hub_file(TINY_REPO, TINY_FILES[0], "main")
    assert len(attempts) == 1


def test_unresolvable_host_is_offline_and_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[object] = []

    def no_dns(host: object, *args: object, **kwargs: object) -> object:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.invalid")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(hub.HubOfflineError, match="could not be resolved"):
        hub.search_models("tiny")
    assert lookups == ["hub.example.invalid"]


def test_offline_reason_looks_through_wrapped_errors() -> None:
    import errno

    wrapped = RuntimeError("ConnectError")
    wrapped.__cause__ = OSError(errno.ENETUNREACH, "Network is unreachable")
    assert hub.offline_reason(wrapped) == "there is no route to it (no network)"
    assert hub.offline_reason(TimeoutError("read timed out")) is None
    assert hub.offline_reason(ConnectionResetError()) is None


def test_server_error_on_a_file_is_transient(hub_server: FakeHub) -> None:
    from tests.hubserver import Fault

    hub_server.inject(Fault("status", status=503, filename=TINY_FILES[0]))
    with pytest.raises(hub.HTTPStatusError) as info:
        hub.open_hub_file(TINY_REPO, TINY_FILES[0], "main")
    assert info.value.status == 503 and info.value.transient
    with pytest.raises(hub.HTTPStatusError) as missing:
        hub.open_hub_file(TINY_REPO, "missing.gguf", "main")
    assert missing.value.status == 404 and not missing.value.transient
