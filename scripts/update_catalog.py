"""Fill in or refresh the commit, sha256 and exact size of every file in resources/catalog.json.

Usage (needs network access to the Hugging Face Hub; HF_TOKEN is used when set)::

    python scripts/update_catalog.py             # pin unpinned files, check pinned ones
    python scripts/update_catalog.py --refresh   # re-pin every file at its repo's main
    python scripts/update_catalog.py --only qwen2.5-0.5b-instruct --dry-run

For each file it asks the Hub for the repository at the pinned commit (or at ``main``)
with file metadata (``HfApi.model_info(files_metadata=True)``) and records the commit, the
file's LFS sha256 and its exact size. A pinned file whose hash no longer matches its
commit is reported and left alone. The result is checked with slmdesk's own catalog
loader before the file is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CATALOG = REPO_ROOT / "resources" / "catalog.json"


class HubApi(Protocol):
    def model_info(self, repo_id: str, *, revision: str | None = ...,
                   files_metadata: bool = ...) -> Any: ...


def _file_facts(info: Any, filename: str) -> tuple[int, str] | None:
    """(size, sha256) of ``filename`` in a ``ModelInfo`` with file metadata."""
    for sibling in info.siblings or []:
        if sibling.rfilename != filename:
            continue
        lfs = sibling.lfs
        if lfs is None:
            return None  # not an LFS file: no published sha256
        sha = lfs.sha256 if hasattr(lfs, "sha256") else lfs["sha256"]
        size = lfs.size if hasattr(lfs, "size") else lfs["size"]
        return int(size), str(sha)
    return None


def update_entries(data: dict[str, Any], api: HubApi, *, refresh: bool = False,
                   only: set[str] | None = None) -> list[str]:
    """Update ``data`` (the parsed catalog) in place; return one line per change or problem."""
    report: list[str] = []
    cache: dict[tuple[str, str | None], Any] = {}
    for model in data["models"]:
        if only and model["id"] not in only:
            continue
        for f in model["files"]:
            where = f"{model['id']} {f['quantization']}"
            revision = None if refresh else f.get("revision")
            key = (f["repo_id"], revision)
            if key not in cache:
                cache[key] = api.model_info(f["repo_id"], revision=revision,
                                            files_metadata=True)
            info = cache[key]
            facts = _file_facts(info, f["filename"])
            if facts is None:
                report.append(f"{where}: {f['filename']} is not an LFS file of "
                              f"{f['repo_id']} at {info.sha}; left as it is")
                continue
            size, sha256 = facts
            if f.get("revision") and not refresh and f.get("sha256") not in (None, sha256):
                report.append(f"{where}: the Hub says sha256 {sha256} at the pinned commit, "
                              f"the catalog says {f['sha256']}; left as it is")
                continue
            new = {"revision": info.sha, "sha256": sha256, "size_bytes": size,
                   "size_approximate": False}
            changed = {k: v for k, v in new.items() if f.get(k) != v}
            if changed:
                f.update(new)
                report.append(f"{where}: " + ", ".join(f"{k} -> {v}" for k, v in changed.items()))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--refresh", action="store_true",
                        help="re-pin every file at the current commit of its repository")
    parser.add_argument("--only", action="append", metavar="MODEL_ID",
                        help="update only this model (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="report, do not write")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    from huggingface_hub import HfApi

    from slmdesk.catalog.curated import CatalogError, _parse

    data = json.loads(args.catalog.read_text(encoding="utf-8"))
    report = update_entries(data, HfApi(), refresh=args.refresh,
                            only=set(args.only) if args.only else None)
    for line in report:
        print(line)
    try:
        _parse(data, args.catalog.name)
    except CatalogError as exc:
        print(f"update_catalog: the result would not load: {exc.message}", file=sys.stderr)
        return 1
    if not args.dry_run:
        args.catalog.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    print(f"{len(report)} change(s){' (dry run)' if args.dry_run else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
