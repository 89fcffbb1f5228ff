"""The Train view's form without a trainer for LoRA: a note says how to get one, and the
LoRA method is greyed out while the others stay."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel

from tests.qt.train.conftest import Home

NO_ADDON = ("LoRA fine-tuning needs the trainer add-on (…), which is not installed. Download "
            "slmdesk-trainer-1.0-linux-x86_64.tar.xz and unpack it next to the app.")


def _enabled_methods(form: Any) -> dict[str, bool]:
    model = form.method_box.model()
    assert isinstance(model, QStandardItemModel)
    return {str(form.method_box.itemData(i)): model.item(i).isEnabled()
            for i in range(form.method_box.count())}


def test_without_a_trainer_the_form_says_how_to_get_it(qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "classifier", lora_unavailable=NO_ADDON)
    form = dialog.form
    assert form.trainer_note.isVisible() and form.trainer_note.text() == NO_ADDON
    assert (form.trainer_note.textInteractionFlags()
            & Qt.TextInteractionFlag.TextSelectableByMouse)  # the path can be copied
    assert _enabled_methods(form) == {"auto": True, "prompt": True, "head": True,
                                      "lora": False}
    lora = form.method_box.findData("lora")
    assert NO_ADDON in str(form.method_box.itemData(lora, Qt.ItemDataRole.ToolTipRole))
    form.select("Dialogues", None)  # a chat data set: LoRA only, still greyed out, still said
    assert _enabled_methods(form) == {"auto": True, "lora": False}
    assert form.trainer_note.isVisible()


def test_with_a_trainer_there_is_no_note(qtbot: Any, home: Home) -> None:
    dialog = home.open_dialog(qtbot, "classifier")
    assert not dialog.form.trainer_note.isVisible()
    assert all(_enabled_methods(dialog.form).values())
