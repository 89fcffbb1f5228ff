"""`slmdesk classifiers`: list and delete the classifiers saved with `classify --save-as`."""

# The store is imported inside the handlers: building the parser imports every command
# module, and only the command that runs should pay for sqlite-utils.

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from slmdesk.cli.common import add_command, add_group, open_repository
from slmdesk.cli.output import print_json
from slmdesk.errors import NotFoundError

if TYPE_CHECKING:
    from slmdesk.store.classifiers import SavedClassifier
    from slmdesk.store.models import ModelRepository


def add_parsers(sub: Any) -> None:
    csub = add_group(sub, "classifiers", "list and delete saved classifiers")
    add_command(csub, "list", _list, "list saved classifiers", json_output=True)
    add_command(csub, "delete", _delete, "delete a saved classifier", "name")


def _delete(args: argparse.Namespace) -> int:
    from slmdesk.store.classifiers import ClassifierRepository

    _core, repo = open_repository(ClassifierRepository)
    repo.delete(args.name)
    print(f"Deleted classifier {args.name}")
    return 0


def _row(saved: SavedClassifier, models: ModelRepository) -> dict[str, Any]:
    """What `classifiers list --json` says of one saved classifier."""
    model_name = None
    if saved.model_id:
        try:
            model_name = models.get(saved.model_id).name
        except NotFoundError:
            model_name = None
    labels = [
        lab if isinstance(lab, str) else lab.get("name", "")
        for lab in saved.spec.get("labels", [])
    ]
    return {
        "name": saved.name, "id": saved.id, "model_id": saved.model_id,
        "model": model_name, "labels": labels,
        "calibration": saved.spec.get("calibration", "auto"),
        "multi_label": bool(saved.spec.get("multi_label", False)),
        "examples": len(saved.spec.get("examples", [])),
        "created_at": saved.created_at, "updated_at": saved.updated_at,
        "spec": saved.spec,
    }


def _list(args: argparse.Namespace) -> int:
    from slmdesk.store.classifiers import ClassifierRepository
    from slmdesk.store.models import ModelRepository

    core, repo = open_repository(ClassifierRepository)
    models = ModelRepository(core.db)
    rows = [_row(saved, models) for saved in repo.list()]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No saved classifiers. Save one with `slmdesk classify ... --save-as NAME`.")
    for r in rows:
        kind = "multi-label, " if r["multi_label"] else ""
        print(f"{r['name']}  [{', '.join(r['labels'])}]  {kind}{r['examples']} examples, "
              f"calibration {r['calibration']}, model {r['model'] or '(default)'}")
    return 0
