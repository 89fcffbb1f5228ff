"""A fake trainer add-on for tests: the folder ``./dev package --trainer`` makes, with a
stub executable in place of the frozen trainer (a shell script: Linux and macOS only)."""

from __future__ import annotations

import json
from pathlib import Path

from slmdesk import __version__
from slmdesk.training.lora import addon

# The stub trainer: records its arguments, reports one event and writes the job's result,
# as the real add-on's worker does (slmdesk.training.lora.worker).
STUB = """#!/bin/sh
echo "$@" > "$1/stub-argv.txt"
echo '{"event": "loading", "model": "stub.gguf"}'
echo '{"adapter": "stub.gguf", "steps": 1}' > "$1/result.json"
echo '{"event": "finished", "result": {"steps": 1}}'
"""


def make_addon(folder: Path, *, version: str = __version__,
               architectures: tuple[str, ...] = ("llama", "gemma3")) -> Path:
    """A fake unpacked add-on: the executable and its trainer.json."""
    folder.mkdir(parents=True)
    exe = folder / addon.executable_name()
    exe.write_text(STUB, encoding="utf-8")
    exe.chmod(0o755)
    (folder / addon.MANIFEST).write_text(json.dumps(
        {"slmdesk": version, "packages": {"torch": "2.13.0+cpu"},
         "architectures": list(architectures)}), encoding="utf-8")
    return folder
