"""A Models tab on its own (no window, no model): a fresh database in the test's home."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hubserver import write_tiny_gguf


@pytest.fixture
def library(qtbot: Any, slmdesk_home: Path) -> Iterator[Any]:
    from slmdesk.paths import get_paths
    from slmdesk.store.db import open_database
    from slmdesk.ui.library.view import LibraryView

    db = open_database(get_paths().database)
    view = LibraryView(db)
    qtbot.addWidget(view)
    yield view
    view.shutdown()
    db.conn.close()


@pytest.fixture
def refused_hub(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """HF_ENDPOINT on a closed local port (a refused connection, as with no network); the
    list records every connection attempt to it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    attempts: list[object] = []
    guarded = socket.socket.connect

    def counting(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple) and address[1] == port:
            attempts.append(address)
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", counting)
    return attempts


@pytest.fixture
def tiny_models(tmp_path: Path) -> list[Path]:
    """Two small valid GGUF files (different architectures, so different headers)."""
    return [write_tiny_gguf(tmp_path / "a.gguf", "llama"),
            write_tiny_gguf(tmp_path / "b.gguf", "qwen2")]
