"""Test helper: watch the engine jobs that a window or view starts by itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def each_job(client: Any, kind: type, signal: str, handler: Callable[..., Any]) -> Callable[
        [], None]:
    """Connect ``handler`` to ``signal`` of every ``kind`` job the client starts from now on.

    Returns a function that stops following new jobs. (The client's ``job_submitted`` fires
    before any report of the job reaches the GUI thread, so nothing is missed.)
    """
    def attach(job: Any) -> None:
        if isinstance(job, kind):
            getattr(job, signal).connect(handler)

    client.job_submitted.connect(attach)
    return lambda: client.job_submitted.disconnect(attach)
