"""Start-up shared by the GUI and the CLI: paths, database, recovery, starter model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlite_utils

from slmdesk.catalog.registry import ensure_starter_model
from slmdesk.paths import Paths, get_paths
from slmdesk.store.chats import ChatRepository
from slmdesk.store.db import open_database

log = logging.getLogger(__name__)


@dataclass
class Core:
    paths: Paths
    db: sqlite_utils.Database
    interrupted_replies: int


def open_core(home: str | None = None, *, register_starter: bool = True) -> Core:
    """Open the database, mark replies a dead process left streaming, add the starter model."""
    paths = get_paths(home).ensure()
    db = open_database(paths.database)
    chats = ChatRepository(db)
    interrupted = chats.mark_interrupted()
    # Deleted conversations stay undoable while the app that deleted them runs; a day
    # later (another process may still show an undo bar until it closes) they go for good.
    day_ago = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat(timespec="microseconds")
    chats.purge_deleted(older_than=day_ago)
    if interrupted:
        log.warning("%d reply/replies were interrupted when slmdesk last stopped", interrupted)
    if register_starter:
        ensure_starter_model(db)
    return Core(paths=paths, db=db, interrupted_replies=interrupted)
