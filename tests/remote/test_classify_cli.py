"""`slmdesk classify --engine NAME --input FILE --output FILE [--resume]`: a run killed with
SIGKILL mid-way continues where it stopped, and the file ends up equal to an uninterrupted
run's (the fake engine scores deterministically, like vLLM)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from slmdesk.cli import main
from slmdesk.startup import open_core
from slmdesk.store.engines import EngineRepository
from tests.cli.test_classify_cli import sigkill_when_written
from tests.remote.fake_engine import MODEL, SCORING_FEATURES, FakeEngine

# Different lengths, so that the fake engine's scores differ from text to text.
TEXTS = [f"text number {i}: " + "word " * (i % 5) for i in range(12)]


@pytest.fixture
def scoring_box(fake: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    """The fake engine, scoring, saved as "box" with the findings of a check."""
    monkeypatch.setenv("SLMDESK_STARTER_MODEL", "/nonexistent/no-starter.gguf")
    fake.scoring = True
    db = open_core().db
    repo = EngineRepository(db)
    repo.add("box", fake.url, None)
    repo.record_check("box", {"kind": "openai-compatible", "models": [MODEL], "model": MODEL,
                              "n_ctx": 2048, "features": SCORING_FEATURES, "reasons": {}})
    db.close()
    return fake


def _args(tmp_path: Path, output: Path, *extra: str) -> list[str]:
    source = tmp_path / "texts.txt"
    if not source.exists():
        source.write_text("".join(t + "\n" for t in TEXTS), encoding="utf-8")
    return ["classify", "--engine", "box", "--labels", "positive,negative,neutral",
            "--calibration", "contextual", "--concurrency", "2", "--input", str(source),
            "--output", str(output), *extra]


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_killed_run_resumes_to_the_uninterrupted_result(
        scoring_box: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = tmp_path / "reference.jsonl"
    assert main(_args(tmp_path, reference)) == 0

    output = tmp_path / "killed.jsonl"
    scoring_box.delay = 0.05  # a few texts a second: the kill lands mid-run
    kept = sigkill_when_written([sys.executable, "-m", "slmdesk", *_args(tmp_path, output)],
                                output, 3)
    assert 3 <= kept < len(TEXTS)
    with open(output, "ab") as f:
        f.write(b'{"index": ' + str(kept).encode() + b', "text": "torn')  # a torn last line

    scoring_box.delay = 0.0
    capsys.readouterr()
    assert main(_args(tmp_path, output, "--resume")) == 0
    assert f"({kept} there already)" in capsys.readouterr().err
    rows = _rows(output)
    assert [r["index"] for r in rows[1:]] == list(range(len(TEXTS)))  # each once, in order
    assert rows == _rows(reference)

    # Finished: a second resume has nothing to do and changes nothing.
    before = output.read_bytes()
    requests = len(scoring_box.requests)
    assert main(_args(tmp_path, output, "--resume")) == 0
    assert output.read_bytes() == before and len(scoring_box.requests) == requests


def test_resume_refuses_another_runs_file_and_batch_calibration(
        scoring_box: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out.jsonl"
    assert main(_args(tmp_path, output)) == 0
    before = output.read_bytes()
    capsys.readouterr()
    other_labels = _args(tmp_path, output, "--resume")
    other_labels[other_labels.index("--labels") + 1] = "yes,no"
    assert main(other_labels) == 2
    assert "labels and classifier settings differ" in capsys.readouterr().err
    batch = _args(tmp_path, output, "--resume")
    batch[batch.index("--calibration") + 1] = "batch"
    assert main(batch) == 2
    assert "--resume cannot continue a run with batch calibration" in capsys.readouterr().err
    assert main(_args(tmp_path, output)) == 2
    assert "already exists. Add --resume" in capsys.readouterr().err
    assert output.read_bytes() == before
