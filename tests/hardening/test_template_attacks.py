"""Hostile chat templates: no code runs, rendering is bounded in time and memory, a model
with such a template loads with the safe fallback template, and the window says so."""

from __future__ import annotations

import shutil
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from slmdesk.engine.template import ChatTemplate
from slmdesk.errors import TemplateError

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
# Far below what any of the attacks would allocate if they ran (hundreds of MB to TB).
MEMORY_BOUND = 64 * 1024 * 1024

ESCAPES = [
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__ }}",
    "{{ messages|attr('__class__')|attr('__mro__') }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(messages) }}",
    "{{ '{x.__class__.__base__.__subclasses__}'.format_map({'x': messages}) }}",
    "{{ '%s'|format(messages.__class__.__mro__) }}",
    "{{ raise_exception.__globals__ }}",
    "{{ strftime_now.__globals__ }}",
    "{% set x = messages.append({'role': 'x'}) %}",
    "{% set x = messages[0].update({'role': 'x'}) %}",
    "{{ ('a'*10).translate({97: 'b'}) }}",
    "{{ 'a'.encode('utf-8') }}",
]

BOMBS = [
    # one C-level call that would allocate gigabytes at once
    "{{ 'a' * 10**9 }}",
    "{{ [0] * 10**8 }}",
    "{{ '%999999999s' % 'x' }}",
    "{{ '%*s' % (999999999, 'x') }}",
    "{{ '%.999999999f' % 1.5 }}",
    "{{ '%999999999s'|format('x') }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ '{:>{w}}'.format('x', w=999999999) }}",
    "{{ 'x'.center(999999999) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ 'x'.ljust(999999999) }}{{ 'x'.zfill(999999999) }}",
    "{{ ('\t' * 999999).expandtabs(99999) }}",
    "{{ 'x\ny'|indent(999999999) }}",
    "{{ ('x\n' * 499999)|indent('y' * 999999) }}",
    "{{ ('a' * 999999).replace('', 'b' * 999999) }}",
    "{{ ('a' * 999999)|replace('', 'b' * 999999) }}",
    "{{ ['a' * 999999]|map('replace', '', 'b' * 999999)|list }}",
    "{{ ('b' * 999999)|join('c' * 999999) }}",
    "{{ ('c' * 999999).join('b' * 999999) }}",
    "{{ ([[0] * 999999] * 999999)|sum(start=[]) }}",
    "{{ ('a ' * 499999)|wordwrap(1, wrapstring='x' * 999999) }}",
    "{{ messages|tojson(indent=999999999) }}",
    "{{ [1]|batch(999999999, 'x')|list }}",
    "{{ lipsum(999999999) }}",
    "{{ 9 ** 999999999 }}",
    "{{ (10 ** 64) ** 64 }}",
    # growth by repetition: each step is small, the total is not
    "{% set ns = namespace(s='aaaaaaaaaa') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(s='aaaaaaaaaa') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(x=3) %}{% for i in range(40) %}"
    "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
    # unbounded time
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
    "{% for i in range(99999) %}{{ 'x' * 999 }}{% endfor %}",
]


def _render_bounded(source: str) -> tuple[str | TemplateError, int]:
    """Compile and render ``source``; return the text or the error, and the peak memory."""
    tracemalloc.start()
    try:
        try:
            outcome: str | TemplateError = ChatTemplate(source, "<s>", "</s>").render(MSGS)
        except TemplateError as exc:
            outcome = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return outcome, peak


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_run_no_code_and_leak_nothing(source: str) -> None:
    outcome, _ = _render_bounded(source)
    if isinstance(outcome, str):
        # Jinja may render an unsafe attribute as empty instead of failing; either way
        # nothing from Python's internals reaches the prompt.
        assert outcome == ""
    else:
        assert str(outcome).startswith("The ")  # a sentence for a person, not a traceback


@pytest.mark.parametrize("source", BOMBS)
def test_resource_bombs_are_refused_within_a_memory_bound(source: str) -> None:
    outcome, peak = _render_bounded(source)
    assert isinstance(outcome, TemplateError), f"rendered {str(outcome)[:80]!r}"
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ '%-4s|%5.2f|%d%%' % ('ab', 1.5, 7) }}", "ab  | 1.50|7%"),
        ("{{ '{:>4}|{:<3}|{:.1f}'.format('a', 'b', 2.25) }}", "   a|b  |2.2"),
        ("{{ messages|map(attribute='role')|join(', ') }}", "system, user"),
        ("{{ 'a-b-c'.replace('-', '+') }}{{ 'x y'|replace(' ', '__') }}", "a+b+cx__y"),
        ("{{ 'one\ntwo'|indent(2, true) }}", "  one\n  two"),
        ("{{ ('ab' * 3)|center(10) }}|{{ 'x'.rjust(3, '.') }}", "  ababab  |..x"),
        ("{% for m in messages %}{{ m.role ~ ':' ~ m.content|trim ~ ';' }}{% endfor %}",
         "system:Be brief.;user:Hi;"),
        ("{{ [[1], [2, 3]]|sum(start=[]) }} {{ 2 ** 10 }} {{ 12 * 12 }}", "[1, 2, 3] 1024 144"),
        ("{{ messages[-1]['content']|tojson }}{{ 'Hi'.startswith('H') }}", '"Hi"True'),
    ],
)
def test_what_real_templates_use_still_works(source: str, expected: str) -> None:
    assert ChatTemplate(source, "", "").render(MSGS) == expected


