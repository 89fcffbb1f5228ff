"""`slmdesk data`: labelled and chat data sets (list, create, import, preview, export, stats,
split, show, card, evals, rename, delete); `data evaluate` is in `data_evaluate`."""

# The store and the data-set modules are imported inside the handlers: building the parser
# imports every command module, and only the command that runs should pay for sqlite-utils.

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from slmdesk.cli import data_evaluate
from slmdesk.cli.common import add_command, add_group, open_item, open_repository, split_labels
from slmdesk.cli.output import print_json, print_listing, print_result, write_output
from slmdesk.datasets import EXPORT_FORMATS
from slmdesk.errors import InvalidInputError

if TYPE_CHECKING:
    from slmdesk.startup import Core
    from slmdesk.store.datasets import Dataset, DatasetRepository, Example

SPLITS = ["train", "validation", "test", "all"]


def add_parsers(sub: Any) -> None:
    dsub = add_group(sub, "data",
                     "labelled and chat data sets: import, export, splits, stats, evaluation")
    add_command(dsub, "list", _list, "list data sets", json_output=True)
    dc = add_command(dsub, "create", _create, "create an empty data set", "NAME", json_output=True)
    dc.add_argument("--kind", choices=["labels", "chat"], required=True)
    dc.add_argument("--labels", help="comma-separated label set (labelled texts)")
    dc.add_argument("--description", metavar="TEXT")
    dc.add_argument("--licence", metavar="TEXT", help="licence note for the data card")
    di = dsub.add_parser(
        "import", help="add a CSV/TSV/JSONL/text or chat (messages, ShareGPT, Alpaca) file",
        description="Add every example of FILE to the data set NAME (created if missing), "
        "all in one transaction: a bad row stops the import with its line number and "
        "nothing changes.",
    )
    di.add_argument("name", metavar="NAME")
    di.add_argument("file", metavar="FILE")
    di.add_argument("--text-column", metavar="C", help="column with the text")
    di.add_argument("--label-column", metavar="L", help="column with the label")
    di.add_argument("--kind", choices=["labels", "chat"],
                    help="kind of a new data set (default: chat for chat files)")
    di.add_argument("--new-labels", action="store_true",
                    help="accept labels the data set does not have yet")
    di.add_argument("--json", action="store_true")
    di.set_defaults(func=_import)
    dp = add_command(dsub, "preview", _preview, "the format, columns and first rows of a file",
        "FILE", json_output=True)
    dp.add_argument("--limit", type=int, default=5)
    _add_example_parsers(dsub)
    data_evaluate.add_parsers(dsub, splits=SPLITS)
    add_command(dsub, "evals", _evals, "evaluation runs of a data set, side by side", "NAME",
        json_output=True)
    add_command(dsub, "rename", _rename, "rename a data set", "NAME", "NEW_NAME")
    add_command(dsub, "delete", _delete, "delete a data set with its examples, for good", "NAME")


def _add_example_parsers(dsub: Any) -> None:
    """export, stats, split, show and card: what is in a data set."""
    de = dsub.add_parser("export", help="write a data set (or a split) for fine-tuning")
    de.add_argument("name", metavar="NAME")
    de.add_argument("--format", choices=list(EXPORT_FORMATS), required=True,
                    help="openai: {\"messages\": [...]}; sharegpt; alpaca; "
                    "jsonl/csv: text,label rows")
    de.add_argument("--split", choices=SPLITS, default="all")
    de.add_argument("--include-unlabelled", action="store_true",
                    help="jsonl/csv: also texts without a label (empty label)")
    de.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    de.set_defaults(func=_export)
    add_command(dsub, "stats", _stats, "counts per label, split and source; quality checks", "NAME",
        json_output=True)
    dsp = dsub.add_parser("split", help="assign train/validation/test (stratified, seeded)")
    dsp.add_argument("name", metavar="NAME")
    dsp.add_argument("--seed", type=int, default=0)
    dsp.add_argument("--fractions", default="0.8,0.1,0.1", metavar="TRAIN,VAL,TEST")
    dsp.add_argument("--overwrite", action="store_true",
                     help="reassign every example (default: keep existing splits)")
    dsp.add_argument("--json", action="store_true")
    dsp.set_defaults(func=_split)
    dsh = dsub.add_parser("show", help="list examples, with filters and full-text search")
    dsh.add_argument("name", metavar="NAME")
    dsh.add_argument("--label")
    dsh.add_argument("--unlabelled", action="store_true")
    dsh.add_argument("--split", choices=["train", "validation", "test", "unassigned"])
    dsh.add_argument("--source", choices=["typed", "imported", "conversation",
                                          "classification"])
    dsh.add_argument("--disagreement", action="store_true",
                     help="the label and the model's suggestion differ")
    dsh.add_argument("--search", metavar="WORDS")
    dsh.add_argument("--limit", type=int, default=50)
    dsh.add_argument("--json", action="store_true")
    dsh.set_defaults(func=_show)
    dcard = add_command(dsub, "card", _card, "a Markdown data card", "NAME")
    dcard.add_argument("-o", "--output", metavar="FILE")


