"""What the Server tab remembers between runs: port, network access, token, browser origins,
whether API conversations are kept."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from slmdesk.json_data import known_fields
from slmdesk.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig
from slmdesk.store.settings import SettingsRepository

SETTINGS_KEY = "server_panel"
ALL_ADDRESSES = "0.0.0.0"


@dataclass
class ServerPanelSettings:
    """The Server tab's fields, saved as one JSON value in the settings table."""

    port: int = DEFAULT_PORT
    allow_network: bool = False  # listen on every address (needs a token), not only 127.0.0.1
    token: str = ""  # "" means none (allowed on 127.0.0.1 only)
    cors_origins: str = ""  # comma- or space-separated origins, e.g. http://localhost:3000
    keep_chats: bool = False  # store chat requests and replies in the chat history

    @property
    def host(self) -> str:
        return ALL_ADDRESSES if self.allow_network else DEFAULT_HOST

    def origins(self) -> tuple[str, ...]:
        return tuple(o for o in self.cors_origins.replace(",", " ").split() if o)

    def server_config(self) -> ServerConfig:
        """The server's config (not validated yet: ``ServerConfig.validated`` says what is
        wrong in words)."""
        return ServerConfig(host=self.host, port=self.port, token=self.token or None,
                            cors_origins=self.origins(), keep_chats=self.keep_chats)


def load_panel_settings(db: sqlite_utils.Database) -> ServerPanelSettings:
    saved: Any = SettingsRepository(db).get(SETTINGS_KEY, {}) or {}
    values = known_fields(ServerPanelSettings, saved) if isinstance(saved, dict) else {}
    try:
        return ServerPanelSettings(**values)
    except TypeError:
        return ServerPanelSettings()


def save_panel_settings(db: sqlite_utils.Database, settings: ServerPanelSettings) -> None:
    SettingsRepository(db).set(SETTINGS_KEY, asdict(settings))
