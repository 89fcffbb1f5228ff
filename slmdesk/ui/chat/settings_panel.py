"""The per-conversation settings panel: system prompt, sampling, saved presets, and the
chosen model's own defaults (what a new chat with it starts with, and its context)."""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import QSignalBlocker, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from slmdesk.engine.params import SamplingParams
from slmdesk.errors import UserFacingError
from slmdesk.settings import ModelDefaults
from slmdesk.ui.common.flow_layout import FlowLayout, captioned
from slmdesk.ui.common.labels import wrapping_label
from slmdesk.ui.common.tab_frame import ButtonSpec, add_push_buttons, push_button, status_label
from slmdesk.ui.common.tones import tone_style

# The sampling fields shown in a spin box of the same name (seed and stop need a conversion).
_NUMBER_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens")

class SettingsPanel(QWidget):
    """Edits one conversation's system prompt and sampling; emits ``settings_changed``."""

    settings_changed = Signal(object, object)  # system prompt (str), SamplingParams
    # "Save as this model's defaults" / "Reset" (ModelDefaultsBinding does them).
    save_model_defaults_requested = Signal()
    reset_model_defaults_requested = Signal()

    def __init__(self, presets: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settings_panel")
        self.presets = presets
        self._loading = False
        self._emit_timer = QTimer(self)
        self._emit_timer.setSingleShot(True)
        self._emit_timer.setInterval(300)
        self._emit_timer.timeout.connect(self._emit)

        # ChatPage puts the panel in a scrolling pane (ui.common.tab_frame.scrolling_pane).
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        title = QLabel("<b>Conversation settings</b>", self)
        layout.addWidget(title)

        preset_row = FlowLayout()  # wraps in a narrow pane
        self.preset_box = QComboBox(self)
        self.preset_box.setObjectName("preset_box")
        self.preset_box.activated.connect(self._apply_preset)
        self.save_preset_button = push_button(
            "Save…", "Save these settings as a preset", self, clicked=self._save_preset_dialog)
        self.delete_preset_button = push_button("Delete", "", self, clicked=self._delete_preset)
        preset_row.add_stretching(captioned("Preset:", self.preset_box, self))
        preset_row.addWidget(self.save_preset_button)
        preset_row.addWidget(self.delete_preset_button)
        layout.addLayout(preset_row)

        layout.addWidget(QLabel("System prompt:", self))
        self.system_prompt = QPlainTextEdit(self)
        self.system_prompt.setObjectName("system_prompt")
        self.system_prompt.setPlaceholderText("Instructions the model follows in this chat")
        self.system_prompt.setMaximumHeight(110)
        self.system_prompt.textChanged.connect(self._changed)
        layout.addWidget(self.system_prompt)

        form = QFormLayout()  # each row is added where its box is built
        self.temperature = self._double(form, "Temperature", (0.0, 2.0), 0.05,
                                        "0 = always the most likely token")
        self.top_p = self._double(form, "Top-p", (0.0, 1.0), 0.01, "nucleus sampling; 1 = off")
        self.top_k = self._int(form, "Top-k", (0, 1000), "0 = off")
        self.min_p = self._double(form, "Min-p", (0.0, 1.0), 0.01, "0 = off")
        self.repeat_penalty = self._double(form, "Repeat penalty", (0.5, 2.0), 0.01, "1 = off")
        self.max_tokens = self._int(form, "Max tokens", (1, 131072), "longest reply, in tokens")
        self.seed = self._int(form, "Seed", (-1, 2_147_483_647),
                              "same seed + same settings = same reply")
        self.seed.setSpecialValueText("random")
        self.stop = QLineEdit(self)
        self.stop.setPlaceholderText("comma-separated, e.g. ###, User:")
        self.stop.textChanged.connect(self._changed)
        form.addRow("Stop strings", self.stop)
        layout.addLayout(form)
        self.error = wrapping_label("", self, name="settings_error")
        self.error.setStyleSheet(tone_style("error"))
        layout.addWidget(self.error)
        self._build_model_defaults(layout)
        layout.addStretch(1)
        self.refresh_presets()

    def _build_model_defaults(self, layout: QVBoxLayout) -> None:
        """Defaults for MODEL: Context · Save as this model's defaults · Reset · a note."""
        self.model_defaults_title = status_label(self, "model_defaults_title")
        layout.addWidget(self.model_defaults_title)
        form = QFormLayout()
        self.context = QSpinBox(self)
        self.context.setObjectName("model_context")
        self.context.setRange(256, 1_048_576)
        self.context.setSingleStep(1024)
        self.context.setSuffix(" tokens")
        self.context.setToolTip("The context this model loads with (capped by what it was "
                                "trained for); applies the next time it loads")
        form.addRow("Context", self.context)
        layout.addLayout(form)
        row = FlowLayout()  # wraps in a narrow pane
        self.save_defaults_button, self.reset_defaults_button = add_push_buttons(
            row, self,
            ButtonSpec("Save as this model's defaults",
                       "New chats with this model start with this system prompt and sampling",
                       "save_model_defaults_button", self.save_model_defaults_requested),
            ButtonSpec("Reset", "Forget this model's defaults: it uses the app's again",
                       "reset_model_defaults_button", self.reset_model_defaults_requested))
        layout.addLayout(row)
        self.model_defaults_note = status_label(self, "model_defaults_note")
        layout.addWidget(self.model_defaults_note)
        self.show_model_defaults(None, None)

    def show_model_defaults(self, model_name: str | None,
                            defaults: ModelDefaults | None) -> None:
        """Show whose defaults these are (no model: nothing to save) and the context."""
        has_model = model_name is not None and defaults is not None
        own = defaults is not None and defaults.own
        self.model_defaults_title.setText(
            f"<b>Defaults for {escape(model_name)}</b>" if model_name else
            "<b>Model defaults</b>")
        if defaults is not None:
            self.context.setValue(defaults.max_context)
        self.context.setEnabled(has_model)
        self.save_defaults_button.setEnabled(has_model)
        self.reset_defaults_button.setEnabled(own)
        self.model_defaults_note.setText(
            "Pick a model to give it its own defaults." if not has_model else
            "New chats with this model start with its saved defaults." if own else
            "This model uses the app's defaults.")

    def _double(self, form: QFormLayout, label: str, value_range: tuple[float, float],
                step: float, tip: str) -> QDoubleSpinBox:
        """A two-decimal box in ``form``'s new row ``label``."""
        box = QDoubleSpinBox(self)
        box.setRange(*value_range)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setToolTip(tip)
        box.valueChanged.connect(self._changed)
        form.addRow(label, box)
        return box

    def _int(self, form: QFormLayout, label: str, value_range: tuple[int, int],
             tip: str) -> QSpinBox:
        """A whole-number box in ``form``'s new row ``label``."""
        box = QSpinBox(self)
        box.setRange(*value_range)
        box.setToolTip(tip)
        box.valueChanged.connect(self._changed)
        form.addRow(label, box)
        return box

    # values --------------------------------------------------------------------------
    def load(self, system_prompt: str | None, sampling: SamplingParams) -> None:
        """Show these settings without emitting a change."""
        self._loading = True
        blockers = [QSignalBlocker(w) for w in (
            self.system_prompt, self.temperature, self.top_p, self.top_k, self.min_p,
            self.repeat_penalty, self.max_tokens, self.seed, self.stop)]
        try:
            self.system_prompt.setPlainText(system_prompt or "")
            for name in _NUMBER_FIELDS:  # the boxes named as SamplingParams' fields
                getattr(self, name).setValue(getattr(sampling, name))
            self.seed.setValue(-1 if sampling.seed is None else sampling.seed)
            self.stop.setText(", ".join(sampling.stop))
        finally:
            del blockers
            self._loading = False
        self._select_matching_preset()

    def sampling(self) -> SamplingParams:
        stops = tuple(s.strip() for s in self.stop.text().split(",") if s.strip())
        return SamplingParams(
            temperature=round(self.temperature.value(), 4),
            top_p=round(self.top_p.value(), 4),
            top_k=self.top_k.value(),
            min_p=round(self.min_p.value(), 4),
            repeat_penalty=round(self.repeat_penalty.value(), 4),
            max_tokens=self.max_tokens.value(),
            seed=None if self.seed.value() < 0 else self.seed.value(),
            stop=stops,
        )

    def system_prompt_text(self) -> str:
        return self.system_prompt.toPlainText()

    def _changed(self, *_args: Any) -> None:
        if not self._loading:
            self._emit_timer.start()

    def _emit(self) -> None:
        self._select_matching_preset()
        self.settings_changed.emit(self.system_prompt_text(), self.sampling())

    def flush(self) -> None:
        """Emit a pending change now (before sending, or when switching conversations)."""
        if self._emit_timer.isActive():
            self._emit_timer.stop()
            self._emit()

    # presets -------------------------------------------------------------------------
    def refresh_presets(self) -> None:
        with QSignalBlocker(self.preset_box):
            self.preset_box.clear()
            self.preset_box.addItem("Custom", None)
            for p in self.presets.list():
                self.preset_box.addItem(p.name + ("" if p.builtin else " (yours)"), p.name)
        self._select_matching_preset()

    def _select_matching_preset(self) -> None:
        current = self.sampling()
        for i in range(1, self.preset_box.count()):
            preset = self.presets.get(self.preset_box.itemData(i))
            if _same_sampling(preset.sampling, current):
                with QSignalBlocker(self.preset_box):
                    self.preset_box.setCurrentIndex(i)
                self.delete_preset_button.setEnabled(not preset.builtin)
                return
        with QSignalBlocker(self.preset_box):
            self.preset_box.setCurrentIndex(0)
        self.delete_preset_button.setEnabled(False)

    def _apply_preset(self, index: int) -> None:
        name = self.preset_box.itemData(index)
        if not name:
            return
        preset = self.presets.get(name)
        prompt = preset.system_prompt if preset.system_prompt is not None else (
            self.system_prompt_text())
        self.load(prompt, preset.sampling)
        self._emit()

    def save_preset(self, name: str) -> None:
        try:
            self.presets.save(name, self.sampling(), self.system_prompt_text() or None)
        except UserFacingError as exc:
            self.error.setText(exc.message)
            return
        self.error.clear()
        self.refresh_presets()

    def _save_preset_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Preset name:")
        if ok and name.strip():
            self.save_preset(name.strip())

    def _delete_preset(self) -> None:
        name = self.preset_box.currentData()
        if not name:
            return
        try:
            self.presets.delete(name)
        except UserFacingError as exc:
            self.error.setText(exc.message)
            return
        self.refresh_presets()


def _same_sampling(a: SamplingParams, b: SamplingParams) -> bool:
    keys = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty")
    return all(abs(float(getattr(a, k)) - float(getattr(b, k))) < 1e-6 for k in keys)
