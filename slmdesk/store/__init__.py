"""SQLite storage: opening, migrations and repositories that return dataclasses."""

from slmdesk.store.db import open_database
from slmdesk.store.repositories import (
    LEAF,
    ChatRepository,
    Conversation,
    Message,
    ModelRecord,
    ModelRepository,
    Preset,
    PresetRepository,
    SearchHit,
    SettingsRepository,
)

__all__ = [
    "LEAF",
    "ChatRepository",
    "Conversation",
    "Message",
    "ModelRecord",
    "ModelRepository",
    "Preset",
    "PresetRepository",
    "SearchHit",
    "SettingsRepository",
    "open_database",
]
