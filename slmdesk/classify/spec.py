"""What a classifier is: its labels, instructions, few-shot examples, how it calibrates, and
the trained scorer that replaces calibration in a trained classifier.

Plain data with JSON round-trips; saved classifiers store ``ClassifierSpec.to_json()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from slmdesk.classify.learned import TrainedScorer
from slmdesk.errors import InvalidInputError

CALIBRATIONS = ("none", "contextual", "batch", "auto")
# How a classifier was made: written by hand (zero-shot or few-shot), or trained on a data
# set by ``slmdesk.training`` ("prompt": a searched prompt, maybe with a learned
# calibration; "head": a linear model on the model's hidden state; "lora": the prompt
# answered by a fine-tune, the base model with a LoRA adapter, the classifier's model).
METHODS = ("zero_shot", "prompt", "head", "lora")
PROMPT_STYLES = ("auto", "chat", "completion")


@dataclass(frozen=True)
class Label:
    """One class: the name shown and reported, and the words the model is scored on."""

    name: str
    description: str = ""
    verbalizers: tuple[str, ...] = ()  # empty means (name,)

    @property
    def words(self) -> tuple[str, ...]:
        """The verbalizers actually scored."""
        return self.verbalizers or (self.name,)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "verbalizers": list(self.verbalizers),
        }


@dataclass(frozen=True)
class ClassifierSpec:
    """Everything that decides a classifier's prompt and scores (not the model)."""

    labels: tuple[Label, ...]
    instructions: str = ""
    examples: tuple[tuple[str, str], ...] = ()  # (text, label name)
    calibration: str = "auto"  # "none" | "contextual" | "batch" | "auto"
    multi_label: bool = False
    threshold: float = 0.5
    prompt_style: str = "auto"  # "auto" | "chat" | "completion"
    explain: bool = False
    # Set by training (slmdesk.training): the method, a linear model over the prompt's
    # label log-probabilities or the model's hidden state that replaces calibration, and
    # what training measured (every method tried on validation, the chosen one on test).
    method: str = "zero_shot"
    trained: TrainedScorer | None = None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def label(self, name: str) -> Label:
        for label in self.labels:
            if label.name == name:
                return label
        raise InvalidInputError(f"Unknown label '{name}'.")

    def with_changes(self, **changes: Any) -> ClassifierSpec:
        """A copy with some fields replaced (and validated)."""
        return replace(self, **changes).validate()

    def with_training_of(self, trained: ClassifierSpec | None) -> ClassifierSpec:
        """This spec with the training of ``trained`` (method, trained scorer, report) when
        it still fits: the same labels, words, instructions, examples and prompt style
        (and calibration, where training chose a fixed one). A face that rebuilds a saved
        classifier from its fields calls this so the training is not lost; an edit that
        changes the prompt makes a plain classifier again, since what was trained was
        trained on that prompt."""
        if trained is None or trained.method == "zero_shot":
            return self
        same = (
            self.labels == trained.labels and self.instructions == trained.instructions
            and self.examples == trained.examples and self.multi_label == trained.multi_label
            and self.prompt_style == trained.prompt_style
            and (trained.trained is not None or self.calibration == trained.calibration)
        )
        if not same:
            return self
        return replace(self, method=trained.method, trained=trained.trained,
                       training=trained.training).validate()

    def validate(self) -> ClassifierSpec:
        """Check the spec; returns it, or raises ``InvalidInputError`` saying what is wrong."""
        need = 1 if self.multi_label else 2
        if len(self.labels) < need:
            raise InvalidInputError(
                "A multi-label classifier needs at least one label."
                if self.multi_label
                else "A classifier needs at least two labels."
            )
        seen: dict[str, str] = {}
        words: dict[str, str] = {}
        for label in self.labels:
            if not label.name.strip():
                raise InvalidInputError("A label name is empty.")
            if label.name != label.name.strip():
                raise InvalidInputError(
                    f"The label '{label.name}' starts or ends with spaces."
                )
            folded = label.name.casefold()
            if folded in seen:
                raise InvalidInputError(
                    f"The label '{label.name}' is given twice"
                    + ("." if seen[folded] == label.name else f" (as '{seen[folded]}').")
                )
            seen[folded] = label.name
            for word in label.words:
                if not word.strip():
                    raise InvalidInputError(f"The label '{label.name}' has an empty word.")
                key = word.strip().casefold()
                if key in words and words[key] != label.name:
                    raise InvalidInputError(
                        f"The word '{word}' is used by both '{words[key]}' and "
                        f"'{label.name}'; the model could not tell them apart."
                    )
                words[key] = label.name
        for text, name in self.examples:
            if not text.strip():
                raise InvalidInputError("An example has no text.")
            if name not in seen.values():
                raise InvalidInputError(
                    f"An example is labelled '{name}', which is not one of the labels "
                    f"({', '.join(self.label_names)})."
                )
        if self.calibration not in CALIBRATIONS:
            raise InvalidInputError(
                f"Unknown calibration '{self.calibration}' (use {', '.join(CALIBRATIONS)})."
            )
        if self.prompt_style not in PROMPT_STYLES:
            raise InvalidInputError(
                f"Unknown prompt style '{self.prompt_style}' (use {', '.join(PROMPT_STYLES)})."
            )
        if self.method not in METHODS:
            raise InvalidInputError(
                f"Unknown method '{self.method}' (use {', '.join(METHODS)})."
            )
        if self.method == "head" and self.trained is None:
            raise InvalidInputError("A head classifier needs its trained parameters.")
        if self.trained is not None:
            if self.method == "zero_shot":
                raise InvalidInputError("Trained parameters need a training method.")
            if self.multi_label:
                raise InvalidInputError("A trained classifier is single-label.")
            if self.trained.model.labels != self.label_names:
                raise InvalidInputError(
                    "The trained classifier's labels do not match its label list."
                )
        if not 0.0 < self.threshold < 1.0:
            raise InvalidInputError(
                f"The threshold must be between 0 and 1 (got {self.threshold})."
            )
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": [label.to_json() for label in self.labels],
            "instructions": self.instructions,
            "examples": [{"text": t, "label": n} for t, n in self.examples],
            "calibration": self.calibration,
            "multi_label": self.multi_label,
            "threshold": self.threshold,
            "prompt_style": self.prompt_style,
            "explain": self.explain,
            "method": self.method,
            **({"trained": self.trained.to_json()} if self.trained is not None else {}),
            **({"training": self.training} if self.training else {}),
        }

    @classmethod
    def from_json(cls, data: Any) -> ClassifierSpec:
        """Build and validate a spec from ``to_json`` output (label names alone work too)."""
        if not isinstance(data, dict):
            raise InvalidInputError("A classifier must be a JSON object.")
        raw_labels = data.get("labels")
        if not isinstance(raw_labels, list):
            raise InvalidInputError("A classifier needs a list of labels.")
        labels = tuple(_label_from_json(item) for item in raw_labels)
        raw_examples = data.get("examples") or []
        if not isinstance(raw_examples, list):
            raise InvalidInputError("The examples must be a list.")
        examples = tuple(_example_from_json(item) for item in raw_examples)
        threshold = data.get("threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise InvalidInputError("The threshold must be a number.")
        spec = cls(
            labels=labels,
            instructions=_str(data.get("instructions", ""), "instructions"),
            examples=examples,
            calibration=_str(data.get("calibration", "auto"), "calibration"),
            multi_label=bool(data.get("multi_label", False)),
            threshold=float(threshold),
            prompt_style=_str(data.get("prompt_style", "auto"), "prompt_style"),
            explain=bool(data.get("explain", False)),
            method=_str(data.get("method", "zero_shot"), "method") or "zero_shot",
            trained=TrainedScorer.from_json(data["trained"]) if data.get("trained") else None,
            training=_training(data.get("training")),
        )
        return spec.validate()


def _str(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(f"The {what} must be text.")
    return value


def _training(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError("The training report must be an object.")
    return value


def _label_from_json(item: Any) -> Label:
    if isinstance(item, str):
        return Label(item)
    if not isinstance(item, dict):
        raise InvalidInputError("Each label must be a name or an object with a name.")
    name = _str(item.get("name"), "label name")
    words = item.get("verbalizers") or []
    if isinstance(words, str) or not isinstance(words, list):
        raise InvalidInputError(f"The words of label '{name}' must be a list.")
    return Label(
        name=name,
        description=_str(item.get("description", ""), "label description"),
        verbalizers=tuple(_str(w, "label word") for w in words),
    )


def _example_from_json(item: Any) -> tuple[str, str]:
    if isinstance(item, dict):
        return _str(item.get("text"), "example text"), _str(item.get("label"), "example label")
    if isinstance(item, (list, tuple)) and len(item) == 2:
        return _str(item[0], "example text"), _str(item[1], "example label")
    raise InvalidInputError("Each example must be an object with a text and a label.")
