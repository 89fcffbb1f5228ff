"""Open a remote engine from what the person typed (a saved engine's name, or a URL), or for
a model the window's model picker lists (``RemoteModel``)."""

from __future__ import annotations

import dataclasses

import sqlite_utils

from slmdesk.engine.remote.capabilities import Capabilities
from slmdesk.engine.remote.client import RemoteEngine
from slmdesk.engine.remote.http import normalise_base_url
from slmdesk.store.engines import EngineRepository, RemoteModel


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


def open_remote_model(db: sqlite_utils.Database, model: RemoteModel) -> RemoteEngine:
    """The engine serving ``model`` (the picker's choice), set to chat with that model.

    The engine's last check probed one of its models; another model it listed then is
    taken with the same findings (they describe the server, e.g. llama-server or vLLM),
    so choosing it does not probe again.
    """
    saved = EngineRepository(db).find(model.engine_name)
    if saved is None or not saved.capabilities:
        return open_remote_engine(db, model.base_url, model=model.name)
    caps = Capabilities.from_json(saved.capabilities)
    if model.name in caps.models:
        caps = dataclasses.replace(caps, model=model.name)
    return RemoteEngine(saved.base_url, saved.api_key, model=model.name, capabilities=caps)


def remote_model_of(db: sqlite_utils.Database, engine_ref: str,
                    engine: RemoteEngine) -> RemoteModel:
    """The ``RemoteModel`` that ``engine`` (opened from ``engine_ref``) chats with, named by
    its saved engine's name, else by its address (probing it if it was not yet)."""
    saved = EngineRepository(db).find(engine_ref)
    return RemoteModel(saved.name if saved else engine.base_url, engine.base_url,
                       engine.model)
