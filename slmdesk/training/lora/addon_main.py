"""The trainer add-on's entry point (``slmdesk-trainer``, packaging/slmdesk-trainer.spec): runs
one LoRA job, describes itself, or runs llama.cpp's adapter converter.

    slmdesk-trainer JOB_FOLDER          the trainer process (``worker.main``)
    slmdesk-trainer --info              one JSON object: versions, trainable architectures
    slmdesk-trainer --convert-lora ...  convert_lora_to_gguf.py's command line (frozen inside)

A frozen program has no ``python -m`` and no ``python script.py``: what a source install
starts as ``python -m slmdesk.training.lora.worker`` and ``python convert_lora_to_gguf.py``,
the add-on starts as itself with these arguments.
"""

from __future__ import annotations

import importlib.metadata
import json
import runpy
import sys
from typing import Any

INFO_FLAG = "--info"
CONVERT_FLAG = "--convert-lora"
# The converter script's module name: the add-on's spec freezes it (and its conversion/
# package) from the llama-cpp-python source package of the bundled llama.cpp's version.
CONVERTER_MODULE = "convert_lora_to_gguf"
_VERSIONED = ("torch", "transformers", "peft", "safetensors", "gguf")


def info() -> dict[str, Any]:
    """What this trainer is: slmdesk's version, its libraries', the architectures it loads."""
    from slmdesk import __version__
    from slmdesk.training.lora.preflight import trainable_architectures

    versions: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"slmdesk": __version__, "packages": versions,
            "architectures": sorted(trainable_architectures())}


def run_converter(args: list[str]) -> int:
    """Run llama.cpp's convert_lora_to_gguf.py as ``__main__`` with ``args``."""
    sys.argv = [f"{CONVERTER_MODULE}.py", *args]
    try:
        runpy.run_module(CONVERTER_MODULE, run_name="__main__", alter_sys=True)
    except SystemExit as stop:  # argparse and the script's own exits
        code = stop.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [INFO_FLAG]:
        print(json.dumps(info()))
        return 0
    if args[:1] == [CONVERT_FLAG]:
        return run_converter(args[1:])
    from slmdesk.training.lora import worker

    return worker.main(args)


if __name__ == "__main__":
    sys.exit(main())
