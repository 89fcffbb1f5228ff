"""`slmdesk models search` and `slmdesk models pull` in real subprocesses against the fake hub.

Includes the hard cases: the pulling process killed with SIGKILL (and interrupted with
Ctrl-C) and a second pull that resumes from the partial file and finishes verified.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hubserver import (
    ALIEN_FILE,
    ALIEN_REPO,
    GATED_REPO,
    SMOL_FILE,
    SMOL_REPO,
    TINY_FILES,
    TINY_REPO,
    FakeHub,
)

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]


def _env(hub: FakeHub, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "SLMDESK_HOME")}
    env.update(HF_ENDPOINT=hub.url, SLMDESK_HOME=str(home), PYTHONUTF8="1", HF_TOKEN="")
    return env


def run_cli(hub: FakeHub, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slmdesk", *args],
        env=_env(hub, home), cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
    )


def start_cli(hub: FakeHub, home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "slmdesk", *args],
        env=_env(hub, home), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def registered(hub: FakeHub, home: Path) -> list[dict[str, Any]]:
    result = run_cli(hub, home, "models", "list", "--json")
    assert result.returncode == 0, result.stderr
    return [m for m in json.loads(result.stdout) if m["source"] == "download"]


def wait_for_partial(part: Path, size: int, fraction: float, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if part.exists() and part.stat().st_size >= fraction * size:
            return part.stat().st_size
        time.sleep(0.02)
    raise AssertionError("the download never got going")


# -- search ------------------------------------------------------------------------------------


def test_search_table_and_json(hub_server: FakeHub, tmp_path: Path) -> None:
    result = run_cli(hub_server, tmp_path, "models", "search", "", "--sort", "likes")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["REPO", "DOWNLOADS", "LIKES", "UPDATED"]
    expected = sorted(hub_server.repos.values(), key=lambda s: s.likes, reverse=True)
    assert [line.split()[0] for line in lines[1:]] == [s.repo_id for s in expected]
    gated_line = next(line for line in lines if line.startswith(GATED_REPO))
    assert "(gated)" in gated_line

    result = run_cli(hub_server, tmp_path, "models", "search", "tiny", "--json", "--limit", "5")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [r["repo_id"] for r in data] == [TINY_REPO]
    assert data[0]["downloads"] == hub_server.repos[TINY_REPO].downloads


# -- pull ----------------------------------------------------------------------------------------


def test_pull_picks_q4_k_m_and_registers_it(hub_server: FakeHub, tmp_path: Path) -> None:
    result = run_cli(hub_server, tmp_path, "models", "pull", TINY_REPO)
    assert result.returncode == 0, result.stderr
    assert "sha256 verified" in result.stdout
    (model,) = registered(hub_server, tmp_path)
    chosen = next(name for name in TINY_FILES if "Q4_K_M" in name)
    assert model["hub_filename"] == chosen
    assert model["repo_id"] == TINY_REPO
    assert model["revision"] == hub_server.repos[TINY_REPO].commit
    assert model["sha256"] == hub_server.sha256(TINY_REPO, chosen)
    assert model["quantization"] == "Q4_K_M" and model["exists"]
    # Pulling again finds the finished download instead of fetching it twice.
    again = run_cli(hub_server, tmp_path, "models", "pull", TINY_REPO, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["model"]["id"] == model["id"]
    # (the architecture check reads the header each time; the file itself came once)
    assert [r.status for r in hub_server.file_requests(chosen)].count(200) == 1


def test_pull_a_chosen_file(hub_server: FakeHub, tmp_path: Path) -> None:
    name = next(n for n in TINY_FILES if "Q8_0" in n)
    result = run_cli(hub_server, tmp_path, "models", "pull", TINY_REPO, "--file", name, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["download"]["state"] == "done"
    assert data["model"]["hub_filename"] == name


def test_pull_refuses_an_unsupported_architecture_before_downloading(
    hub_server: FakeHub, tmp_path: Path
) -> None:
    result = run_cli(hub_server, tmp_path, "models", "pull", ALIEN_REPO)
    assert result.returncode == 1
    assert "needs a newer engine" in result.stderr and "Traceback" not in result.stderr
    assert registered(hub_server, tmp_path) == []
    # Only the header was read (the whole tiny file is smaller than the first prefix).
    assert all(r.range_start == 0 for r in hub_server.file_requests(ALIEN_FILE))
    assert not list((tmp_path / "data" / "models").rglob("*.gguf*"))


def test_pull_gated_repo_says_what_to_do(hub_server: FakeHub, tmp_path: Path) -> None:
    result = run_cli(hub_server, tmp_path, "models", "pull", GATED_REPO)
    assert result.returncode == 1
    assert "gated repository" in result.stderr and "hf auth login" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["../../etc", "--file", "x.gguf"], "not a hub repository id"),
        ([TINY_REPO, "--file", "../evil.gguf"], "has no GGUF file"),
        (["nobody/nothing-GGUF"], "No model repository"),
    ],
)
def test_pull_bad_input(
    hub_server: FakeHub, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli(hub_server, tmp_path, "models", "pull", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_pull_offline(hub_server: FakeHub, tmp_path: Path) -> None:
    env = _env(hub_server, tmp_path) | {"HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "slmdesk", "models", "pull", TINY_REPO],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert result.returncode == 1 and "HF_HUB_OFFLINE" in result.stderr
    assert hub_server.requests == []


# -- interrupted pulls -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_interrupted_pull_resumes_on_the_next_pull(
    hub_server: FakeHub, model_path: Path, tmp_path: Path, how: str
) -> None:
    size = hub_server.size(SMOL_REPO, SMOL_FILE)
    part = tmp_path / "data" / "models" / SMOL_REPO / (SMOL_FILE + ".part")
    hub_server.chunk_delay_s = 0.002  # slow enough to interrupt mid-file
    proc = start_cli(hub_server, tmp_path, "models", "pull", SMOL_REPO)
    try:
        wait_for_partial(part, size, 0.3, proc)
        proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if how == "ctrl-c":
        assert proc.returncode == 130 and "resume" in stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    have = part.stat().st_size
    assert 0 < have < size
    assert registered(hub_server, tmp_path) == []
    sent_before = hub_server.bytes_sent(SMOL_FILE)

    hub_server.chunk_delay_s = 0.0
    result = run_cli(hub_server, tmp_path, "models", "pull", SMOL_REPO)
    assert result.returncode == 0, result.stderr
    (model,) = registered(hub_server, tmp_path)
    assert model["sha256"] == hub_server.sha256(SMOL_REPO, SMOL_FILE)
    assert model["hub_filename"] == SMOL_FILE and not part.exists()
    resumed = hub_server.file_requests(SMOL_FILE)[-1]
    assert resumed.status == 206 and resumed.range_start == have
    # Re-fetched: what was sent before the interruption but never reached the file.
    assert (sent_before - have) < 0.05 * size
    assert hub_server.bytes_sent(SMOL_FILE) - size < 0.05 * size
