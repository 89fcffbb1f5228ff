"""The server's view of the model library: names as `slmdesk models list`, loads as the app does."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import sqlite_utils

from slmdesk.catalog.registry import load_registered
from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.errors import NotFoundError
from slmdesk.paths import Paths, get_paths
from slmdesk.server.config import DEFAULT_PARALLEL
from slmdesk.settings import Settings, load_settings
from slmdesk.store.db import open_database
from slmdesk.store.models import ModelRecord, ModelRepository


@dataclass(frozen=True)
class LoadOptions:
    """What `slmdesk serve` may change about the app's load settings."""

    n_threads: int | None = None
    force: bool = False  # load even when the fit estimate says it will not fit
    # Chat and completion requests decoded together (the engine's sequences); the KV cache
    # stays the app's context, shared by them.
    parallel: int = DEFAULT_PARALLEL


class ModelLibrary:
    """Reads models and settings from the app's database, one short connection per call.

    SQLite connections belong to the thread that opened them, and requests are answered
    on several threads; a connection per call keeps each on its own thread.
    """

    def __init__(self, paths: Paths | None = None) -> None:
        self.paths = paths or get_paths()
        self._loads_named: set[str] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite_utils.Database]:
        db = open_database(self.paths.database)
        try:
            yield db
        finally:
            db.close()

    def list_models(self) -> list[ModelRecord]:
        """Registered models whose file is present."""
        with self.connect() as db:
            return [m for m in ModelRepository(db).list() if os.path.isfile(m.path)]

    def find(self, ref: str) -> ModelRecord:
        """The model ``ref`` names (id, name or file name); ``NotFoundError`` otherwise."""
        with self.connect() as db:
            model = ModelRepository(db).find(ref)
        if not os.path.isfile(model.path):
            raise NotFoundError(f"The file of model '{model.name}' is missing: {model.path}.")
        return model

    def settings(self) -> Settings:
        with self.connect() as db:
            return load_settings(db)

    def name_explicitly(self, model: ModelRecord) -> None:
        """The person named this model (``serve -m``): load it even after a crashed load."""
        with self._lock:
            self._loads_named.add(model.path)

    def load(self, engine: LlamaEngine, model: ModelRecord, options: LoadOptions) -> None:
        """Load ``model`` with the app's settings, under the load guard, after the fit check.

        The same steps as the CLI's loads: a model whose last load took its process down
        is loaded only when named explicitly; what the load took is recorded.
        """
        with self._lock:
            explicit = model.path in self._loads_named
        with self.connect() as db:
            load_registered(engine, model, db, explicit=explicit, threads=options.n_threads,
                            force=options.force, parallel=options.parallel,
                            data_dir=self.paths.data_dir,
                            retry=f"To try it again, name it: slmdesk serve -m {model.id}")
