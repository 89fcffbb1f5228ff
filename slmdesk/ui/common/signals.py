"""connect_handlers: connect a Qt object's signals to an owner's methods named after them
(``_on_<signal>``), so a follower lists the signals it hears once instead of a connect a line."""

from __future__ import annotations

from PySide6.QtCore import QObject


def connect_handlers(source: QObject, owner: object, *signals: str, prefix: str = "_on_") -> None:
    """Connect each of ``source``'s ``signals`` to ``owner``'s method ``prefix + signal``
    (Qt's connectSlotsByName idea, without object names); a missing signal or method
    raises ``AttributeError`` at once, when the follower is built."""
    for name in signals:
        getattr(source, name).connect(getattr(owner, prefix + name))
