"""Chat templates render in a sandbox, bounded in time, loops and size."""

from __future__ import annotations

import time

import pytest

from slmdesk.engine.template import ChatTemplate, fallback_template
from slmdesk.errors import TemplateError

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
MSGS = [{"role": "user", "content": "Hi"}]


def test_renders_a_real_style_template() -> None:
    out = ChatTemplate(CHATML, "", "").render(MSGS)
    assert out == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_bos_eos_tojson_and_raise_exception_are_available() -> None:
    t = ChatTemplate("{{ bos_token }}{{ messages | tojson }}{{ eos_token }}", "<s>", "</s>")
    assert t.render(MSGS) == '<s>[{"role": "user", "content": "Hi"}]</s>'
    strict = ChatTemplate(
        "{% if messages[0]['role'] != 'system' %}{{ raise_exception('need system') }}{% endif %}",
        "", "",
    )
    with pytest.raises(TemplateError, match="need system"):
        strict.render(MSGS)


@pytest.mark.parametrize(
    "source",
    [
        # sandbox escapes
        "{{ ().__class__.__bases__[0].__subclasses__() }}",
        "{{ messages.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ self._TemplateReference__context }}{{ lipsum.__globals__['os'] }}",
        "{% set x = messages.append({'role': 'x'}) %}",
        # unbounded work
        "{{ 'a' * 10**9 }}",
        "{{ [0] * 10**8 }}",
        "{{ 9 ** 999999999 }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
        "{% set ns = namespace(s='aaaaaaaaaa') %}{% for i in range(30) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
        "{% for c in 'x' * 999999 %}{% for d in 'y' * 999999 %}{% endfor %}{% endfor %}",
        # syntax error
        "{% for %}",
    ],
)
def test_hostile_templates_are_stopped(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError):
        ChatTemplate(source, "", "").render(MSGS)
    # Bounded: the render deadline is 2 s; allow slack for a loaded machine.
    assert time.monotonic() - started < 30


def test_output_size_is_bounded() -> None:
    src = "{% for i in range(99999) %}{{ 'x' * 999 }}{% endfor %}"
    with pytest.raises(TemplateError, match=r"oversized|too long"):
        ChatTemplate(src, "", "").render(MSGS)


def test_fallback_template_is_chatml() -> None:
    t = fallback_template()
    assert t.is_fallback
    assert t.render(MSGS).endswith("<|im_start|>assistant\n")


def test_the_tracer_is_restored_after_render() -> None:
    import sys

    before = sys.gettrace()
    ChatTemplate(CHATML, "", "").render(MSGS)
    assert sys.gettrace() is before
