"""Evaluation runs kept in the database: ``EvalRunRecord`` and its repository."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from slmdesk.ids import new_id, utc_now
from slmdesk.json_data import JsonFields
from slmdesk.store.models import ModelRepository
from slmdesk.store.rows import from_row, one_row


@dataclass(frozen=True)
class EvalRunRecord(JsonFields):
    """One stored evaluation run of a model + classifier on a data set's split."""

    id: str
    dataset_id: str
    model_name: str
    spec: dict[str, Any]  # ClassifierSpec.to_json()
    split: str
    accuracy: float
    macro_f1: float
    report: dict[str, Any]  # EvalReport.to_json(), plus any extra details recorded
    created_at: str
    classifier_name: str | None = None
    model_id: str | None = None
    n: int = 0


class EvalRunRepository:
    """The ``eval_runs`` table; each run is written once and may be deleted."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def add(
        self, *, dataset_id: str, model_name: str, model_id: str | None,
        classifier_name: str | None, spec: dict[str, Any], split: str, n: int,
        accuracy: float, macro_f1: float, report: dict[str, Any],
    ) -> EvalRunRecord:
        """Keep a run; a ``model_id`` that is not registered is stored as empty."""
        if model_id is not None and not ModelRepository(self.db).exists(model_id):
            model_id = None
        run_id = new_id()
        with self.db.atomic():
            self.db.table("eval_runs").insert({
                "id": run_id, "dataset_id": dataset_id, "model_name": model_name,
                "model_id": model_id, "classifier_name": classifier_name,
                "spec_json": json.dumps(spec, sort_keys=True, ensure_ascii=False),
                "split": split, "n": n, "accuracy": accuracy, "macro_f1": macro_f1,
                "report_json": json.dumps(report, sort_keys=True, ensure_ascii=False),
                "created_at": utc_now(),
            })
        return self.get(run_id)

    def get(self, run_id: str) -> EvalRunRecord:
        return from_row(EvalRunRecord, one_row(
            self.db, "eval_runs", "id = ?", [run_id], f"No evaluation run with id {run_id}."
        ))

    def for_dataset(self, dataset_id: str) -> list[EvalRunRecord]:
        """The data set's runs, newest first."""
        return [from_row(EvalRunRecord, r) for r in self.db.query(
            "SELECT * FROM eval_runs WHERE dataset_id = ? ORDER BY id DESC", [dataset_id])]

    def delete(self, run_id: str) -> None:
        self.get(run_id)
        with self.db.atomic():
            self.db.execute("DELETE FROM eval_runs WHERE id = ?", [run_id])
