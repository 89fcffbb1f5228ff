"""A real `slmdesk serve` on 127.0.0.1 (random free port) for the server tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.server.config import ServerConfig
from slmdesk.server.runner import LocalServer

TOKEN = "test-token-0123456789"
ALLOWED_ORIGIN = "http://localhost:3000"


def _served(home: Path, *, with_model: bool, keep_chats: bool = False
            ) -> Iterator[LocalServer]:
    from slmdesk.catalog.registry import resolve_model
    from slmdesk.paths import get_paths
    from slmdesk.server.models import LoadOptions, ModelLibrary
    from slmdesk.startup import open_core

    # Module-scoped: set the home here too, so nothing reaches the real user directories.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLMDESK_HOME", str(home))
        core = open_core(str(home))
        model = resolve_model(core.db) if with_model else None
        core.db.close()
        config = ServerConfig(port=0, token=TOKEN, cors_origins=(ALLOWED_ORIGIN,),
                              keep_chats=keep_chats)
        server = LocalServer(config, model, library=ModelLibrary(get_paths(str(home))),
                             load_options=LoadOptions(n_threads=1)).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def served(model_path: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[LocalServer]:
    """The server with the 135M model loaded (one thread), token ``TOKEN``."""
    yield from _served(tmp_path_factory.mktemp("serve-home"), with_model=True)


@pytest.fixture(scope="module")
def served_empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The server with no model loaded: for what is refused before any model is used."""
    yield from _served(tmp_path_factory.mktemp("serve-empty"), with_model=False)


@pytest.fixture
def client(served: LocalServer) -> object:
    from openai import OpenAI

    return OpenAI(base_url=served.base_url, api_key=TOKEN, max_retries=0, timeout=60)
