"""A temporary SLMDESK_HOME for a benchmark part, so nothing touches the person's own data."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_home(prefix: str) -> Iterator[Path]:
    """Point SLMDESK_HOME at a fresh temporary folder; put the old value back afterwards."""
    old = os.environ.get("SLMDESK_HOME")
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["SLMDESK_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("SLMDESK_HOME", None)
        else:
            os.environ["SLMDESK_HOME"] = old
