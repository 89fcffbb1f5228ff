"""Where a LoRA job's trainer process comes from: the trainer add-on next to a packaged app
(``slmdesk-trainer/``, built by ``./dev package --trainer``), or, in a source install, this
Python with the ``slmdesk[train]`` packages.

The packaged app ships without torch; its LoRA jobs run in the add-on's own executable,
which reports what it is in ``trainer.json`` (written by the build from ``--info``). The
app looks for the add-on's folder, in this order:

1. ``$SLMDESK_TRAINER`` (a folder holding the add-on; for unusual layouts and tests);
2. inside the app's folder: ``<app>/slmdesk-trainer/``;
3. beside it: ``<app>/../slmdesk-trainer/`` (both archives unpacked in the same place);
4. on macOS, beside ``slmdesk.app``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk import __version__
from slmdesk.errors import TrainerMissingError

ADDON_NAME = "slmdesk-trainer"
ADDON_ENV = "SLMDESK_TRAINER"
MANIFEST = "trainer.json"
WORKER_MODULE = "slmdesk.training.lora.worker"
# Import name -> the distribution to install (all in the `slmdesk[train]` extra).
TRAINER_PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "safetensors": "safetensors",
    "gguf": "gguf",
}
INSTALL_HINT = (
    "Install the trainer with the CPU build of torch (about 190 MB; PyPI's default pulls "
    "about 3 GB of CUDA libraries):\n"
    "  pip install torch --index-url https://download.pytorch.org/whl/cpu\n"
    "  pip install 'slmdesk[train]'"
)


@dataclass(frozen=True)
class Trainer:
    """How to start the trainer process for a job, and which architectures it can load."""

    command: tuple[str, ...]  # the job folder follows
    addon: Path | None = None  # the add-on's folder; None: this Python's packages
    architectures: frozenset[str] | None = None  # the add-on's (None: ask transformers here)

    def argv(self, job_folder: Path) -> list[str]:
        return [*self.command, str(job_folder)]

    def describe(self) -> str:
        """Where the trainer comes from, in words (``doctor``)."""
        if self.addon is None:
            return f"this Python's packages ({sys.executable})"
        return f"the trainer add-on in {self.addon}"


def is_frozen() -> bool:
    """True in the packaged app (PyInstaller), which has no torch of its own."""
    return bool(getattr(sys, "frozen", False))


def executable_name() -> str:
    return ADDON_NAME + (".exe" if sys.platform == "win32" else "")


def archive_name(version: str = __version__) -> str:
    """The add-on's archive for this machine, as ``packaging/build.sh --trainer`` names it."""
    system = {"Darwin": "macos"}.get(platform.system(), platform.system().lower())
    suffix = "zip" if system == "windows" else "tar.xz"
    return f"{ADDON_NAME}-{version}-{system}-{platform.machine()}.{suffix}"


def addon_folders(app_dir: Path) -> list[Path]:
    """Where a packaged app at ``app_dir`` (its executable's folder) looks for the add-on."""
    folders = [app_dir / ADDON_NAME, app_dir.parent / ADDON_NAME]
    for parent in app_dir.parents:  # macOS: slmdesk.app/Contents/MacOS
        if parent.suffix == ".app":
            folders.append(parent.parent / ADDON_NAME)
            break
    return folders


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The add-on's ``trainer.json``; None when the folder holds no complete add-on."""
    if not (folder / executable_name()).is_file():
        return None
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_addon(app_dir: Path, env: Mapping[str, str]) -> Path | None:
    """The add-on's folder (``$SLMDESK_TRAINER`` first, then next to the app), or None.

    A ``$SLMDESK_TRAINER`` that holds no add-on is an error, not a reason to look further."""
    given = env.get(ADDON_ENV)
    if given:
        folder = Path(given)
        if read_manifest(folder) is None:
            raise TrainerMissingError(
                f"{ADDON_ENV} names {folder}, which holds no trainer add-on (it needs "
                f"{executable_name()} and {MANIFEST}, as unpacked from {archive_name()})."
            )
        return folder
    return next((f for f in addon_folders(app_dir) if read_manifest(f) is not None), None)


def addon_missing_message(app_dir: Path) -> str:
    """What to do when a packaged app has no trainer add-on."""
    inside, beside = addon_folders(app_dir)[:2]
    return (
        "LoRA fine-tuning needs the trainer add-on (torch and its libraries, not part of the "
        f"app), which is not installed. Download {archive_name()} from where you got slmdesk "
        f"and unpack it next to the app, so that {beside} (or {inside}) holds "
        f"{executable_name()}; then start training again. The prompt and head methods work "
        "without it. (From a source install: pip install 'slmdesk[train]'.)"
    )


def missing_trainer_packages() -> list[str]:
    """The trainer's packages that cannot be imported here (without importing them)."""
    return [
        dist for name, dist in TRAINER_PACKAGES.items() if importlib.util.find_spec(name) is None
    ]


def packages_missing_message(missing: list[str]) -> str:
    return f"LoRA fine-tuning needs {', '.join(missing)}, which is not installed.\n{INSTALL_HINT}"


def locate_trainer(app_dir: Path | None = None, env: Mapping[str, str] | None = None,
                   frozen: bool | None = None) -> Trainer:
    """The trainer LoRA jobs run in; ``TrainerMissingError`` saying how to get it if none."""
    env = os.environ if env is None else env
    frozen = is_frozen() if frozen is None else frozen
    app_dir = app_dir or Path(sys.executable).resolve().parent
    if frozen or env.get(ADDON_ENV):
        folder = find_addon(app_dir, env)
        if folder is None:
            raise TrainerMissingError(addon_missing_message(app_dir))
        return addon_trainer(folder)
    missing = missing_trainer_packages()
    if missing:
        raise TrainerMissingError(packages_missing_message(missing))
    return Trainer(command=(sys.executable, "-m", WORKER_MODULE))


def addon_trainer(folder: Path) -> Trainer:
    """The add-on in ``folder`` as a ``Trainer``; refused when it was built for another
    slmdesk (the job folder and its events are a contract between the two)."""
    manifest = read_manifest(folder) or {}
    built_for = manifest.get("slmdesk")
    if built_for != __version__:
        raise TrainerMissingError(
            f"The trainer add-on in {folder} is for slmdesk {built_for}; this is slmdesk "
            f"{__version__}. Replace it with {archive_name()} (unpack it in its place)."
        )
    names = manifest.get("architectures")
    architectures = frozenset(str(n) for n in names) if isinstance(names, list) else None
    return Trainer(command=(str(folder / executable_name()),), addon=folder,
                   architectures=architectures)


def trainer_unavailable_reason() -> str | None:
    """Why LoRA cannot run here (the message of ``locate_trainer``), or None when it can."""
    try:
        locate_trainer()
    except TrainerMissingError as exc:
        return exc.message
    return None


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a program started from the packaged app: PyInstaller points the app's
    LD_LIBRARY_PATH at its own libraries (keeping the user's as LD_LIBRARY_PATH_ORIG), which
    another frozen program must not load in place of its own."""
    out = dict(env)
    if is_frozen() and "LD_LIBRARY_PATH" in out:
        original = out.pop("LD_LIBRARY_PATH_ORIG", None)
        if original:
            out["LD_LIBRARY_PATH"] = original
        else:
            del out["LD_LIBRARY_PATH"]
    return out
