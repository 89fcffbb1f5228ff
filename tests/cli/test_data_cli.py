"""`slmdesk data` end to end, in real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import THREADS, Cli, assert_one_line_error

# The fixtures of test_cli.py, used here by name.
from tests.cli.test_cli import bare_cli as bare_cli
from tests.cli.test_cli import cli as cli
from tests.cli.test_cli import decoy as decoy

SENTIMENT = [
    ("I absolutely love this wonderful movie, the best film I have ever seen!", "positive"),
    ("This is a terrible, awful movie. I hated every minute of it.", "negative"),
    ("What a fantastic, delightful experience.", "positive"),
    ("The food was cold and the staff were rude.", "negative"),
    ("Great quality and fast delivery, I am very pleased.", "positive"),
    ("Poor quality and slow delivery, I am very disappointed.", "negative"),
    ("A beautiful, moving and joyful film.", "positive"),
    ("An ugly, painful and depressing film.", "negative"),
]


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["text,label"] + [f'"{t}",{lab}' for t, lab in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def test_import_export_stats_and_search(bare_cli: Cli) -> None:
    cli = bare_cli
    assert "No data sets" in cli.run("data", "list").stdout
    source = _csv(cli.cwd / "reviews.csv", SENTIMENT)
    out = cli.run("data", "import", "Reviews", str(source)).stdout
    assert out.startswith("Imported 8 examples into Reviews (csv; text from 'text', "
                          "label from 'label')")
    listed = cli.json("data", "list", "--json")
    assert [(d["name"], d["kind"], d["examples"], d["labels"]) for d in listed] == [
        ("Reviews", "labels", 8, ["positive", "negative"])]
    stats = cli.json("data", "stats", "Reviews", "--json")
    assert (stats["total"], stats["per_label"]) == (8, {"positive": 4, "negative": 4})
    assert stats["per_split"]["unassigned"] == 8 and stats["quality"]["duplicates"] == []
    split = cli.json("data", "split", "Reviews", "--seed", "3", "--json")
    assert split["per_split"] == {"train": 6, "validation": 0, "test": 2, "unassigned": 0}
    assert split["per_split_label"]["test"] == {"positive": 1, "negative": 1}

    exported = cli.run("data", "export", "Reviews", "--format", "openai").stdout
    records = _jsonl(exported)
    assert len(records) == 8
    assert [m["role"] for m in records[0]["messages"]] == ["system", "user", "assistant"]
    target = cli.cwd / "test.csv"
    cli.run("data", "export", "Reviews", "--format", "csv", "--split", "test",
            "-o", str(target))
    assert target.read_text(encoding="utf-8").count("\n") == 3  # header + 2 rows
    # The export imports back as the same examples.
    cli.run("data", "import", "Copy", str(cli.cwd / "test.csv"))
    copy = cli.json("data", "show", "Copy", "--json")
    test = cli.json("data", "show", "Reviews", "--split", "test", "--json")
    assert [(e["text"], e["label"]) for e in copy] == [(e["text"], e["label"]) for e in test]

    hits = cli.json("data", "show", "Reviews", "--search", "deliv", "--json")
    assert [h["label"] for h in hits] == ["positive", "negative"]
    assert cli.json("data", "show", "Reviews", "--search", '"NEAR(', "--json") == []
    assert len(cli.json("data", "show", "Reviews", "--label", "negative", "--json")) == 4
    text = cli.run("data", "stats", "Reviews").stdout
    assert "labels: positive 4, negative 4" in text and "splits: train 6" in text
    card = cli.run("data", "card", "Reviews").stdout
    assert card.startswith("# Reviews\n") and "| positive | 4 | 50.0 % |" in card
    assert cli.run("data", "evals", "Reviews").stdout == "No evaluation runs.\n"
    assert cli.json("data", "evals", "Reviews", "--json") == []


def test_a_bad_row_aborts_the_import_and_changes_nothing(bare_cli: Cli) -> None:
    cli = bare_cli
    good = _csv(cli.cwd / "good.csv", SENTIMENT[:2])
    cli.run("data", "import", "Reviews", str(good))
    bad = cli.cwd / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "positive"}\n\n{"text": "oops", "label"\n',
                   encoding="utf-8")
    for name in ("Reviews", "Other"):
        proc = cli.run("data", "import", name, str(bad), check=False)
        assert_one_line_error(proc, "bad.jsonl line 3: not valid JSON")
        assert proc.returncode == 2
    assert [(d["name"], d["examples"]) for d in cli.json("data", "list", "--json")] == [
        ("Reviews", 2)]
    wrong = _csv(cli.cwd / "wrong.csv", [("fine", "positive"), ("meh", "mixed")])
    proc = cli.run("data", "import", "Reviews", str(wrong), check=False)
    assert_one_line_error(proc, "wrong.csv line 3: the label 'mixed' is not one of")
    out = cli.json("data", "import", "Reviews", str(wrong), "--new-labels", "--json")
    assert (out["added"], out["total"], out["dataset"]["labels"]) == (
        2, 4, ["positive", "negative", "mixed"])


def test_chat_files_are_detected_by_content(bare_cli: Cli) -> None:
    cli = bare_cli
    sharegpt = cli.cwd / "chats.data"  # no telling extension: the content decides
    sharegpt.write_text(json.dumps({"conversations": [
        {"from": "system", "value": "Be kind."}, {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello!"}]}) + "\n", encoding="utf-8")
    preview = cli.json("data", "preview", str(sharegpt), "--json")
    assert (preview["format"], preview["kind"], preview["total"]) == ("sharegpt", "chat", 1)
    out = cli.run("data", "import", "Chats", str(sharegpt)).stdout
    assert "Imported 1 examples into Chats (sharegpt)" in out
    openai = _jsonl(cli.run("data", "export", "Chats", "--format", "openai").stdout)
    assert openai == [{"messages": [{"role": "system", "content": "Be kind."},
                                    {"role": "user", "content": "Hi"},
                                    {"role": "assistant", "content": "Hello!"}]}]
    alpaca = _jsonl(cli.run("data", "export", "Chats", "--format", "alpaca").stdout)
    assert alpaca == [{"instruction": "Hi", "input": "", "output": "Hello!",
                       "system": "Be kind."}]
    proc = cli.run("data", "export", "Chats", "--format", "csv", check=False)
    assert_one_line_error(proc, "CSV is for labelled texts")
    cli.run("data", "create", "Empty", "--kind", "labels", "--labels", "a,b")
    cli.run("data", "rename", "Empty", "Blank")
    assert "Deleted data set Blank (0 examples)" in cli.run("data", "delete", "Blank").stdout
    assert_one_line_error(cli.run("data", "stats", "Blank", check=False),
                          "No data set named 'Blank'")


def test_splits_are_reproducible_from_the_command_line(bare_cli: Cli) -> None:
    cli = bare_cli
    rows = [(f"text number {i}", "a" if i % 3 else "b") for i in range(40)]
    source = _csv(cli.cwd / "many.csv", rows)
    for name in ("One", "Two"):
        cli.run("data", "import", name, str(source))
        cli.run("data", "split", name, "--seed", "11", "--fractions", "0.5,0.25,0.25")

    def splits(name: str) -> dict[str, str]:
        shown = cli.json("data", "show", name, "--limit", "100", "--json")
        return {e["text"]: e["split"] for e in shown}

    assert splits("One") == splits("Two")
    stats = cli.json("data", "split", "Two", "--seed", "12", "--overwrite",
                     "--fractions", "0.5,0.25,0.25", "--json")
    # a: 26 -> 13, 6.5, 6.5; b: 14 -> 7, 3.5, 3.5 (ties of the remainder go to test)
    assert stats["per_split"] == {"train": 20, "validation": 9, "test": 11,
                                  "unassigned": 0}
    assert splits("Two") != splits("One")
    proc = cli.run("data", "split", "One", "--fractions", "0.9,0.9", check=False)
    assert_one_line_error(proc, "fractions")


def test_evaluate_on_the_test_split_keeps_a_run(cli: Cli, model_path: Path) -> None:
    source = _csv(cli.cwd / "sentiment.csv", SENTIMENT)
    cli.run("data", "import", "Sentiment", str(source))
    proc = cli.run("data", "evaluate", "Sentiment", *THREADS, check=False)
    assert_one_line_error(proc, "no labelled examples in the test split",
                          "Assign splits first")
    cli.run("data", "split", "Sentiment", "--seed", "1", "--fractions", "0.5,0,0.5")
    run = cli.json("data", "evaluate", "Sentiment", *THREADS, "--json")
    assert run["n"] == 4 and run["split"] == "test"
    assert run["report"]["labels"] == ["positive", "negative"]
    assert sum(map(sum, run["report"]["confusion"])) == 4
    assert 0.0 <= run["accuracy"] <= 1.0 and run["report"]["calibration"] in (
        "contextual", "batch", "none")
    assert run["model_name"] and run["spec"]["labels"][0]["name"] == "positive"
    text = cli.run("data", "evaluate", "Sentiment", *THREADS, "--split", "all").stdout
    assert text.startswith("accuracy ") and "confusion (rows: gold" in text
    runs = cli.json("data", "evals", "Sentiment", "--json")
    assert [r["split"] for r in runs] == ["all", "test"]
    assert runs[1]["id"] == run["id"]
    table = cli.run("data", "evals", "Sentiment").stdout
    assert run["id"] in table and "F1 per label" in table


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("data", "export", "Nope", "--format", "csv"), "No data set named 'Nope'"),
        (("data", "import", "X", "missing.csv"), "Cannot read"),
        (("data", "create", "X", "--kind", "chat", "--labels", "a"), "has no labels"),
        (("data", "show", "Nope"), "No data set named"),
        (("data", "evaluate", "Nope"), "No data set named"),
    ],
)
def test_data_errors_are_one_line(bare_cli: Cli, args: tuple[str, ...], needle: str) -> None:
    assert_one_line_error(bare_cli.run(*args, check=False), needle)
