"""The CSV or JSONL text of exported classification results."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from slmdesk.ui.classify.table_models import ResultRow


def export_records(rows: Sequence[ResultRow], labels: Sequence[str]) -> list[dict[str, Any]]:
    """One flat record per row: text, label, confidence, then one probability per label."""
    records = []
    for row in rows:
        pred = row.prediction
        record: dict[str, Any] = {
            "text": row.text,
            "label": pred.label,
            "confidence": None if row.confidence is None else round(row.confidence, 6),
        }
        probs = pred.probs or {}
        for lab in labels:
            record[f"p_{lab}"] = round(float(probs.get(lab, 0.0)), 6)
        if len(row.labels) > 1 or (pred.labels and tuple(pred.labels) != (pred.label,)):
            record["labels"] = list(row.labels)
        if row.gold is not None:
            record["expected"] = row.gold
        if row.reviewed is not None:
            record["reviewed_label"] = row.reviewed
        if pred.error:
            record["error"] = str(pred.error)
        records.append(record)
    return records


def export_text(rows: Sequence[ResultRow], labels: Sequence[str], fmt: str) -> str:
    """The rows as CSV (with a header) or JSONL (one object a line)."""
    records = export_records(rows, labels)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    columns = ["text", "label", "confidence", *[f"p_{lab}" for lab in labels]]
    for extra in ("labels", "expected", "reviewed_label", "error"):
        if any(extra in r for r in records):
            columns.append(extra)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("|".join(v) if isinstance(v, list) else ("" if v is None else v))
                         for k, v in r.items()})
    return out.getvalue()
