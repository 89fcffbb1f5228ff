"""Settings kept in the database: round trip, unknown keys ignored."""

from __future__ import annotations

from slmdesk.settings import Settings, load_settings, save_settings


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


def test_a_model_has_the_apps_defaults_until_it_saves_its_own(db) -> None:  # type: ignore[no-untyped-def]
    from slmdesk.engine.params import SamplingParams
    from slmdesk.settings import (
        load_params_for,
        model_defaults,
        reset_model_defaults,
        save_model_defaults,
    )

    app = load_settings(db)
    plain = model_defaults(db, "m1")
    assert not plain.own and plain.system_prompt == app.system_prompt
    assert plain.sampling == app.sampling and plain.max_context == app.max_context
    assert model_defaults(db, None) == plain

    sampling = SamplingParams(temperature=0.1, top_k=7, max_tokens=99, stop=("###",))
    save_model_defaults(db, "m1", system_prompt="Answer briefly.", sampling=sampling,
                        max_context=1024)
    own = model_defaults(db, "m1")
    assert own.own and own.system_prompt == "Answer briefly." and own.sampling == sampling
    assert own.max_context == 1024
    assert load_params_for(db, "m1").max_context == 1024
    assert load_params_for(db, "m1").n_threads == app.n_threads
    # Another model, and the app's settings, are untouched.
    assert model_defaults(db, "m2") == plain
    assert load_params_for(db, "m2").max_context == app.max_context
    assert load_settings(db) == app

    back = reset_model_defaults(db, "m1")
    assert back == plain and model_defaults(db, "m1") == plain
    reset_model_defaults(db, "m1")  # resetting twice is no error


def test_damaged_model_defaults_fall_back_to_the_apps(db) -> None:  # type: ignore[no-untyped-def]
    from slmdesk.settings import model_defaults
    from slmdesk.store.settings import SettingsRepository

    app = load_settings(db)
    SettingsRepository(db).set("model_defaults:m1", {"max_context": -5, "system_prompt": 3,
                                                     "future": True})
    kept = model_defaults(db, "m1")
    assert kept.own and kept.max_context == app.max_context
    assert kept.system_prompt == app.system_prompt
    SettingsRepository(db).set("model_defaults:m1", "not a dict")
    assert not model_defaults(db, "m1").own
