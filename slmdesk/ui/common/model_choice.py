"""The model a tab works with, as one value: a local model and what was loaded of it, or a
model on a remote engine with that engine opened for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slmdesk.engine.llama_engine import ModelInfo
    from slmdesk.engine.remote.client import RemoteEngine
    from slmdesk.store.engines import RemoteModel
    from slmdesk.store.models import ModelRecord


@dataclass(frozen=True)
class RemoteChoice:
    """A model on a remote engine (Settings → Engines), chosen in the picker, and the engine
    opened to serve it: they are chosen, and given up, together."""

    model: RemoteModel
    engine: RemoteEngine


@dataclass(frozen=True)
class ModelChoice:
    """What the tabs that classify use: the local ``model`` and, once it is loaded, what was
    loaded (``loaded``); or, instead of both, a ``remote`` model. The empty value: no model."""

    model: ModelRecord | None = None
    loaded: ModelInfo | None = None
    remote: RemoteChoice | None = None

    @property
    def name(self) -> str:
        """The chosen model's name (a remote one's label), else the loaded one's, else ""."""
        if self.remote is not None:
            return self.remote.model.label
        if self.model is not None:
            return self.model.name
        return self.loaded.name if self.loaded is not None else ""

    @property
    def remote_engine(self) -> RemoteEngine | None:
        """The engine that scores the texts when a remote model is chosen, else None (the
        local engine does)."""
        return self.remote.engine if self.remote is not None else None

    @property
    def model_id(self) -> str | None:
        """The local model's id (None when a remote model, or none, is chosen)."""
        return self.model.id if self.model is not None else None
