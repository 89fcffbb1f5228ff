"""The model the app works with: which one is chosen, whether it is loaded, and its loads.

One ``ModelSession`` per window. It loads models on the engine thread (``LoadJob``), keeps
the load guard (a load that took the app down is not repeated by itself), refuses a model
that will not fit in memory unless the person insists, and unloads an idle model after the
minutes the settings say. Every tab follows it through one signal, ``changed``; what a person
must be told comes out as signals too (``refused``, ``load_failed``), and the window shows it.

A model on a remote engine (``RemoteModel``, Settings → Engines) can be chosen instead:
nothing loads here, the chat streams from the engine opened for it (``remote``, a
``RemoteChoice``), and the tabs that classify see that model instead of the local one
(``choice``, ``follow``), so they never use a model the picker does not show.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlite_utils
from PySide6.QtCore import QObject, QTimer, Signal

from slmdesk.catalog import fit
from slmdesk.catalog.registry import check_model_present
from slmdesk.engine.llama_engine import ModelInfo
from slmdesk.errors import NotEnoughMemoryError, UserFacingError
from slmdesk.loadguard import LoadGuard, crash_message
from slmdesk.paths import get_paths
from slmdesk.remote.engines import open_remote_model
from slmdesk.settings import load_params_for, load_settings, save_settings
from slmdesk.store.engines import RemoteModel
from slmdesk.store.models import ModelRecord
from slmdesk.ui.common.model_choice import ModelChoice, RemoteChoice
from slmdesk.ui.engine_thread import EngineClient, LoadJob, bind

log = logging.getLogger(__name__)

REPLY_RUNNING = "Stop the current reply before switching models."  # shown until it ends


class ModelSession(QObject):
    """The chosen model (``model``) and, once it is loaded, what was loaded (``loaded``); or
    a model on a remote engine chosen instead (``remote``)."""

    changed = Signal()  # model or loaded changed
    loading_started = Signal(str)  # path
    loaded_now = Signal(object)  # ModelInfo, after a load this session asked for
    load_failed = Signal(str)  # message
    # A load that was not started, and why; True when "Load anyway" may override it.
    refused = Signal(str, bool)
    idle_unloaded = Signal(int)  # minutes

    def __init__(self, db: sqlite_utils.Database, engine: EngineClient,
                 *, busy: Callable[[], bool] = lambda: False,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.engine = engine
        # Whether a reply is being written: no switching or idle unload meanwhile.
        self._busy = busy
        self.model: ModelRecord | None = None
        self.loaded: ModelInfo | None = None
        # A model on a remote engine, chosen instead of ``model`` (which stays as it was).
        self.remote: RemoteChoice | None = None
        self.load_job: LoadJob | None = None
        self.last_load_s: float | None = None
        self.idle_unloaded_model = False  # unloaded while idle: the next send loads it again
        self.fit_refused: ModelRecord | None = None
        self._fit_override: str | None = None  # model id the person chose to load anyway
        self._load_started = 0.0
        # Why the model must stay loaded while idle (the server panel serves it): reasons.
        self._kept_loaded_for: set[str] = set()
        # Marks a load in progress, so that a load that kills the app is not repeated.
        self.load_guard = LoadGuard(get_paths().data_dir)
        self.idle_timer = QTimer(self)
        self.idle_timer.setObjectName("idle_unload_timer")
        self.idle_timer.setSingleShot(True)
        self.idle_timer.timeout.connect(self.unload_if_idle)
        # Any engine activity (any tab's) postpones the idle unload.
        engine.busy.connect(self.arm_idle_timer)

    @property
    def loading(self) -> bool:
        return self.load_job is not None

    @property
    def choice(self) -> ModelChoice:
        """The model the tabs that classify use: the remote one while it is chosen (no local
        model then), else the local one and what was loaded of it."""
        if self.remote is not None:
            return ModelChoice(remote=self.remote)
        return ModelChoice(self.model, self.loaded)

    def follow(self, set_model: Callable[[ModelChoice], None]) -> None:
        """Call ``set_model(choice)`` now and whenever the session changes."""
        def tell() -> None:
            set_model(self.choice)

        self.changed.connect(tell)
        tell()

    def select_remote(self, model: RemoteModel) -> bool:
        """Chat with ``model`` on its remote engine; nothing loads (or unloads) here."""
        if self._busy():
            self.refused.emit(REPLY_RUNNING, False)
            return False
        self.remote = RemoteChoice(model, open_remote_model(self.db, model))
        self.fit_refused = None
        self.changed.emit()
        return True

    def select(self, model: ModelRecord, *, automatic: bool = False) -> bool:
        """Load ``model`` on the engine thread (switching from any loaded one).

        ``automatic`` (the start-up load) skips a model whose last load took the app down
        and says so; picking it (not automatic) tries again. Returns whether a load started;
        when not, ``refused`` said why.
        """
        if self._busy():
            self.refused.emit(REPLY_RUNNING, False)
            return False
        if self.remote is not None and self.loaded is not None and self.model is not None \
                and self.model.id == model.id:
            # Back from a remote model to the local one, still loaded: nothing to load.
            self.remote = None
            self.changed.emit()
            self.loaded_now.emit(self.loaded)
            return True
        try:
            check_model_present(model)
        except UserFacingError as exc:
            self.refused.emit(exc.message, False)
            return False
        crashed = self.load_guard.crash_for(model.path)
        if crashed is not None and automatic:
            self.model = model
            self.changed.emit()
            self.refused.emit(crash_message(
                crashed, retry="Pick it in the model list to try again, or choose another."),
                False)
            return False
        if crashed is not None:
            self.load_guard.forget(model.path)
        load = load_params_for(self.db, model.id)  # the model's own context where it has one
        try:
            # The model loaded now is freed before the new one loads.
            reclaim = (self.model.measured_memory_bytes or 0) if (
                self.model is not None and self.loaded is not None) else 0
            fit.check_fit(model, load.max_context, force=self._fit_override == model.id,
                          reclaimable=reclaim)
        except NotEnoughMemoryError as exc:
            self.fit_refused = model
            self.refused.emit(exc.message.replace(" (--force on the command line)", "")
                              + " Use “Load anyway” to try regardless.", True)
            return False
        self.fit_refused = None
        self.remote = None
        self.model = model
        self.loaded = None
        self.idle_unloaded_model = False
        self.idle_timer.stop()
        self.changed.emit()
        self._load_started = time.monotonic()
        self.load_guard.begin(model.path, model_id=model.id, model_name=model.name)
        self.load_job = self.engine.load(model.path, load)
        bind(self.load_job, started=self._on_started, loaded=self._on_loaded,
             failed=self._on_failed)
        return True

    def load_anyway(self) -> bool:
        """Load the model the fit check refused, regardless."""
        model = self.fit_refused
        if model is None:
            return False
        self._fit_override = model.id
        return self.select(model)

    def _on_started(self, _job: LoadJob, path: str) -> None:
        self._load_started = time.monotonic()
        self.loading_started.emit(path)

    def _on_loaded(self, job: LoadJob, info: ModelInfo) -> None:
        if job is not self.load_job:
            return  # a load that another one replaced
        self.load_job = None
        self.load_guard.end()
        self.loaded = info
        self.last_load_s = time.monotonic() - self._load_started
        if self.model is not None:
            settings = load_settings(self.db)
            settings.default_model_id = self.model.id
            save_settings(self.db, settings)
            try:
                fit.record_measured_memory(self.db, self.model.id, info, self.engine.engine.gguf)
            except Exception:  # a measurement must never break a load (logged)
                log.exception("recording the measured memory failed")
        self.changed.emit()
        self.loaded_now.emit(info)

    def _on_failed(self, job: LoadJob, message: str) -> None:
        if job is not self.load_job:
            return
        self.load_job = None
        self.load_guard.end()
        self.changed.emit()
        self.load_failed.emit(message)

    # idle unload ------------------------------------------------------------------------
    def arm_idle_timer(self) -> None:
        minutes = load_settings(self.db).idle_unload_minutes
        if minutes > 0 and self.loaded is not None:
            self.idle_timer.start(minutes * 60_000)
        else:
            self.idle_timer.stop()

    def keep_loaded(self, reason: str, keep: bool = True) -> None:
        """While any ``reason`` holds (e.g. "server"), the idle unload leaves the model."""
        if keep:
            self._kept_loaded_for.add(reason)
        else:
            self._kept_loaded_for.discard(reason)

    def unload_if_idle(self) -> None:
        """Free the model's memory; the next send loads it again."""
        if self.loaded is None or self._busy() or self.load_job is not None \
                or self._kept_loaded_for:
            return
        self.engine.unload()
        self.loaded = None
        self.idle_unloaded_model = True
        self.changed.emit()
        self.idle_unloaded.emit(load_settings(self.db).idle_unload_minutes)
