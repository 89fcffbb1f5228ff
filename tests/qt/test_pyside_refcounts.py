"""Guard against Qt bindings that lose references to None/True/False.

PySide6 6.12.0 on CPython 3.11 decremented None's (and True's) reference count on every
call that returns nothing and on every signal emission; the interpreter aborted after a few
thousand calls, i.e. seconds into a streamed reply. Pinned away in requirements/constraints.txt.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(int, object)


def test_void_calls_and_emits_keep_none_and_bool_references() -> None:
    obj = QObject()
    emitter = _Emitter()
    seen: list[int] = []
    emitter.fired.connect(lambda i, _o: seen.append(i))
    before_none, before_true = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(2000):
        obj.setObjectName("x")  # returns nothing
        obj.property("missing")  # returns an empty value
        emitter.fired.emit(i, None)
    assert len(seen) == 2000
    # Allow a little drift from unrelated objects; the bug lost thousands.
    assert abs(sys.getrefcount(None) - before_none) < 100
    assert abs(sys.getrefcount(True) - before_true) < 100
