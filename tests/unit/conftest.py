"""Fixtures for the unit tests: a fresh, migrated database in the test's own folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from slmdesk.store.db import open_database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_database(tmp_path / "t.db")
    yield database
    database.close()
