"""SQLite storage: opening, migrations and repositories that return dataclasses."""

from slmdesk.store.chats import LEAF, ChatRepository, Conversation, Message, SearchHit
from slmdesk.store.classifiers import ClassifierRepository, SavedClassifier
from slmdesk.store.datasets import Dataset, DatasetRepository, Example
from slmdesk.store.db import open_database
from slmdesk.store.models import ModelRecord, ModelRepository
from slmdesk.store.presets import Preset, PresetRepository
from slmdesk.store.settings import SettingsRepository

__all__ = [
    "LEAF",
    "ChatRepository",
    "ClassifierRepository",
    "Conversation",
    "Dataset",
    "DatasetRepository",
    "Example",
    "Message",
    "ModelRecord",
    "ModelRepository",
    "Preset",
    "PresetRepository",
    "SavedClassifier",
    "SearchHit",
    "SettingsRepository",
    "open_database",
]