def _open_datasets() -> tuple[Core, DatasetRepository]:
    """The core without registering the starter model (data commands need no model)."""
    from slmdesk.store.datasets import DatasetRepository

    return open_repository(DatasetRepository)


def _dataset(name: str) -> tuple[Core, DatasetRepository, Dataset]:
    from slmdesk.store.datasets import DatasetRepository

    return open_item(DatasetRepository, DatasetRepository.get, name)


def _preview(args: argparse.Namespace) -> int:
    from slmdesk.datasets import formats

    prev = formats.preview(args.file, limit=max(args.limit, 0))
    if args.json:
        print_json(dataclasses.asdict(prev))
        return 0
    print(f"format: {prev.format} ({prev.kind}), {prev.total} rows")
    print(f"columns: {', '.join(prev.columns)}")
    if prev.kind == "labels":
        print(f"text column: {prev.suggested_text_column or '(choose with --text-column)'}"
              f"; label column: {prev.suggested_label_column or '(none)'}")
    for row in prev.rows:
        print("  " + json.dumps(row, ensure_ascii=False))
    return 0


def _list(args: argparse.Namespace) -> int:
    _core, repo = _open_datasets()
    rows = [{**ds.to_json(), "examples": repo.count(ds)} for ds in repo.all()]

    def line(r: dict[str, Any]) -> str:
        labels = f"  [{', '.join(r['labels'])}]" if r["labels"] else ""
        return f"{r['name']}  {r['kind']}  {r['examples']} examples{labels}"

    print_listing(rows, json_mode=args.json, to_json=lambda r: r, line=line,
                  empty="No data sets. Create one with `slmdesk data create NAME --kind labels` "
                  "or `slmdesk data import NAME FILE`.")
    return 0


