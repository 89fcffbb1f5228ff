"""The repositories under their old module name: each now lives in the module of its aggregate.

New code imports from ``slmdesk.store`` or the aggregate's module (``store.models``,
``store.chats``, ``store.presets``, ``store.settings``); this module keeps the faces'
existing imports working.
"""

from slmdesk.store.chats import (
    FINISH_REASONS,
    LEAF,
    STATUS_COMPLETE,
    STATUS_STREAMING,
    ChatRepository,
    Conversation,
    Message,
    SearchHit,
)
from slmdesk.store.models import ModelRecord, ModelRepository
from slmdesk.store.presets import Preset, PresetRepository
from slmdesk.store.rows import fts_query
from slmdesk.store.settings import SettingsRepository

__all__ = [
    "FINISH_REASONS",
    "LEAF",
    "STATUS_COMPLETE",
    "STATUS_STREAMING",
    "ChatRepository",
    "Conversation",
    "Message",
    "ModelRecord",
    "ModelRepository",
    "Preset",
    "PresetRepository",
    "SearchHit",
    "SettingsRepository",
    "fts_query",
]
