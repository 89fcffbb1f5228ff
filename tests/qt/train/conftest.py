"""The Train view's fixtures: a fresh home with two data sets, and a fake train command."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.store.datasets import DatasetRepository
from slmdesk.ui.train.command import TrainOptions, train_argv

FAKE_TRAIN = Path(__file__).with_name("fake_train.py")


def fake_command(scenario: str) -> Callable[[TrainOptions], list[str]]:
    """The view's command builder, running fake_train.py with the real train arguments."""
    return lambda options: [sys.executable, str(FAKE_TRAIN), scenario,
                            *train_argv(options, program=[])]


class Home:
    """A fresh slmdesk home (the core opened, no model loaded) with data sets."""

    def __init__(self) -> None:
        from slmdesk.startup import open_core

        self.core = open_core()
        self.db = self.core.db
        self.datasets = DatasetRepository(self.db)
        self.datasets.create("Reviews", kind="labels", labels=["negative", "positive"])
        self.datasets.create("Dialogues", kind="chat")

    def open_dialog(self, qtbot: Any, scenario: str, *, dataset: str = "Reviews",
                    lora_unavailable: str | None = None) -> Any:
        """The Train view on the fake command; ``lora_unavailable``: why LoRA cannot run
        (no trainer add-on), None: it can, whatever this machine has installed."""
        from slmdesk.ui.train.dialog import TrainDialog

        dialog = TrainDialog(self.datasets.all(), [], dataset=dataset,
                             command=fake_command(scenario),
                             trainer_check=lambda: lora_unavailable)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog


@pytest.fixture
def home() -> Iterator[Home]:
    h = Home()
    yield h
    h.db.close()
