"""SQLite storage: opening, migrations and repositories that return dataclasses."""

from slmdesk.store.db import open_database
from slmdesk.store.repositories import (
    ChatRepository,
    Conversation,
    Message,
    ModelRecord,
    ModelRepository,
    SettingsRepository,
)

__all__ = [
    "ChatRepository",
    "Conversation",
    "Message",
    "ModelRecord",
    "ModelRepository",
    "SettingsRepository",
    "open_database",
]
