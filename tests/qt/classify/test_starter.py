"""The Classify setup panel: the Starter menu asks before it replaces labels someone typed."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from slmdesk.ui.classify.setup import SetupPanel


def pick_starter(panel: SetupPanel, title: str = "positive, negative") -> None:
    [action] = [a for a in panel.starter_button.menu().actions() if a.text() == title]
    action.trigger()


@pytest.fixture
def panel(qtbot: Any) -> SetupPanel:
    p = SetupPanel()
    qtbot.addWidget(p)
    return p


class Questions:
    """Stands in for QMessageBox.question: records each question, gives the next answer."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.answers: list[QMessageBox.StandardButton] = []

    def __call__(self, _parent: Any, _title: str, text: str, *_args: Any) -> Any:
        self.asked.append(text)
        return self.answers.pop(0)


@pytest.fixture
def questions(monkeypatch: pytest.MonkeyPatch) -> Questions:
    q = Questions()
    monkeypatch.setattr(QMessageBox, "question", q)
    return q


def test_a_starter_fills_empty_labels_without_asking(panel: SetupPanel,
                                                     questions: Questions) -> None:
    pick_starter(panel)
    assert panel.label_names() == ["positive", "negative"]
    assert questions.asked == []


def test_a_starter_asks_before_replacing_typed_labels(panel: SetupPanel,
                                                      questions: Questions) -> None:
    panel.add_label_row("urgent")
    panel.add_label_row("later")
    questions.answers.append(QMessageBox.StandardButton.No)
    pick_starter(panel)
    assert panel.label_names() == ["urgent", "later"]  # kept: the person said no
    assert len(questions.asked) == 1 and "urgent, later" in questions.asked[0]
    questions.answers.append(QMessageBox.StandardButton.Yes)
    pick_starter(panel)
    assert panel.label_names() == ["positive", "negative"]
    # The same set again replaces nothing the person typed: no question.
    pick_starter(panel)
    assert len(questions.asked) == 2
