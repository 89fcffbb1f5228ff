"""Render a model's chat template safely: Jinja sandbox, bounded loops, size and time."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from slmdesk.errors import TemplateError

MAX_OUTPUT_CHARS = 4_000_000  # a rendered prompt larger than this cannot fit any context
MAX_RANGE = 100_000
MAX_SEQUENCE_RESULT = 1_000_000  # longest string/list a template may build with * or +
RENDER_SECONDS = 2.0

# Used when a model has no template, or its template cannot be rendered safely.
# ChatML is understood reasonably well by most instruction-tuned small models.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class _IgnoreGenerationTags(jinja2.ext.Extension):
    """Pass-through for Hugging Face's ``{% generation %}`` tag."""

    tags = frozenset({"generation"})  # type: ignore[assignment]

    def parse(self, parser: Any) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """A sandbox that also bounds the size of values built with ``*`` and ``+``."""

    intercepted_binops = frozenset(["*", "**", "+"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise jinja2.exceptions.SecurityError("exponent too large")
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    if len(seq) * n > MAX_SEQUENCE_RESULT:
                        raise jinja2.exceptions.SecurityError("sequence too large")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                if len(left) + len(right) > MAX_SEQUENCE_RESULT:
                    raise jinja2.exceptions.SecurityError("sequence too large")
        return super().call_binop(context, operator, left, right)


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise TemplateError(f"The chat template refused the conversation: {message}")


def _bounded_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise jinja2.exceptions.SecurityError(f"range too big ({len(r)} items)")
    return r


def _environment() -> _BoundedEnvironment:
    env = _BoundedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols],
        autoescape=False,
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(str(fmt)[:64])
    env.globals["range"] = _bounded_range
    return env


class _Deadline:
    """A trace hook that stops template code running past a deadline.

    Jinja compiles templates to Python code named ``<template>``; tracing only those
    frames bounds loops that produce no output (which a per-chunk check would miss)
    at little cost, since templates are small.
    """

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateError("The chat template took too long to render.")

    def global_trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if frame.f_code.co_filename == "<template>":
            self.check()
            return self.local_trace
        return None

    def local_trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        self.check()
        return self.local_trace


@dataclass(frozen=True)
class ChatTemplate:
    """A compiled chat template with the special tokens it expects."""

    source: str
    bos_token: str
    eos_token: str
    is_fallback: bool = False
    _compiled: jinja2.Template = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = _environment().from_string(self.source)
        except (jinja2.TemplateError, RecursionError, MemoryError, ValueError) as exc:
            raise TemplateError(f"The model's chat template is not valid: {exc}") from exc
        object.__setattr__(self, "_compiled", compiled)

    def render(
        self, messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = True
    ) -> str:
        """Render ``messages`` to prompt text, bounded in time and output size."""
        compiled: jinja2.Template = self._compiled
        deadline = _Deadline(RENDER_SECONDS)
        pieces: list[str] = []
        total = 0
        previous_trace = sys.gettrace()
        sys.settrace(deadline.global_trace)
        try:
            for piece in compiled.generate(
                messages=[dict(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            ):
                total += len(piece)
                if total > MAX_OUTPUT_CHARS:
                    raise TemplateError("The chat template produced an oversized prompt.")
                pieces.append(piece)
        except TemplateError:
            raise
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(
                f"The chat template tried something unsafe and was stopped: {exc}"
            ) from exc
        except (RecursionError, MemoryError) as exc:
            raise TemplateError("The chat template recursed too deeply.") from exc
        except Exception as exc:
            raise TemplateError(f"The chat template failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.settrace(previous_trace)
        return "".join(pieces)


def fallback_template(bos_token: str = "", eos_token: str = "") -> ChatTemplate:
    return ChatTemplate(FALLBACK_TEMPLATE, bos_token, eos_token, is_fallback=True)
