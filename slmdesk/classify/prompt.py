"""The words of a classifier's prompt: instructions, the label list, few-shot examples, and
the chat layout (where the instructions go, what opens the assistant's answer)."""

from __future__ import annotations

from dataclasses import dataclass

from slmdesk.classify.spec import ClassifierSpec, Label

DEFAULT_INSTRUCTIONS = "Classify the text into one of the labels."
DEFAULT_MULTI_INSTRUCTIONS = "Decide which of the labels apply to the text."


@dataclass(frozen=True)
class ChatLayout:
    """Where a single-label chat prompt puts its instructions, and what opens the answer.

    ``instructions_in`` is "system" (a system message with the instructions and the label
    list, the text alone in the user turn) or "user" (instructions, labels and text in one
    user turn). ``opener`` is written at the start of the assistant turn before the label
    word ("Label:" makes the word follow a space, as in " positive"); "" scores the word as
    the first thing the assistant says.
    """

    instructions_in: str = "system"
    opener: str = ""


# Measured on four held-out sets (docs/measurements/zero-shot-layout.md): opening the
# answer with "Label:" lifts SmolLM2-135M's mean zero-shot accuracy by 7-12 points under
# each calibration; the completion prompt already ends with "Label:".
DEFAULT_LAYOUT = ChatLayout(instructions_in="system", opener="Label:")


class PromptWords:
    """Builds the prompt text of one spec in one chat layout (no tokens, no model)."""

    def __init__(self, spec: ClassifierSpec, layout: ChatLayout) -> None:
        self.spec = spec
        self.layout = layout

    @staticmethod
    def question(label: Label, style: str) -> str:
        """The yes/no question of a multi-label classifier about one label."""
        text = f'Does the label "{label.words[0]}" apply to this text? Answer yes or no.'
        return text if style == "chat" else f"Question: {text}"

    def instructions(self) -> str:
        """The spec's instructions, or the default ones."""
        text = self.spec.instructions.strip()
        if text:
            return text
        return DEFAULT_MULTI_INSTRUCTIONS if self.spec.multi_label else DEFAULT_INSTRUCTIONS

    def label_block(self) -> str:
        """One line per label: its first word and its description."""
        lines = []
        for label in self.spec.labels:
            line = f"- {label.words[0]}"
            if label.description.strip():
                line += f": {' '.join(label.description.split())}"
            lines.append(line)
        return "\n".join(lines)

    def examples_block(self) -> str:
        """Multi-label examples, one block per text with all its labels."""
        grouped: dict[str, list[str]] = {}
        for text, name in self.spec.examples:
            grouped.setdefault(text.strip(), []).append(self.spec.label(name).words[0])
        return "\n\n".join(
            f"Text: {text}\nLabels: {', '.join(words)}" for text, words in grouped.items()
        )

    def chat_messages(self, content: str) -> list[dict[str, str]]:
        """System prompt, few-shot turns, and the user turn with ``content``."""
        multi = self.spec.multi_label
        system = f"{self.instructions()}\n\nLabels:\n{self.label_block()}"
        if multi:
            if self.spec.examples:
                system += f"\n\nExamples:\n\n{self.examples_block()}"
            return [{"role": "system", "content": system}, {"role": "user", "content": content}]
        system += "\n\nAnswer with one label from the list and nothing else."
        opener = self.layout.opener
        turns: list[tuple[str, str | None]] = [
            (f"Text: {text.strip()}", self.spec.label(name).words[0])
            for text, name in self.spec.examples
        ]
        turns.append((content, None))
        messages: list[dict[str, str]] = []
        if self.layout.instructions_in == "system":
            messages.append({"role": "system", "content": system})
        else:
            first, answer = turns[0]
            turns[0] = (f"{system}\n\n{first}", answer)
        for question, answer in turns:
            messages.append({"role": "user", "content": question})
            if answer is not None:
                reply = f"{opener} {answer}" if opener else answer
                messages.append({"role": "assistant", "content": reply})
        return messages

    def completion_before(self) -> str:
        """A completion prompt up to the text: instructions, labels, examples, "Text: "."""
        parts = [self.instructions(), f"Labels:\n{self.label_block()}"]
        if self.spec.multi_label:
            if self.spec.examples:
                parts.append(self.examples_block())
        else:
            for text, name in self.spec.examples:
                parts.append(f"Text: {text.strip()}\nLabel: {self.spec.label(name).words[0]}")
        parts.append("Text: ")
        return "\n\n".join(parts)
