"""`slmdesk doctor`: version, backend, threads, paths, models, the database's health and
where LoRA jobs would run."""

# The backend, the store and the settings are imported inside the handler: building the
# parser imports every command module, and only `doctor` should pay for llama.cpp.

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from slmdesk import __version__
from slmdesk.cli.common import add_command, open_core
from slmdesk.cli.output import print_json

if TYPE_CHECKING:
    from slmdesk.engine.backend import BackendInfo
    from slmdesk.startup import Core


def add_parsers(sub: Any) -> None:
    add_command(sub, "doctor", _doctor, "version, backend, threads, paths, models, database",
        json_output=True)


def _report(core: Core, backend: BackendInfo) -> dict[str, Any]:
    from slmdesk.engine.params import physical_cores
    from slmdesk.settings import load_settings
    from slmdesk.store.db import integrity_check
    from slmdesk.store.models import ModelRepository

    settings = load_settings(core.db)
    models = ModelRepository(core.db).list()
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "backend": backend.to_json(),
        "threads": settings.n_threads or physical_cores(),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "max_context": settings.max_context,
        "paths": {
            "data": str(core.paths.data_dir),
            "config": str(core.paths.config_dir),
            "cache": str(core.paths.cache_dir),
            "logs": str(core.paths.log_dir),
            "database": str(core.paths.database),
            "models": settings.models_dir or str(core.paths.default_models_dir),
        },
        "models": [
            {"id": m.id, "name": m.name, "path": m.path, "exists": os.path.isfile(m.path)}
            for m in models
        ],
        "database": {
            "integrity": integrity_check(core.db),
            "conversations": core.db["conversations"].count,
            "messages": core.db["messages"].count,
        },
        "interrupted_replies_recovered": core.interrupted_replies,
        "trainer": _trainer_report(),
    }


def _trainer_report() -> dict[str, Any]:
    """Where LoRA jobs would run (the add-on next to a packaged app, or this Python's
    ``slmdesk[train]``), or why they cannot; not part of ``ok``: the rest works without."""
    from slmdesk.errors import TrainerMissingError
    from slmdesk.training.lora.addon import locate_trainer

    try:
        trainer = locate_trainer()
    except TrainerMissingError as exc:
        return {"available": False, "where": None, "addon": None, "problem": exc.message}
    return {"available": True, "where": trainer.describe(),
            "addon": str(trainer.addon) if trainer.addon else None, "problem": None}


def _print_report(report: dict[str, Any], backend: BackendInfo) -> None:
    print(f"slmdesk {__version__} (Python {report['python']})")
    print(f"backend: {backend.label}, llama-cpp-python {backend.llama_cpp_python_version}")
    if backend.cpu_variants:
        print(f"  CPU builds this processor can run: {', '.join(backend.cpu_variants)}")
    if backend.error:
        print(f"  problem: {backend.error}")
    if backend.fallback_reason:
        print(f"  note: {backend.fallback_reason}")
    print(f"threads: {report['threads']} (physical cores {report['physical_cores']}, "
          f"logical CPUs {report['logical_cpus']})")
    for k, v in report["paths"].items():
        print(f"{k}: {v}")
    print(f"models: {len(report['models'])}")
    for m in report["models"]:
        print(f"  {m['name']}  {'ok' if m['exists'] else 'FILE MISSING'}  {m['path']}")
    print(f"database: {report['database']['integrity']}, "
          f"{report['database']['conversations']} conversations, "
          f"{report['database']['messages']} messages")
    trainer = report["trainer"]
    print(f"trainer (LoRA): {trainer['where'] or 'not installed'}")
    if trainer["problem"]:
        print(f"  to get it: {trainer['problem']}")
    print(f"system info: {backend.system_info}")


def _doctor(args: argparse.Namespace) -> int:
    from slmdesk.engine.backend import backend_info

    core = open_core()
    backend = backend_info()
    report = _report(core, backend)
    ok = backend.available and report["database"]["integrity"] == "ok"
    report["ok"] = ok
    if args.json:
        print_json(report)
    else:
        _print_report(report, backend)
    return 0 if ok else 1
