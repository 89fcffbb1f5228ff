"""`slmdesk classify` and `slmdesk classifiers` end to end, in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from slmdesk.classify.evaluate import evaluate
from tests.cli.test_cli import THREADS, TIMEOUT, Cli, assert_one_line_error

# The fixtures of test_cli.py, used here by name.
from tests.cli.test_cli import bare_cli as bare_cli
from tests.cli.test_cli import cli as cli
from tests.cli.test_cli import decoy as decoy

POSITIVE = "I absolutely love this wonderful movie, it is the best film I have ever seen!"
NEGATIVE = "This is a terrible, awful movie. I hated every minute of it."
LABELS = ("--labels", "positive,negative")
# A resumed run's scores against an uninterrupted run's: the largest difference measured was
# 0.0 in 4 runs (llama-cpp-python 0.3.36, x86-64 CPU, one thread; the first text after the
# resume starts from a cold KV cache). The margin is for builds whose cache reuse changes the
# order of the sums.
SCORE_TOLERANCE = 1e-4
ROWS = [
    (POSITIVE, "positive"),
    (NEGATIVE, "negative"),
    ("What a fantastic, delightful experience.", "positive"),
    ("The food was cold and the staff were rude.", "negative"),
    ("Great quality and fast delivery, I am very pleased.", "positive"),
    ("Poor quality and slow delivery, I am very disappointed.", "negative"),
    ("A beautiful, moving and joyful film.", "positive"),
    ("An ugly, painful and depressing film.", "negative"),
    ("Best purchase I have made all year.", "positive"),
]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_classify_a_text_prints_the_label(cli: Cli, model_path: Path) -> None:
    proc = cli.run("classify", *THREADS, *LABELS, POSITIVE)
    assert proc.stdout == "positive\n"
    out = cli.json("classify", *THREADS, *LABELS, "--json", NEGATIVE)
    assert out["label"] == "negative"
    assert set(out["scores"]) == {"positive", "negative"}
    assert sum(out["scores"].values()) == pytest.approx(1.0)
    assert out["calibration"] == "contextual"
    assert {"raw_scores", "labels", "truncated", "notes", "explanation", "error"} <= set(out)


def test_input_file_streams_one_json_line_per_text(cli: Cli, model_path: Path) -> None:
    path = cli.cwd / "texts.txt"
    path.write_text(f"{POSITIVE}\n\n{NEGATIVE}\n{ROWS[2][0]}\n", encoding="utf-8")
    proc = cli.run("classify", *THREADS, *LABELS, "--input", str(path))
    out = _lines(proc.stdout)
    assert [o["text"] for o in out] == [POSITIVE, NEGATIVE, ROWS[2][0]]
    assert [o["label"] for o in out] == ["positive", "negative", "positive"]
    assert {o["calibration"] for o in out} == {"contextual"}  # fewer than 8: streamed
    assert "classified 3/3" in proc.stderr


def test_input_and_eval_round_trip(cli: Cli, model_path: Path) -> None:
    data = _jsonl(cli.cwd / "gold.jsonl", [{"text": t, "label": g} for t, g in ROWS])
    proc = cli.run("classify", *THREADS, *LABELS, "--input", str(data))
    preds = _lines(proc.stdout)
    assert [p["text"] for p in preds] == [t for t, _ in ROWS]
    # nine texts: "auto" uses batch calibration, printed once every text is scored
    assert {p["calibration"] for p in preds} == {"batch"}
    assert "classified 9/9" in proc.stderr
    for p in preds:
        assert sum(p["scores"].values()) == pytest.approx(1.0)

    report = cli.json("classify", *THREADS, "--eval", str(data), "--json")
    assert {"accuracy", "macro_f1", "per_label", "confusion", "n", "seconds",
            "texts_per_s"} <= set(report)
    assert report["n"] == len(ROWS)
    assert report["labels"] == ["negative", "positive"]  # the set found in the file
    assert report["seconds"] > 0 and report["texts_per_s"] > 0
    # The same predictions give the same metrics when computed here.
    want = evaluate([g for _, g in ROWS], [p["label"] for p in preds], ["negative", "positive"])
    assert report["confusion"] == want.confusion
    assert report["accuracy"] == pytest.approx(want.accuracy)
    assert report["macro_f1"] == pytest.approx(want.macro_f1)
    assert report["accuracy"] >= 7 / 9
    assert sum(map(sum, report["confusion"])) == len(ROWS)

    text = cli.run("classify", *THREADS, "--eval", str(data)).stdout
    assert "accuracy" in text and "macro F1" in text and "rows: gold" in text


def test_eval_of_a_csv_with_other_columns(cli: Cli, model_path: Path) -> None:
    path = cli.cwd / "gold.csv"
    path.write_text(
        "sentence,gold\n" + "".join(f'"{t}",{g}\n' for t, g in ROWS[:4]), encoding="utf-8"
    )
    report = cli.json("classify", *THREADS, "--eval", str(path), "--text-column", "sentence",
                      "--label-column", "gold", "--calibration", "contextual", "--json")
    assert report["n"] == 4
    assert report["calibration"] == "contextual"


def test_saved_classifier_round_trip(cli: Cli, model_path: Path) -> None:
    examples = cli.cwd / "examples.csv"
    examples.write_text(
        "text,label\nI adore this phone.,positive\nTerrible service.,negative\n",
        encoding="utf-8",
    )
    descriptions = cli.cwd / "descriptions.json"
    descriptions.write_text(json.dumps({"positive": "The writer is pleased."}), "utf-8")
    proc = cli.run("classify", *LABELS, "--examples", str(examples), "--descriptions",
                   str(descriptions), "--instructions", "What is the sentiment?",
                   "--calibration", "contextual", "--save-as", "Sentiment")
    assert proc.stdout.startswith("Saved classifier Sentiment")
    listed = cli.json("classifiers", "list", "--json")
    assert [c["name"] for c in listed] == ["Sentiment"]
    saved = listed[0]
    assert saved["labels"] == ["positive", "negative"]
    assert saved["model"] and saved["examples"] == 2
    assert saved["spec"]["instructions"] == "What is the sentiment?"
    assert saved["spec"]["labels"][0]["description"] == "The writer is pleased."
    assert "Sentiment  [positive, negative]" in cli.run("classifiers", "list").stdout

    out = cli.json("classify", *THREADS, "--classifier", "sentiment", "--json", NEGATIVE)
    assert out["label"] == "negative" and out["calibration"] == "contextual"
    # explicit options override the saved ones
    out = cli.json("classify", *THREADS, "--classifier", "Sentiment", "--calibration", "none",
                   "--json", POSITIVE)
    assert out["calibration"] == "none" and out["label"] == "positive"

    assert cli.run("classifiers", "delete", "Sentiment").stdout.startswith("Deleted")
    assert cli.json("classifiers", "list", "--json") == []
    proc = cli.run("classify", "--classifier", "Sentiment", POSITIVE, check=False)
    assert_one_line_error(proc, "No saved classifier named 'Sentiment'")
    assert proc.returncode == 2


def test_explain_prints_a_justification_after_the_label(cli: Cli, model_path: Path) -> None:
    lines = cli.run("classify", *THREADS, *LABELS, "--explain", NEGATIVE).stdout.splitlines()
    assert lines[0] == "negative"
    assert len(lines) >= 2 and lines[1].strip()


def test_multi_label_json(cli: Cli, model_path: Path) -> None:
    out = cli.json("classify", *THREADS, "--labels", "sports,food", "--multi-label",
                   "--threshold", "0.2", "--json", "The players ate pizza after the match.")
    assert set(out["scores"]) == {"sports", "food"}
    assert out["labels"] == [k for k, v in sorted(out["scores"].items(), key=lambda kv: -kv[1])
                             if v >= 0.2]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("classify", "--labels", "a,b", ""), ("The text is empty.",)),
        (("classify", "hello"), ("--labels",)),
        (("classify", "--labels", "a", "hello"), ("at least two labels",)),
        (("classify", "--labels", "a,b"), ("Give a TEXT",)),
        (("classify", "--labels", "a,b", "--calibration", "none", "x", "--input", "f.txt"),
         ("only one of",)),
        (("classify", "--labels", "a,b", "--input", "missing.txt"), ("Cannot read",)),
        (("classify", "--labels", "a,b", "x", "--output", "o.jsonl"), ("work with --input",)),
        (("classify", "--labels", "a,b", "--input", "f.txt", "--resume"),
         ("--resume needs --output",)),
        (("classifiers", "delete", "nope"), ("No saved classifier named 'nope'",)),
    ],
)
def test_classify_errors_are_one_line(
    bare_cli: Cli, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    assert_one_line_error(bare_cli.run(*args, check=False), *needles)


def test_bad_eval_file_names_the_line_before_loading_a_model(bare_cli: Cli) -> None:
    path = bare_cli.cwd / "bad.csv"
    path.write_text("text,label\ngood,positive\n\"oops\",negative,extra\n", encoding="utf-8")
    proc = bare_cli.run("classify", "--eval", str(path), check=False)
    assert_one_line_error(proc, "bad.csv, line 3")
    other = bare_cli.cwd / "other.csv"
    other.write_text("text,label\ngood,positive\nbad,meh\n", encoding="utf-8")
    proc = bare_cli.run("classify", *LABELS, "--eval", str(other), check=False)
    assert_one_line_error(proc, "row 2 is labelled 'meh'")


def _results(path: Path) -> list[dict[str, Any]]:
    """The result lines of an --output file (after its header line)."""
    return _lines(path.read_text(encoding="utf-8"))[1:]


def sigkill_when_written(command: list[str], output: Path, results: int,
                         env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run ``command`` and SIGKILL it once its --output file holds ``results`` result lines
    (after the header); returns how many it holds then."""
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not output.exists() or output.read_bytes().count(b"\n") < results + 1:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(TIMEOUT)
    return output.read_bytes().count(b"\n") - 1


