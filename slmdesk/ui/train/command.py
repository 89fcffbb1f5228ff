"""The `slmdesk train` command line the Train view runs as its child process (the contract
in the `train` command's help), built in one place so that tests can put a fake in its stead."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from slmdesk.paths import HOME_ENV

METHODS = ("auto", "prompt", "head", "lora")
CHAT_METHODS = ("auto", "lora")  # a chat data set trains a LoRA adapter only


@dataclass(frozen=True)
class TrainOptions:
    """What the person chose in the Train view; ``None`` leaves the command's default."""

    name: str
    dataset: str
    model: str | None = None
    method: str = "auto"
    epochs: int | None = None
    max_minutes: int | None = None
    threads: int | None = None
    resume: bool = False


# options -> the argv of the child process (program first)
CommandBuilder = Callable[[TrainOptions], list[str]]


def slmdesk_program() -> list[str]:
    """How to start slmdesk itself: the interpreter with ``-m slmdesk``, or, in the frozen
    app (PyInstaller), the app's own executable, whose entry point is the same command line."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "slmdesk"]


def app_home() -> str | None:
    """The home the app runs in when one was given (``--home`` sets ``$SLMDESK_HOME``);
    None: the platform's directories, which the child finds by itself."""
    home = os.environ.get(HOME_ENV)
    return os.path.abspath(home) if home else None


def train_argv(options: TrainOptions, *, home: str | None = None,
               program: list[str] | None = None) -> list[str]:
    """``slmdesk [--home H] train NAME --data DS [-m MODEL] --method M [...] --events``."""
    argv = list(program if program is not None else slmdesk_program())
    home = home if home is not None else app_home()
    if home:
        argv += ["--home", home]
    argv += ["train", options.name, "--data", options.dataset]
    if options.model:
        argv += ["-m", options.model]
    argv += ["--method", options.method]
    for flag, value in (("--epochs", options.epochs), ("--max-minutes", options.max_minutes),
                        ("--threads", options.threads)):
        if value is not None:
            argv += [flag, str(value)]
    if options.resume:
        argv.append("--resume")
    argv.append("--events")
    return argv
