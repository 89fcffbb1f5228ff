"""A small data card in Markdown: what a data set holds, where it came from, how it is
split, how clean it is, how models scored on it, and a licence note."""

from __future__ import annotations

import sqlite_utils

from slmdesk.datasets.evaluation import list_evals
from slmdesk.datasets.quality import check_quality
from slmdesk.store.datasets import SPLITS, UNASSIGNED, DatasetRepository

SOURCE_NAMES = {
    "typed": "typed in slmdesk",
    "imported": "imported from files",
    "conversation": "taken from conversations",
    "classification": "reviewed classification results",
}

LICENCE_UNKNOWN = (
    "No licence is recorded for this data set. Texts copied from elsewhere keep their "
    "authors' rights and licences; check every source before you share this data or "
    "train a model on it."
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f} %" if total else "–"


def data_card(db: sqlite_utils.Database, dataset_name: str) -> str:
    """The data card of a data set (deterministic: the same data gives the same text)."""
    repo = DatasetRepository(db)
    ds = repo.get(dataset_name)
    stats = repo.stats(ds)
    examples = repo.examples(ds)
    quality = check_quality(examples)
    kind = "labelled texts" if ds.kind == "labels" else "chat examples"
    out = [f"# {_cell(ds.name)}", ""]
    if ds.description:
        out += [ds.description.strip(), ""]
    out += [
        f"- Kind: {kind}",
        f"- Examples: {stats.total}"
        + (f" ({stats.labelled} labelled, {stats.unlabelled} unlabelled)"
           if ds.kind == "labels" else ""),
        f"- Created: {ds.created_at[:10]}, last changed: {ds.updated_at[:10]}",
        "",
    ]
    if ds.kind == "labels":
        out += ["## Labels", "", "| label | examples | share |", "|---|---:|---:|"]
        for label, n in stats.per_label.items():
            out.append(f"| {_cell(label)} | {n} | {_pct(n, stats.labelled)} |")
        if not stats.per_label:
            out.append("| (none yet) | 0 | – |")
        out.append("")
    out += ["## Splits", ""]
    if ds.kind == "labels" and stats.per_label:
        labels = list(stats.per_label)
        out += ["| split | examples | " + " | ".join(_cell(lab) for lab in labels) + " |",
                "|---|---:|" + "---:|" * len(labels)]
        for split in (*SPLITS, UNASSIGNED):
            per = stats.per_split_label.get(split, {})
            out.append(f"| {split} | {stats.per_split[split]} | "
                       + " | ".join(str(per.get(lab, 0)) for lab in labels) + " |")
    else:
        out += ["| split | examples |", "|---|---:|"]
        out += [f"| {split} | {stats.per_split[split]} |" for split in (*SPLITS, UNASSIGNED)]
    out += ["", "Splits are stratified by label and reproducible with their seed "
            "(`slmdesk data split`).", "", "## Sources", "",
            "| source | examples |", "|---|---:|"]
    for source, n in stats.per_source.items():
        out.append(f"| {SOURCE_NAMES.get(source, source)} | {n} |")
    files = sorted({e.source_ref for e in examples
                    if e.source == "imported" and e.source_ref})
    if files:
        out += ["", "Imported files: " + ", ".join(f"`{_cell(f)}`" for f in files)]
    model_labelled = sum(1 for e in examples if e.labelled_by and e.labelled_by != "person")
    suggested = sum(1 for e in examples if e.model_label is not None)
    out += ["", "## Quality", "",
            f"- Duplicate groups (same text, ignoring case, spaces and punctuation): "
            f"{len(quality.duplicates)} ({quality.redundant} redundant examples)",
            f"- Near-empty examples: {len(quality.near_empty)}"]
    if ds.kind == "labels":
        disagree = sum(1 for e in examples if e.label is not None
                       and e.model_label is not None and e.label != e.model_label)
        out += [f"- Duplicates labelled differently: {len(quality.label_conflicts)} groups",
                f"- Labelled by a model, not a person: {model_labelled}",
                f"- Model suggestions: {suggested} ({disagree} disagree with the label)"]
    runs = list_evals(db, ds)
    if runs:
        out += ["", "## Evaluations", "",
                "| date | model | classifier | split | n | accuracy | macro-F1 |",
                "|---|---|---|---|---:|---:|---:|"]
        for r in runs:
            out.append(f"| {r.created_at[:10]} | {_cell(r.model_name)} | "
                       f"{_cell(r.classifier_name or '–')} | {r.split} | {r.n} | "
                       f"{r.accuracy:.3f} | {r.macro_f1:.3f} |")
    out += ["", "## Licence", "", ds.licence.strip() if ds.licence else LICENCE_UNKNOWN, ""]
    return "\n".join(out)
