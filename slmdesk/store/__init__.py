"""SQLite storage: opening, migrations and repositories that return dataclasses."""

from slmdesk.store.classifiers import ClassifierRepository, SavedClassifier
from slmdesk.store.datasets import Dataset, DatasetRepository, Example
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