def test_input_output_killed_and_resumed_matches_an_uninterrupted_run(
        cli: Cli, model_path: Path) -> None:
    texts = [t for t, _label in ROWS] * 2
    source = cli.cwd / "texts.txt"
    source.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    run = ("classify", *THREADS, *LABELS, "--calibration", "contextual", "--input", str(source))
    whole = cli.cwd / "whole.jsonl"
    cli.run(*run, "--output", str(whole))

    output = cli.cwd / "resumed.jsonl"
    kept = sigkill_when_written(cli.command(*run, "--output", str(output)), output, 2,
                                cli.env, cli.cwd)
    assert 2 <= kept < len(texts)
    with open(output, "ab") as f:
        f.write(b'{"index": 99, "te')  # a torn last line, as a kill mid-write leaves
    proc = cli.run(*run, "--output", str(output), "--resume")
    assert f"({kept} there already)" in proc.stderr

    resumed, reference = _results(output), _results(whole)
    assert [r["index"] for r in resumed] == list(range(len(texts)))  # each once, in order
    assert [r["text"] for r in resumed] == texts
    assert [r["label"] for r in resumed] == [r["label"] for r in reference]
    for ours, theirs in zip(resumed, reference, strict=True):
        for label, p in theirs["scores"].items():
            assert ours["scores"][label] == pytest.approx(p, abs=SCORE_TOLERANCE)
