"""Fixtures of the remote-engine tests: the misbehaving fake engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.remote.fake_engine import FakeEngine


@pytest.fixture(scope="module")
def fake_engine() -> Iterator[FakeEngine]:
    engine = FakeEngine().start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def fake(fake_engine: FakeEngine) -> FakeEngine:
    fake_engine.mode = "ok"
    fake_engine.scoring = False
    fake_engine.delay = 0.0
    fake_engine.requests.clear()
    return fake_engine