def _create(args: argparse.Namespace) -> int:
    _core, repo = _open_datasets()
    label_set = split_labels(args.labels) if args.labels else None
    ds = repo.create(args.name, kind=args.kind, labels=label_set,
                     description=args.description, licence=args.licence)
    print_result(args.json, ds.to_json(), f"Created {ds.kind} data set {ds.name}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from slmdesk.datasets import formats

    core, repo = _open_datasets()
    result = formats.import_file(
        core.db, args.name, args.file, text_column=args.text_column,
        label_column=args.label_column, kind=args.kind, allow_new_labels=args.new_labels)
    if args.json:
        print_json({
            "dataset": result.dataset.to_json(), "added": result.added,
            "skipped_blank": result.skipped_blank, "format": result.format,
            "text_column": result.text_column, "label_column": result.label_column,
            "total": repo.count(result.dataset),
        })
        return 0
    columns = ""
    if result.text_column:
        columns = f"; text from '{result.text_column}'" + (
            f", label from '{result.label_column}'" if result.label_column else
            ", no labels")
    skipped = (f", skipped {result.skipped_blank} blank"
               if result.skipped_blank else "")
    print(f"Imported {result.added} examples into {result.dataset.name} "
          f"({result.format}{columns}{skipped}); it has {repo.count(result.dataset)}.")
    return 0


def _export(args: argparse.Namespace) -> int:
    from slmdesk.datasets import formats

    core, _repo, ds = _dataset(args.name)
    text = formats.export(core.db, ds.name, args.format, split=args.split,
                          include_unlabelled=args.include_unlabelled)
    if args.output:
        write_output(args.output, text)
        print(f"Wrote {text.count(chr(10)) - (1 if args.format == 'csv' else 0)} "
              f"examples to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from slmdesk.datasets.quality import check_quality

    _core, repo, ds = _dataset(args.name)
    stats = repo.stats(ds)
    quality = check_quality(repo.examples(ds))
    if args.json:
        print_json({"name": ds.name, "kind": ds.kind, **stats.to_json(),
                    "quality": quality.to_json()})
        return 0
    print(f"{ds.name}: {stats.total} examples"
          + (f" ({stats.labelled} labelled, {stats.unlabelled} unlabelled)"
             if ds.kind == "labels" else ""))
    if ds.kind == "labels":
        print("labels: " + (", ".join(f"{k} {v}" for k, v in stats.per_label.items())
                            or "(none)"))
    print("splits: " + ", ".join(f"{k} {v}" for k, v in stats.per_split.items()))
    print("sources: " + (", ".join(f"{k} {v}" for k, v in stats.per_source.items())
                         or "(none)"))
    print(f"duplicates: {len(quality.duplicates)} groups ({quality.redundant} redundant); "
          f"near-empty: {len(quality.near_empty)}")
    return 0


def _split(args: argparse.Namespace) -> int:
    _core, repo, ds = _dataset(args.name)
    try:
        fractions = [float(x) for x in args.fractions.split(",")]
    except ValueError:
        raise InvalidInputError(
            "--fractions needs three numbers, e.g. 0.8,0.1,0.1.") from None
    from slmdesk.datasets.splits import assign_splits

    stats = assign_splits(repo, ds, seed=args.seed, fractions=fractions,
                          overwrite=args.overwrite)
    print_result(args.json, stats.to_json(),
                 ", ".join(f"{k} {v}" for k, v in stats.per_split.items()))
    return 0


def _show(args: argparse.Namespace) -> int:
    _core, repo, ds = _dataset(args.name)
    if args.limit < 0:
        raise InvalidInputError("--limit must be 0 or more.")
    found = repo.query(ds, label=args.label, unlabelled=args.unlabelled, split=args.split,
                       source=args.source, disagreement=args.disagreement,
                       search=args.search, limit=args.limit)

    def line(e: Example) -> str:
        text = " ".join((e.text or "").split())
        text = text[:80] + ("…" if len(text) > 80 else "")
        tags = [e.label or "(unlabelled)" if ds.kind == "labels" else "",
                e.split or "", f"model: {e.model_label}" if e.model_label else ""]
        return f"{e.id}  {'  '.join(t for t in tags if t)}  {text}"

    print_listing(found, json_mode=args.json, to_json=lambda e: e.to_json(), line=line,
                  empty="No examples.")
    return 0


def _card(args: argparse.Namespace) -> int:
    from slmdesk.datasets.card import data_card

    core, _repo, ds = _dataset(args.name)
    card = data_card(core.db, ds.name)
    if args.output:
        write_output(args.output, card)
    else:
        sys.stdout.write(card)
    return 0


def _evals(args: argparse.Namespace) -> int:
    from slmdesk.datasets.evaluation import format_evals, list_evals

    core, _repo, ds = _dataset(args.name)
    runs = list_evals(core.db, ds)
    print_result(args.json, [r.to_json() for r in runs], format_evals(runs))
    return 0


def _rename(args: argparse.Namespace) -> int:
    _core, repo, ds = _dataset(args.name)
    renamed = repo.rename_dataset(ds, args.new_name)
    print(f"Renamed {ds.name} to {renamed.name}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    _core, repo, ds = _dataset(args.name)
    n = repo.count(ds)
    repo.delete_dataset(ds)
    print(f"Deleted data set {ds.name} ({n} examples)")
    return 0