def test_the_starter_models_own_template_still_renders(model_path: Path) -> None:
    from slmdesk.engine.gguf import read_gguf

    template = read_gguf(model_path).chat_template
    assert template
    out = ChatTemplate(template, "", "").render(MSGS)
    assert out.endswith("<|im_start|>assistant\n") and "Be brief." in out


def test_stock_jinja_would_evaluate_a_hostile_constant_at_compile_time() -> None:
    """Why the engine keeps llama-cpp-python from compiling the file's templates."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    source = "{{ 'a' * 30_000_000 }}"
    tracemalloc.start()
    try:
        ImmutableSandboxedEnvironment().from_string(source)
        _, stock_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _, bounded_peak = _render_bounded(source)
    assert stock_peak >= 30_000_000 > 10 * bounded_peak


# -- a real model file carrying a hostile template --------------------------------------------


def _skip_value(f: Any, value_type: int) -> None:
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if value_type == 8:
        (length,) = struct.unpack("<Q", f.read(8))
        f.seek(length, 1)
    elif value_type == 9:
        element_type, count = struct.unpack("<IQ", f.read(12))
        if element_type in sizes:
            f.seek(sizes[element_type] * count, 1)
        else:
            for _ in range(count):
                _skip_value(f, element_type)
    else:
        f.seek(sizes[value_type], 1)


def with_chat_template(source: Path, target: Path, template: str) -> Path:
    """Copy a GGUF with ``tokenizer.chat_template`` replaced; tensor data is unchanged."""
    key = b"tokenizer.chat_template"
    with source.open("rb") as f:
        magic, version, n_tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
        out = bytearray(struct.pack("<4sIQQ", magic, version, n_tensors, n_kv))
        alignment = 32
        for _ in range(n_kv):
            start = f.tell()
            (length,) = struct.unpack("<Q", f.read(8))
            name = f.read(length)
            (value_type,) = struct.unpack("<I", f.read(4))
            value_start = f.tell()
            _skip_value(f, value_type)
            end = f.tell()
            if name == key:
                raw = template.encode()
                out += struct.pack("<Q", length) + name + struct.pack("<IQ", 8, len(raw)) + raw
                continue
            if name == b"general.alignment":
                f.seek(value_start)
                (alignment,) = struct.unpack("<I", f.read(4))
            f.seek(start)
            out += f.read(end - start)
        for _ in range(n_tensors):
            start = f.tell()
            (length,) = struct.unpack("<Q", f.read(8))
            f.seek(length, 1)
            (n_dims,) = struct.unpack("<I", f.read(4))
            f.seek(8 * n_dims + 4 + 8, 1)
            end = f.tell()
            f.seek(start)
            out += f.read(end - start)
        data_start = -f.tell() % alignment + f.tell()
        out += b"\0" * (-len(out) % alignment)
        f.seek(data_start)
        with target.open("wb") as w:
            w.write(out)
            shutil.copyfileobj(f, w, 16 * 1024 * 1024)
    return target


# Compiles (so llama-cpp-python's stock sandbox would fold it) and is refused by ours.
FOLDING_BOMB = "{{ 'a' * 300_000_000 }}{% for m in messages %}{{ m.content }}{% endfor %}"


@pytest.mark.model
@pytest.mark.slow
def test_hostile_template_in_a_real_file_loads_with_the_fallback(
    model_path: Path, tmp_path: Path
) -> None:
    from slmdesk.engine.gguf import read_gguf
    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.engine.params import LoadParams, SamplingParams

    hostile = with_chat_template(model_path, tmp_path / "hostile.gguf", FOLDING_BOMB)
    assert read_gguf(hostile).chat_template == FOLDING_BOMB
    engine = LlamaEngine()
    tracemalloc.start()
    try:
        info = engine.load(hostile, LoadParams(max_context=512, n_threads=1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        # The 300 MB string was never built, neither by llama-cpp-python nor by slmdesk
        # (the load itself allocates ~100 MB of logits buffers through numpy).
        assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB"
        assert info.template_fallback
        assert not engine.has_chat_template()
        result = engine.stream_chat([{"role": "user", "content": "Hi"}],
                                    SamplingParams(temperature=0, max_tokens=4))
        assert result.completion_tokens > 0
    finally:
        engine.unload()


@pytest.mark.model
@pytest.mark.slow
def test_the_window_tells_the_person_when_the_template_is_replaced(
    qtbot: Any, model_path: Path, tmp_path: Path
) -> None:
    from slmdesk.app import build_window
    from slmdesk.catalog.registry import import_model
    from slmdesk.paths import get_paths
    from slmdesk.settings import load_settings, save_settings
    from slmdesk.store.db import open_database

    looping = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    hostile = with_chat_template(model_path, tmp_path / "looping.gguf", looping)
    db = open_database(get_paths().ensure().database)
    record = import_model(db, hostile, name="looping template")
    settings = load_settings(db)
    settings.default_model_id, settings.n_threads, settings.max_context = record.id, 1, 512
    save_settings(db, settings)
    db.close()
    core, engine, win = build_window()
    qtbot.addWidget(win)
    try:
        win.show()
        qtbot.waitUntil(lambda: win.loaded is not None, timeout=60_000)
        assert win.loaded.template_fallback
        assert win.banner.isVisible()
        assert "chat template could not be used safely" in win.banner.text()
    finally:
        win.close()
        engine.shutdown()
        core.db.close()
