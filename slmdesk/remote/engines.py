"""Open a remote engine from what the person typed: a saved engine's name, or a URL."""

from __future__ import annotations

import sqlite_utils

from slmdesk.engine.remote.capabilities import Capabilities
from slmdesk.engine.remote.client import RemoteEngine
from slmdesk.engine.remote.http import normalise_base_url
from slmdesk.store.engines import EngineRepository


def open_remote_engine(db: sqlite_utils.Database | None, engine: str,
                       api_key: str | None = None, model: str | None = None) -> RemoteEngine:
    """The engine named ``engine`` in the store (its key and last probe), else at that URL.

    ``--api-key`` overrides a saved key. An engine without a stored probe, or asked for a
    model its probe did not use, is probed on first use.
    """
    saved = EngineRepository(db).find(engine) if db is not None else None
    if saved is None:
        return RemoteEngine(normalise_base_url(engine), api_key, model=model)
    caps = Capabilities.from_json(saved.capabilities) if saved.capabilities else None
    return RemoteEngine(saved.base_url, api_key or saved.api_key, model=model,
                        capabilities=caps)
