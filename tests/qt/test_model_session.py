"""slmdesk/ui/model_session.py on the real 135M model: loads, refusals, load anyway, idle
unload, and the one ``changed`` signal the tabs follow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.catalog import fit
from slmdesk.catalog.registry import resolve_model
from slmdesk.settings import load_settings, save_settings
from slmdesk.startup import open_core
from slmdesk.ui.engine_thread import EngineClient
from slmdesk.ui.model_session import ModelSession

pytestmark = pytest.mark.model


@pytest.fixture
def reply() -> dict[str, bool]:
    """Whether the window would be writing a reply (the session's ``busy``)."""
    return {"busy": False}


@pytest.fixture
def session(qtbot: Any, model_path: Path, reply: dict[str, bool]) -> Iterator[ModelSession]:
    core = open_core()
    settings = load_settings(core.db)
    settings.n_threads, settings.max_context = 1, 1024
    save_settings(core.db, settings)
    engine = EngineClient()
    s = ModelSession(core.db, engine, busy=lambda: reply["busy"])
    yield s
    engine.shutdown()
    core.db.close()


def test_a_load_tells_its_followers_and_records_the_model(
    qtbot: Any, session: ModelSession
) -> None:
    seen: list[tuple[Any, Any]] = []
    session.follow(lambda choice: seen.append((choice.model, choice.loaded)))
    assert seen == [(None, None)]  # told at once
    model = resolve_model(session.db)
    with qtbot.waitSignal(session.loaded_now, timeout=60_000) as loaded:
        assert session.select(model)
        assert session.loading and session.model == model and session.loaded is None
    info = loaded.args[0]
    assert session.loaded is info and not session.loading
    assert session.last_load_s is not None and session.last_load_s > 0
    # Chosen (not loaded), then loaded: the followers saw both.
    assert seen[-2] == (model, None) and seen[-1] == (model, info)
    assert load_settings(session.db).default_model_id == model.id


def test_refusals_say_why_and_start_nothing(
    qtbot: Any, session: ModelSession, reply: dict[str, bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = resolve_model(session.db)
    refusals: list[tuple[str, bool]] = []
    session.refused.connect(lambda message, can_force: refusals.append((message, can_force)))
    reply["busy"] = True
    assert not session.select(model)
    assert refusals[-1] == ("Stop the current reply before switching models.", False)
    reply["busy"] = False

    tiny = fit.MemoryBudget(total_ram=64 * 2**20, available_ram=16 * 2**20)
    monkeypatch.setattr(fit, "system_memory", lambda: tiny)
    assert not session.select(model)
    message, can_force = refusals[-1]
    assert "Not enough memory" in message and "Load anyway" in message and can_force
    assert session.load_job is None and session.fit_refused == model
    with qtbot.waitSignal(session.loaded_now, timeout=60_000):
        assert session.load_anyway()
    assert session.loaded is not None and session.fit_refused is None


def test_idle_unload_frees_the_model_and_says_so(
    qtbot: Any, session: ModelSession, reply: dict[str, bool]
) -> None:
    with qtbot.waitSignal(session.loaded_now, timeout=60_000):
        session.select(resolve_model(session.db))
    settings = load_settings(session.db)
    settings.idle_unload_minutes = 3
    save_settings(session.db, settings)
    session.arm_idle_timer()
    assert session.idle_timer.isActive() and session.idle_timer.interval() == 3 * 60_000
    # Not while a reply is being written.
    reply["busy"] = True
    session.unload_if_idle()
    assert session.loaded is not None
    reply["busy"] = False
    with qtbot.waitSignals([session.idle_unloaded, session.engine.model_unloaded],
                           timeout=30_000):
        session.idle_timer.timeout.emit()  # as if three idle minutes had passed
    assert session.loaded is None and session.idle_unloaded_model
    assert not session.engine.engine.is_loaded
