"""The Train view end to end: the real `slmdesk train --events` child process on the real
135M model (a head on the zorp/blick set, where zero-shot is near chance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slmdesk.catalog.registry import import_model
from slmdesk.startup import open_core
from slmdesk.store.datasets import DatasetRepository
from slmdesk.store.models import ModelRepository
from tests.training_data import make_dataset

pytestmark = [pytest.mark.model, pytest.mark.slow]

SPLITS = {"train": 12, "validation": 5, "test": 14}  # as tests/cli/test_train_cli.py


def test_the_view_trains_a_head_through_the_real_command(qtbot: Any, model_path: Path) -> None:
    from slmdesk.ui.train.dialog import TrainDialog

    core = open_core(register_starter=False)
    try:
        model = import_model(core.db, str(model_path))
        make_dataset(core.db, splits=SPLITS)
        datasets = DatasetRepository(core.db).all()
        models = ModelRepository(core.db).list()
    finally:
        core.db.close()
    dialog = TrainDialog(datasets, models, dataset="zorp-blick", model=model.id)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.form.name_edit.setText("zb-head")
    dialog.form.method_box.setCurrentIndex(dialog.form.method_box.findData("head"))
    stages: list[Any] = []
    dialog.process.stage_changed.connect(lambda *a: stages.append(a))
    with qtbot.waitSignal(dialog.process.finished, timeout=600_000) as done:
        assert dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    [report] = done.args
    assert report["name"] == "zb-head" and report["method"] == "head"
    assert report["test"]["accuracy"] > report["zero_shot_test"]["accuracy"]
    assert stages, "the stages reached the view"
    card = dialog.result_card
    assert card.isVisible() and "zb-head" in card.title.text()
    assert card.use_button.isVisible()
