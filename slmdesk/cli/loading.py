"""What the commands that load a model share: --threads and --force, the model named (or
remembered) with its file checked, and loading it under the load guard."""

# The catalog and the engine are imported inside the functions: building the parser imports
# this module, and only a command that loads a model should pay for llama.cpp.

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from slmdesk.cli.common import THREADS_HELP, check_at_least_one

if TYPE_CHECKING:
    import sqlite_utils

    from slmdesk.engine.llama_engine import LlamaEngine
    from slmdesk.store.models import ModelRecord

FORCE_HELP = "load even when the model is estimated not to fit in free memory"


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """--threads and --force, for the commands that load a model (read by ``load_engine``)."""
    parser.add_argument("--threads", type=int, help=THREADS_HELP)
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)


def check_load_options(args: argparse.Namespace) -> None:
    """Refuse a --threads below 1 before anything is opened or read."""
    check_at_least_one("threads", args.threads)


def resolve_present_model(db: sqlite_utils.Database, named: str | None, *,
                          remembered_id: str | None = None) -> ModelRecord:
    """The model named on the command line (or remembered, or the default), whose file exists."""
    from slmdesk.catalog.registry import check_model_present, resolve_model

    model = resolve_model(db, named, conversation_model_id=remembered_id)
    check_model_present(model)
    return model


def load_engine(model: ModelRecord, db: sqlite_utils.Database,
                args: argparse.Namespace) -> LlamaEngine:
    """Load ``model`` under the load guard, after the memory check, with the command's
    --threads and --force.

    A model whose last load took its process down is loaded only when the person named it
    with --model; otherwise a ``ModelLoadCrashedError`` says why not. A model estimated not
    to fit in memory is refused unless --force; what the load really took is recorded with
    the estimate.
    """
    from slmdesk.catalog.registry import load_registered
    from slmdesk.engine.llama_engine import LlamaEngine

    engine = LlamaEngine()
    load_registered(engine, model, db, explicit=args.model is not None, threads=args.threads,
                    force=args.force, retry=f"To try it again, name it: --model {model.id}")
    return engine
