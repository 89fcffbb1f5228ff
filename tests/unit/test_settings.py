"""Settings kept in the database: round trip, unknown keys ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmdesk.settings import Settings, load_settings, save_settings
from slmdesk.store.db import open_database


@pytest.fixture
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = open_database(tmp_path / "t.db")
    yield database
    database.close()


def test_settings_round_trip_and_ignore_unknown_keys(db) -> None:  # type: ignore[no-untyped-def]
    s = load_settings(db)
    assert s == Settings()
    s.max_context = 2048
    s.sampling = s.sampling.merged(temperature=0.2, stop=["###"])
    save_settings(db, s)
    again = load_settings(db)
    assert again.max_context == 2048
    assert again.sampling.temperature == 0.2
    assert again.sampling.stop == ("###",)
    db["settings"].upsert({"key": "app", "value_json": '{"max_context": 1024, "future": 1}'},
                          pk="key")
    assert load_settings(db).max_context == 1024
