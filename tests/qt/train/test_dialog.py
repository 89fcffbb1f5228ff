"""The Train view driven with qtbot against a fake `slmdesk train --events` command: the
live curve, progress and time left, the result card's numbers, failures and cancel."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from slmdesk.store.models import ModelRecord
from tests.qt.train.conftest import Home

WAIT_MS = 15_000


def run_to_end(qtbot: Any, dialog: Any, outcome: str) -> list[Any]:
    """Start the run and wait for ``outcome`` (finished, failed, cancelled); its arguments."""
    with qtbot.waitSignal(getattr(dialog.process, outcome), timeout=WAIT_MS) as blocker:
        assert dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    return list(blocker.args)


def test_a_classifier_run_draws_the_curve_and_shows_the_result_card(
        qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "classifier")
    assert dialog.form.name_edit.text() == "Reviews-trained"
    assert dialog.form.method_box.currentData() == "auto"
    progress_values: list[int] = []
    dialog.process.progressed.connect(lambda _e: progress_values.append(dialog.progress.value()))
    run_to_end(qtbot, dialog, "finished")

    # the curve: one loss point per LoRA step, one validation dot per method
    assert [step for step, _ in dialog.curve.loss_points] == [1, 2, 3, 4, 5, 6]
    assert dialog.checkpoint_note == "checkpoint at step 3"
    assert dialog.curve.loss_points[-1][1] == pytest.approx(0.5)
    assert dialog.curve.total_steps == 6
    assert dialog.curve.methods() == ["prompt", "head", "lora"]
    assert [p.macro_f1 for p in dialog.curve.validation] == pytest.approx([0.55, 0.68, 0.84])
    assert dialog.curve.grab().width() > 0  # it paints
    # the progress bar followed the events, and ends full
    assert 6 in progress_values and 20 in progress_values
    assert dialog.progress.value() == dialog.progress.maximum()

    card = dialog.result_card
    assert card.isVisible()
    assert "Reviews-trained" in card.title.text() and "lora" in card.title.text()
    rows = {card.metrics.item(r, 0).text(): (card.metrics.item(r, 1).text(),
                                              card.metrics.item(r, 2).text())
            for r in range(card.metrics.rowCount())}
    assert rows == {"Accuracy": ("0.500", "0.875"), "Macro-F1": ("0.420", "0.870")}
    assert "p = 0.000274" in card.significance.text()
    assert "a significant difference" in card.significance.text()
    methods = [card.methods.item(r, 0).text() for r in range(card.methods.rowCount())]
    assert methods == ["prompt", "head", "lora ✓"]
    assert card.methods.item(1, 2).text() == "0.680"
    # both confusion pictures, side by side
    assert card.pictures.isVisible() and not card.per_label.isVisible()
    assert card.before_confusion.counts == [[20, 0], [20, 0]]
    assert card.after_confusion.counts == [[18, 2], [3, 17]]
    assert card.after_confusion.labels == ["negative", "positive"]
    assert card.before_confusion.x() < card.after_confusion.x()
    assert card.use_button.isVisible() and not card.chat_button.isVisible()
    with qtbot.waitSignal(dialog.use_in_classify_requested) as used:
        card.use_button.click()
    assert used.args == ["Reviews-trained"]
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_the_command_gets_the_choices_of_the_form(qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "classifier")
    dialog.form.name_edit.setText("sentiment")
    dialog.form.method_box.setCurrentIndex(dialog.form.method_box.findData("head"))
    dialog.form.advanced_button.click()
    assert dialog.form.epochs.isVisible()
    dialog.form.epochs.setValue(2)
    dialog.form.threads.setValue(1)
    stages: list[str] = []
    dialog.process.stage_changed.connect(lambda _stage, message: stages.append(message))
    run_to_end(qtbot, dialog, "finished")
    asked = stages[0].split()  # the fake echoes its train arguments
    assert asked[asked.index("train"):] == [
        "train", "sentiment", "--data", "Reviews", "--method", "head", "--epochs", "2",
        "--threads", "1", "--events"]
    assert asked[asked.index("--home") + 1] == str(home.core.paths.data_dir.parent)


def test_without_confusion_matrices_the_card_shows_per_label_f1(
        qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "per_label")
    run_to_end(qtbot, dialog, "finished")
    card = dialog.result_card
    assert not card.pictures.isVisible() and card.per_label.isVisible()
    rows = [[card.per_label.item(r, c).text() for c in range(3)]
            for r in range(card.per_label.rowCount())]
    assert rows == [["negative", "0.670", "0.880"], ["positive", "0.000", "0.860"]]


def test_a_chat_fine_tune_offers_to_chat_with_the_model(qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "chat", dataset="Dialogues")
    methods = [dialog.form.method_box.itemData(i)
               for i in range(dialog.form.method_box.count())]
    assert methods == ["auto", "lora"]  # a chat data set trains LoRA only
    assert dialog.form.name_edit.text() == "Dialogues-trained"
    run_to_end(qtbot, dialog, "finished")
    card = dialog.result_card
    assert card.chat_button.isVisible() and not card.use_button.isVisible()
    assert card.metrics.item(0, 0).text() == "Held-out loss"
    assert (card.metrics.item(0, 1).text(), card.metrics.item(0, 2).text()) == ("1.600", "1.200")
    assert card.significance.text() == ""
    with qtbot.waitSignal(dialog.chat_requested) as chat:
        card.chat_button.click()
    assert chat.args == ["Dialogues-trained"]


def test_cancel_sends_sigint_and_the_checkpoint_is_kept(
        qtbot: Any, home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    import slmdesk.ui.train.process as process_module

    sent: list[int] = []
    real_kill = process_module.os.kill

    def recording_kill(pid: int, sig: int) -> None:
        sent.append(sig)
        real_kill(pid, sig)

    monkeypatch.setattr(process_module.os, "kill", recording_kill)
    dialog = home.open_dialog(qtbot, "cancel")
    with qtbot.waitSignal(dialog.process.cancelled, timeout=WAIT_MS) as cancelled:
        dialog.start()
        qtbot.waitUntil(lambda: len(dialog.curve.loss_points) == 2, timeout=WAIT_MS)
        assert dialog.running and dialog.cancel_button.isEnabled()
        assert dialog.time_left.text() == "about 2 min left"
        dialog.cancel_button.click()
        assert not dialog.cancel_button.isEnabled()  # asked once
    assert sent == [signal.SIGINT]
    assert cancelled.args == ["job-1"]
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    assert "stopped — checkpoint kept" in dialog.stage_label.text()
    assert (dialog.progress.value(), dialog.progress.maximum()) == (2, 6)  # where it stopped
    assert dialog.resume_button.isEnabled() and dialog.start_button.isEnabled()
    assert not dialog.result_card.isVisible()

    # Resume runs the same command with --resume
    stages: list[str] = []
    dialog.process.stage_changed.connect(lambda _stage, message: stages.append(message))
    with qtbot.waitSignal(dialog.process.cancelled, timeout=WAIT_MS):
        dialog.resume_button.click()
        qtbot.waitUntil(lambda: bool(stages), timeout=WAIT_MS)
        dialog.cancel()
    assert "--resume" in stages[0].split()


def test_a_failed_event_shows_its_message_and_the_stderr_tail(
        qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "failed")
    message, tail = run_to_end(qtbot, dialog, "failed")
    assert dialog.banner.isVisible()
    assert dialog.banner.text() == message == (
        "The label 'spam' has 1 example(s); training needs at least 4.")
    assert dialog.stderr_box.isVisible()
    assert "something deep went wrong" in dialog.stderr_box.toPlainText() == tail
    assert "failed" in dialog.stage_label.text()
    assert dialog.start_button.isEnabled() and not dialog.result_card.isVisible()


def test_a_child_that_dies_without_an_event_is_a_clear_failure(
        qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "crash")
    run_to_end(qtbot, dialog, "failed")
    assert dialog.banner.text() == "The training stopped unexpectedly (exit code 139)."
    assert "Segmentation fault" in dialog.stderr_box.toPlainText()


def test_a_command_that_cannot_start_is_a_clear_failure(qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "classifier")
    dialog.command = lambda _options: ["/nonexistent/slmdesk-trainer", "train"]
    run_to_end(qtbot, dialog, "failed")
    assert dialog.banner.text().startswith("The trainer could not start")
    assert dialog.start_button.isEnabled()


def test_the_form_preselects_the_data_set_and_the_model(qtbot: Any, home: Home) -> None:
    from slmdesk.ui.train.dialog import TrainDialog

    models = [ModelRecord(id=f"m{i}", name=name, path=f"/x/{name}.gguf", size_bytes=1,
                          architecture=None, quantization=None, parameter_count=None,
                          context_length=None, licence=None, source="import", added_at="")
              for i, name in enumerate(["small", "tiny"])]
    dialog = TrainDialog(home.datasets.all(), models, dataset="Dialogues", model="tiny")
    qtbot.addWidget(dialog)
    options = dialog.form.options()
    assert options is not None
    assert (options.dataset, options.model, options.method) == ("Dialogues", "tiny", "auto")
    assert (options.epochs, options.max_minutes, options.threads) == (None, None, None)
    dialog.form.name_edit.setText(" ")
    assert not dialog.start()
    assert dialog.banner.text() == "Choose a data set and a name to save the result as."


def test_a_finished_run_fits_an_800_by_600_screen(qtbot: Any, home: Home) -> None:
    """The result card scrolls with the curve instead of making the window taller than the
    screen (it was 707 px at 800×600); its actions stay in reach."""
    dialog = home.open_dialog(qtbot, "classifier")
    run_to_end(qtbot, dialog, "finished")
    dialog.resize(800, 600)
    qtbot.wait(50)
    assert dialog.minimumSizeHint().height() <= 600
    assert (dialog.width(), dialog.height()) == (800, 600)
    from PySide6.QtWidgets import QScrollArea

    area = dialog.findChild(QScrollArea, "train_results_area")
    card = dialog.result_card
    area.ensureWidgetVisible(card.use_button)
    qtbot.wait(20)
    corner = card.use_button.mapTo(area.viewport(), card.use_button.rect().bottomRight())
    assert area.viewport().rect().contains(corner)
