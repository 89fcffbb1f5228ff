"""Turn a peft LoRA adapter into a GGUF adapter with llama.cpp's own convert_lora_to_gguf.py.

The converter is taken from the source package of the installed llama-cpp-python, so it
writes the tensor names and metadata of the very llama.cpp the engine runs. Only three
parts of that package are needed (the script, its ``conversion/`` package and its
``gguf-py/``); they are unpacked once into the cache directory. The trainer add-on of the
packaged app has them frozen inside (packaging/slmdesk-trainer.spec) and runs them as
``slmdesk-trainer --convert-lora``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from slmdesk.errors import TrainingError

SCRIPT = "convert_lora_to_gguf.py"
# Set to a llama-cpp-python source archive (.tar.gz) to use it instead of asking pip.
SDIST_ENV = "SLMDESK_LLAMA_CPP_SDIST"
_VENDOR = "vendor/llama.cpp/"
_NEEDED = (SCRIPT, "conversion/", "gguf-py/")
# transformers' config class name per GGUF architecture, for the converter's model lookup.
ARCHITECTURE_CLASSES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3": "Gemma3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
}


def llama_cpp_version() -> str:
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError as exc:
        raise TrainingError("llama-cpp-python is not installed.") from exc


def converter_script(cache_dir: Path) -> Path:
    """The path of convert_lora_to_gguf.py for the installed llama-cpp-python, unpacking it
    from the source package into ``cache_dir`` on first use."""
    version = llama_cpp_version()
    folder = cache_dir / f"llama-cpp-converter-{version}"
    script = folder / SCRIPT
    if script.is_file():
        return script
    archive = _source_archive(cache_dir, version)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if _wanted(m.name)]
            for member in members:
                member.name = member.name.split(_VENDOR, 1)[1]
            tar.extractall(partial, members=members, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise TrainingError(f"Could not unpack the converter from {archive.name}: {exc}") from exc
    if not (partial / SCRIPT).is_file():
        raise TrainingError(f"{archive.name} holds no {_VENDOR}{SCRIPT}.")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)  # complete or absent: a killed unpack is redone
    return script


def _wanted(name: str) -> bool:
    if _VENDOR not in name:
        return False
    inner = name.split(_VENDOR, 1)[1]
    return any(inner == n or (n.endswith("/") and inner.startswith(n)) for n in _NEEDED)


def _source_archive(cache_dir: Path, version: str) -> Path:
    """The llama-cpp-python source archive: $SLMDESK_LLAMA_CPP_SDIST, the cache, or pip."""
    name = f"llama_cpp_python-{version}.tar.gz"
    given = os.environ.get(SDIST_ENV)
    if given:
        if not Path(given).is_file():
            raise TrainingError(f"{SDIST_ENV} names {given}, which is not a file.")
        return Path(given)
    cached = cache_dir / name
    if cached.is_file():
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    # pip answers from its own cache when it has the archive; otherwise it asks the index.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"llama-cpp-python=={version}", "-d", str(cache_dir)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrainingError(f"Could not run pip to get llama.cpp's converter: {exc}") from exc
    if done.returncode != 0 or not cached.is_file():
        raise TrainingError(
            f"Could not get the llama-cpp-python {version} source package, which holds "
            f"llama.cpp's {SCRIPT} (set {SDIST_ENV} to a downloaded copy): "
            f"{done.stderr.strip()[-400:]}"
        )
    return cached


def converter_config(config: dict[str, Any], architecture: str) -> dict[str, Any]:
    """The config.json the converter needs, from the one transformers made for a GGUF model.

    Two fields of a GGUF-loaded config stop the converter: ``architectures`` is null (it
    picks its model class from it) and ``quantization_config`` says "gguf", which it
    refuses as an unsupported quantization. The weights are float32 by now anyway.
    """
    fixed = dict(config)
    fixed.pop("quantization_config", None)
    if not fixed.get("architectures"):
        name = ARCHITECTURE_CLASSES.get(architecture)
        if name is None:
            raise TrainingError(f"No converter model class is known for {architecture} models.")
        fixed["architectures"] = [name]
    return fixed


def converter_command(cache_dir: Path) -> tuple[list[str], Path | None]:
    """How to start the converter, and in which folder: the trainer add-on (frozen) runs its
    own frozen copy (``slmdesk-trainer --convert-lora``); a source install runs the script
    unpacked from llama-cpp-python's source package."""
    if getattr(sys, "frozen", False):
        from slmdesk.training.lora.addon_main import CONVERT_FLAG

        return [sys.executable, CONVERT_FLAG], None
    script = converter_script(cache_dir)
    return [sys.executable, str(script)], script.parent


def convert_adapter(
    adapter_dir: Path, config: dict[str, Any], architecture: str, out_file: Path,
    cache_dir: Path,
) -> Path:
    """Convert the peft adapter in ``adapter_dir`` to ``out_file`` (GGUF, f16).

    The file appears complete or not at all: the converter writes beside it first.
    """
    command, cwd = converter_command(cache_dir)
    base_dir = adapter_dir / "converter-base"
    base_dir.mkdir(exist_ok=True)
    (base_dir / "config.json").write_text(
        json.dumps(converter_config(config, architecture), indent=1), encoding="utf-8"
    )
    partial = out_file.with_name(out_file.name + ".partial")
    cmd = [*command, "--base", str(base_dir), "--outfile", str(partial),
           "--outtype", "f16", str(adapter_dir)]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=1800, cwd=cwd,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrainingError(f"llama.cpp's adapter converter did not finish: {exc}") from exc
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise TrainingError(
            f"llama.cpp's adapter converter failed: {done.stderr.strip()[-800:]}"
        )
    partial.replace(out_file)
    return out_file
