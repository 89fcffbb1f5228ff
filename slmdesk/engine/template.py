"""Render a model's chat template safely: Jinja sandbox, bounded loops, size and time."""

from __future__ import annotations

import functools
import json
import re
import string
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any, NoReturn

import jinja2
import jinja2.ext
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.sandbox import ImmutableSandboxedEnvironment

from slmdesk.errors import TemplateError

MAX_OUTPUT_CHARS = 4_000_000  # a rendered prompt larger than this cannot fit any context
MAX_RANGE = 100_000
MAX_SEQUENCE_RESULT = 1_000_000  # longest string/list a template may build with * or +
# Largest int a template may pass to a filter or method (a width, a count, an indent): one
# C call such as 'x'.center(10**10) allocates before any deadline check can run.
MAX_INT_ARGUMENT = 100_000
MAX_INT_BITS = 4096  # products and powers larger than this are refused, not computed
RENDER_SECONDS = 2.0

# String methods a template may call. Others (translate, encode, maketrans...) either never
# appear in chat templates or can build huge strings in one step; they are refused.
_SAFE_STR_METHODS = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find", "format",
    "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
    "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper",
    "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
    "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
    "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
})
# A printf conversion: its width and precision are what can blow up ('%999999999s').
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")

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


def _refuse(what: str) -> NoReturn:
    raise jinja2.exceptions.SecurityError(what)


def _check_size(size: int) -> None:
    if size > MAX_SEQUENCE_RESULT:
        _refuse(f"result too large ({size:,} items)")


def _check_ints(args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > MAX_INT_ARGUMENT:
                _refuse(f"argument too large ({value})")


def _check_printf(fmt: str) -> None:
    for match in _PRINTF_SPEC.finditer(fmt):
        for field_width in match.groups():
            if field_width == "*":
                _refuse("'*' widths are not allowed")
            if field_width is not None and int(field_width) > MAX_INT_ARGUMENT:
                _refuse(f"format width too large ({field_width})")


def _check_format(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            _refuse("nested format fields are not allowed")
        for digits in re.findall(r"\d+", spec or ""):
            if int(digits) > MAX_INT_ARGUMENT:
                _refuse(f"format width too large ({digits})")


def _join_size(separator: str, items: Sequence[Any]) -> int:
    pieces = sum(len(x) if isinstance(x, str) else 20 for x in items)
    return pieces + len(separator) * max(0, len(items) - 1)


def _replace_size(text: str, old: str, new: str, count: int = -1) -> int:
    if len(new) <= len(old):
        return len(text)
    hits = len(text) + 1 if old == "" else text.count(old)
    if count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _check_str_method(text: str, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """Refuse a call of ``text.name(*args)`` whose result would be too large."""
    if name not in _SAFE_STR_METHODS:
        _refuse(f"str.{name} is not allowed in a chat template")
    if name in ("format", "format_map"):
        _check_format(text)
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            count = args[2] if len(args) > 2 and isinstance(args[2], int) else -1
            _check_size(_replace_size(text, old, new, count))
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            _check_size(len(text) + text.count("\t") * tabsize)


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Jinja filter so that its arguments cannot make it build a huge value.

    The wrapper also runs when Jinja folds constants at compile time, so a hostile
    constant expression is refused before it is ever evaluated.
    """

    @functools.wraps(func)  # keeps jinja_pass_arg, so Jinja passes the same leading args
    def guarded(*args: Any, **kwargs: Any) -> Any:
        rest = [a for a in args if not isinstance(a, (jinja2.nodes.EvalContext,
                                                      jinja2.Environment))]
        _check_ints(rest[1:], kwargs)
        value = rest[0] if rest else None
        params = rest[1:]
        if name == "format" and isinstance(value, str):
            _check_printf(value)
        elif name == "replace" and isinstance(value, str) and len(params) >= 2:
            old, new = str(params[0]), str(params[1])
            count = params[2] if len(params) > 2 and isinstance(params[2], int) else -1
            _check_size(_replace_size(value, old, new, count))
        elif name == "indent" and isinstance(value, str):
            width = params[0] if params else kwargs.get("width", 4)
            prefix = len(width) if isinstance(width, str) else int(width)
            _check_size(len(value) + (value.count("\n") + 1) * prefix)
        elif name == "wordwrap" and isinstance(value, str):
            width = params[0] if params else kwargs.get("width", 79)
            wrap = params[2] if len(params) > 2 else kwargs.get("wrapstring") or "\n"
            lines = len(value) // max(int(width), 1) + 1
            _check_size(len(value) + lines * len(str(wrap)))
        elif name in ("join", "sum") and value is not None:
            items = list(value)
            if name == "join":
                separator = params[0] if params else kwargs.get("d", "")
                _check_size(_join_size(str(separator), items))
            elif any(isinstance(x, (str, list, tuple)) for x in items):
                _check_size(sum(len(x) for x in items if isinstance(x, (str, list, tuple))))
            # The iterable may have been a one-shot generator: pass on what was read.
            args = tuple(items if a is value else a for a in args)
        return func(*args, **kwargs)

    return guarded


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a size-checked join instead of Jinja's plain one."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """A sandbox that also bounds the size of everything a template can build.

    Operators, ``~``, filters and string methods are checked *before* they run: a single
    C-level call ('x' * 10**10, 'a'.replace('', big), '%999999999s' % x) allocates at once,
    so neither the render deadline nor the output limit could stop it in time.
    """

    code_generator_class = _BoundedCodeGenerator
    # "%" is intercepted too: besides bounding it, that keeps Jinja from folding a constant
    # '%999999999s' % 'x' at compile time, outside every check.
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                _refuse("exponent too large")
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                if left.bit_length() * right > MAX_INT_BITS:
                    _refuse("number too large")
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    _check_size(len(seq) * n)
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    _refuse("number too large")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _check_size(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_ints(args, kwargs)
        # str.format arrives wrapped by the sandbox; the bound method is its __wrapped__.
        target = getattr(__obj, "__wrapped__", __obj)
        bound_to = getattr(target, "__self__", None)
        if isinstance(bound_to, str):
            name = getattr(target, "__name__", "")
            if name == "join" and args:
                items = list(args[0])
                _check_size(_join_size(bound_to, items))
                args = (items, *args[1:])
            else:
                _check_str_method(bound_to, name, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def bounded_concat(self, pieces: Sequence[Any]) -> str:
        texts = [p if isinstance(p, str) else str(p) for p in pieces]
        _check_size(sum(map(len, texts)))
        return "".join(texts)


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
    env.filters.update({name: _guard_filter(name, f) for name, f in env.filters.items()})
    # lipsum(10**9) runs in Jinja's own Python code, where the render deadline does not
    # look; no chat template uses it.
    del env.globals["lipsum"]
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
