"""Default file names offered by the save dialogs."""

from __future__ import annotations


def safe_file_stem(name: str, fallback: str) -> str:
    """``name`` with every character but letters, digits, spaces, - and _ replaced by _, for a
    default file name; ``fallback`` where nothing is left."""
    safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in name).strip()
    return safe or fallback
