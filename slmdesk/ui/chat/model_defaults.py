"""The chosen model's own defaults in the Chat tab: shown and edited in the settings panel,
applied to a new chat when the model picker selects a model (a saved chat keeps its own)."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils
from PySide6.QtCore import QObject

from slmdesk.catalog.fit import effective_context
from slmdesk.settings import (
    ModelDefaults,
    model_defaults,
    reset_model_defaults,
    save_model_defaults,
)
from slmdesk.ui.chat.settings_panel import SettingsPanel
from slmdesk.ui.model_session import ModelSession


class ModelDefaultsBinding(QObject):
    """Keeps the settings panel's "Defaults for MODEL" part on the session's model.

    ``is_new_chat()`` says whether the chat on screen is a new one (not saved yet): only
    then does picking a model put its defaults into the panel, which the chat starts with.
    """

    def __init__(self, db: sqlite_utils.Database, session: ModelSession, panel: SettingsPanel,
                 *, is_new_chat: Callable[[], bool], notify: Callable[[str], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.session = session
        self.panel = panel
        self.is_new_chat = is_new_chat
        self.notify = notify
        self._shown_for: str | None = None  # the model id the panel shows defaults for
        session.changed.connect(self._on_session_changed)
        panel.save_model_defaults_requested.connect(self.save)
        panel.reset_model_defaults_requested.connect(self.reset)

    @property
    def model_id(self) -> str | None:
        return self.session.model.id if self.session.model is not None else None

    def current(self) -> ModelDefaults:
        """The defaults a new chat with the chosen model starts with."""
        return model_defaults(self.db, self.model_id)

    def apply_to_new_chat(self) -> None:
        """Put the chosen model's defaults into the panel for the new chat on screen."""
        defaults = self._show()
        self.panel.load(defaults.system_prompt, defaults.sampling)

    def _show(self) -> ModelDefaults:
        defaults = self.current()
        self._shown_for = self.model_id
        model = self.session.model
        self.panel.show_model_defaults(model.name if model is not None else None, defaults)
        return defaults

    def _on_session_changed(self) -> None:
        if self.model_id == self._shown_for:
            return  # loaded, unloaded or failed: the same model, its defaults unchanged
        if self.is_new_chat():
            self.apply_to_new_chat()
        else:
            self._show()

    def save(self) -> None:
        """The panel's settings become the chosen model's defaults."""
        model = self.session.model
        if model is None:
            return
        self.panel.flush()
        defaults = save_model_defaults(
            self.db, model.id, system_prompt=self.panel.system_prompt_text(),
            sampling=self.panel.sampling(), max_context=self.panel.context.value())
        self.panel.show_model_defaults(model.name, defaults)
        loaded = self.session.loaded
        later = " (its context applies when it loads next)" if loaded is not None and (
            loaded.n_ctx != effective_context(defaults.max_context, model.context_length)) else ""
        self.notify(f"Saved as the defaults of {model.name}{later}")

    def reset(self) -> None:
        """Forget the chosen model's defaults; a new chat on screen takes the app's."""
        model = self.session.model
        if model is None:
            return
        reset_model_defaults(self.db, model.id)
        if self.is_new_chat():
            self.apply_to_new_chat()
        else:
            self._show()
        self.notify(f"{model.name} uses the app's defaults again")
