"""Training examples as the engine's llama.cpp tokenizer sees them: tokens plus a loss mask.

Tokenizing with llama.cpp (not transformers) keeps training and use on the same tokens:
transformers' GGUF tokenizer lacks some pre-tokenizers (SmolLM2's among them), so its
tokens can differ from the ones the app later scores and generates with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slmdesk.classify.classifier import Classifier
from slmdesk.classify.spec import ClassifierSpec
from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.engine.params import LoadParams
from slmdesk.errors import InvalidInputError, TemplateError

CHAT_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class TokenizedExample:
    """One training sequence: ``tokens``, and for each token whether it is learnt.

    ``targets[i]`` says whether the model is trained to predict ``tokens[i]`` (an
    assistant's reply or a label word); the prompt around it only conditions.
    """

    tokens: tuple[int, ...]
    targets: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.targets):
            raise ValueError("tokens and targets differ in length")

    @property
    def target_count(self) -> int:
        return sum(self.targets)

    def to_json(self) -> dict[str, Any]:
        return {"tokens": list(self.tokens), "targets": [int(t) for t in self.targets]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenizedExample:
        return cls(tuple(int(t) for t in data["tokens"]), tuple(bool(t) for t in data["targets"]))

    @classmethod
    def from_pieces(cls, prompt: Sequence[int], target: Sequence[int]) -> TokenizedExample:
        return cls(tuple(prompt) + tuple(target), (False,) * len(prompt) + (True,) * len(target))


def tokenizer_engine(model_path: str | os.PathLike[str], max_context: int = 4096) -> LlamaEngine:
    """A LlamaEngine holding only ``model_path``'s vocabulary and chat template (no weights)."""
    engine = LlamaEngine()
    engine.load(model_path, LoadParams(max_context=max_context, vocab_only=True, n_threads=1))
    return engine


def check_conversation(messages: object, where: str) -> list[dict[str, str]]:
    """The OpenAI-style ``messages`` of one chat example, or a clear error naming ``where``."""
    if not isinstance(messages, list) or not messages:
        raise InvalidInputError(f"{where}: a chat example needs a non-empty list of messages.")
    checked: list[dict[str, str]] = []
    for i, message in enumerate(messages, 1):
        if not isinstance(message, Mapping):
            raise InvalidInputError(f"{where}, message {i}: not an object with role and content.")
        role, content = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            raise InvalidInputError(
                f"{where}, message {i}: role {role!r} is not one of {', '.join(CHAT_ROLES)}."
            )
        if not isinstance(content, str):
            raise InvalidInputError(f"{where}, message {i}: the content must be text.")
        if role == "system" and i != 1:
            raise InvalidInputError(f"{where}, message {i}: a system message must come first.")
        checked.append({"role": str(role), "content": content})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in checked):
        raise InvalidInputError(f"{where}: no assistant reply to learn from.")
    return checked


def chat_example(engine: LlamaEngine, messages: Sequence[dict[str, str]]) -> TokenizedExample:
    """Tokenize one conversation with the model's chat template; loss on assistant turns.

    The conversation is rendered a turn at a time: the text up to an assistant turn (with
    the template's opening of that turn) conditions, the reply with its end-of-turn marker
    is learnt. Pieces are tokenized separately at those boundaries, which the templates
    place at special tokens, so they are the tokens generation will see.
    """
    tokens: list[int] = []
    targets: list[bool] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = engine.render(messages[:i], add_generation_prompt=True)
        through = engine.render(messages[: i + 1], add_generation_prompt=False)
        if not before.startswith(done) or not through.startswith(before):
            raise TemplateError(
                "The model's chat template does not render a conversation turn by turn; "
                "it cannot be used for chat fine-tuning."
            )
        prompt_piece = before[len(done):]
        reply_piece = through[len(before):]
        prompt_tokens = (
            engine.tokenize_prompt(prompt_piece) if not tokens
            else engine.tokenize_piece(prompt_piece, special=True)
        )
        # The reply's own text must not become control tokens; the template's end-of-turn
        # marker after it must.
        reply_tokens = _reply_tokens(engine, reply_piece, message["content"])
        tokens += prompt_tokens + reply_tokens
        targets += [False] * len(prompt_tokens) + [True] * len(reply_tokens)
        done = through
    if not any(targets):
        raise InvalidInputError("A chat example has no assistant reply to learn from.")
    return TokenizedExample(tuple(tokens), tuple(targets))


def _reply_tokens(engine: LlamaEngine, piece: str, content: str) -> list[int]:
    at = piece.find(content) if content else -1
    if at < 0:
        return engine.tokenize_piece(piece, special=True)
    head, tail = piece[:at], piece[at + len(content):]
    return (
        engine.tokenize_piece(head, special=True)
        + engine.tokenize_piece(content, special=False)
        + engine.tokenize_piece(tail, special=True)
    )


def chat_examples(
    engine: LlamaEngine, conversations: Iterable[object], *, what: str = "example"
) -> list[TokenizedExample]:
    """Check and tokenize OpenAI-style conversations (each a list of messages)."""
    return [
        chat_example(engine, check_conversation(messages, f"{what} {n}"))
        for n, messages in enumerate(conversations, 1)
    ]


def classification_examples(
    engine: LlamaEngine, spec: ClassifierSpec, labelled: Iterable[tuple[str, str]]
) -> list[TokenizedExample]:
    """The classifier's own prompt for each text, with its label word as the target."""
    classifier = Classifier(engine, spec)
    names = set(spec.label_names)
    examples = []
    for n, (text, label) in enumerate(labelled, 1):
        if label not in names:
            raise InvalidInputError(f"example {n}: label {label!r} is not one of the classifier's.")
        if not text.strip():
            raise InvalidInputError(f"example {n}: the text is empty.")
        prompt, target = classifier.training_pair(text, label)
        examples.append(TokenizedExample.from_pieces(prompt, target))
    return examples
