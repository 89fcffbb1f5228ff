"""slmdesk/ui/common/model_tab.py: the Classify and Data sets tabs follow the window's model
chosen on a remote engine (the fake engine of tests/remote): they classify through it when
it scores labels (tokenization and prompt log-probabilities, as vLLM), and say why not when
it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.qt.chat.test_remote_chat import Window
from tests.qt.classify.test_view import pick_starter
from tests.remote import conftest as remote_fixtures
from tests.remote.fake_engine import MODEL, SCORING_FEATURES, FakeEngine

fake_engine = remote_fixtures.fake_engine
fake = remote_fixtures.fake
REMOTE = f"{MODEL} (remote · box)"
TEXTS = ["I loved this film.", "Terrible service.", "A fine day."]


@pytest.fixture
def scoring(qtbot: Any, monkeypatch: pytest.MonkeyPatch, fake: FakeEngine) -> Iterator[Window]:
    """The window with one checked remote engine that scores labels."""
    fake.scoring = True
    w = Window(qtbot, monkeypatch, fake.url, [MODEL], features=SCORING_FEATURES)
    yield w
    w.close()


@pytest.fixture
def chat_only(qtbot: Any, monkeypatch: pytest.MonkeyPatch, fake: FakeEngine) -> Iterator[Window]:
    """The window with one checked remote engine that only chats."""
    w = Window(qtbot, monkeypatch, fake.url, [MODEL])
    yield w
    w.close()


def _scoring_requests(fake: FakeEngine) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r.get("echo")]


def test_classify_and_data_sets_classify_through_the_remote_engine(
        qtbot: Any, scoring: Window, fake: FakeEngine) -> None:
    win = scoring.win
    cv, dv = win.classify_view, win.datasets_view
    assert not cv.run_button.isEnabled()  # no model chosen yet: no local one here
    scoring.pick(REMOTE)
    assert win.session.remote is not None and win.loaded is None  # nothing loaded here
    assert cv.ready and cv.run_button.isEnabled()
    assert cv.model_note.text() == f"Classifying with {REMOTE}."

    pick_starter(cv)
    cv.text_input.texts.setPlainText("\n".join(TEXTS))
    with qtbot.waitSignal(cv.run_finished, timeout=30_000) as finished:
        cv.run_button.click()
    assert finished.args == [False] and not cv.banner.isVisible()
    assert cv.results.rowCount() == len(TEXTS)
    rows = [cv.results.result(i) for i in range(len(TEXTS))]
    assert all(r.label_text in ("positive", "negative") and not r.failed for r in rows)
    assert _scoring_requests(fake)  # the label scores came from the remote engine

    # Data sets: pre-label through it too.
    ds = dv.datasets.create("Remote", kind="labels", labels=["positive", "negative"])
    for text in TEXTS:
        dv.datasets.add_labelled_text(ds, text, None, source="typed")
    dv.dataset_list.refresh_datasets(select="Remote")
    assert dv.model_runs.prelabel_button.isEnabled() and MODEL in dv.model_note.text()
    fake.requests.clear()
    with qtbot.waitSignal(dv.run_finished, timeout=30_000) as done:
        dv.model_runs.prelabel_button.click()
    assert done.args == ["prelabel", False] and not dv.banner.isVisible()
    assert _scoring_requests(fake)
    dv.reload()
    assert all(e.model_label in ("positive", "negative") for e in dv.examples.rows)
    assert {e.model_name for e in dv.examples.rows} == {REMOTE}  # which model suggested


def test_a_remote_engine_that_cannot_score_is_said_and_sent_nothing(
        qtbot: Any, chat_only: Window, fake: FakeEngine) -> None:
    win = chat_only.win
    cv, dv = win.classify_view, win.datasets_view
    chat_only.pick(REMOTE)
    assert win.session.remote is not None  # chosen: the chat goes there
    for view in (cv, dv):
        assert not view.ready
        assert "cannot classify" in view.model_note.text()
        assert "tokenization" in view.model_note.text()  # what the engine lacks
    assert not cv.run_button.isEnabled() and "tokenization" in cv.run_button.toolTip()
    assert not dv.model_runs.prelabel_button.isEnabled()
    pick_starter(cv)
    cv.text_input.texts.setPlainText("\n".join(TEXTS))
    cv.run()  # as Ctrl+Enter in the text box
    assert "cannot classify" in cv.banner.text() and REMOTE in cv.banner.text()
    assert not _scoring_requests(fake) and cv.job is None
