"""The benchmark's pure helpers: medians, ratios, percentiles, targets, the JSON keys, parsing
of llama-bench and first-paint output, and the results table (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import llama_bench, startup
from bench.__main__ import print_table
from bench.stats import (
    REQUIRED_KEYS,
    TARGETS,
    median,
    missing_keys,
    percentile,
    ratio_of_medians,
    target_met,
)

ISSUE_KEYS = {
    "decode_ratio", "prefill_ratio", "followup_ttft_ratio", "ui_stall_max_ms",
    "ui_stall_p99_ms", "ui_stall_idle_p99_ms", "cold_start_ratio", "switch_ratio",
    "classify_per_s", "classify_ratio", "classify_speedup_vs_naive", "search_p95_ms",
    "start_ratio_10k_chats", "rss_overhead_ratio", "bundle_start_ratio", "bundle_mb",
}


def test_required_keys_cover_the_issue() -> None:
    assert ISSUE_KEYS <= set(REQUIRED_KEYS)
    assert "machine" in REQUIRED_KEYS
    assert len(set(REQUIRED_KEYS)) == len(REQUIRED_KEYS)


def test_every_target_names_a_required_key() -> None:
    assert {key for key, _, _ in TARGETS} <= set(REQUIRED_KEYS)
    assert all(op in ("<=", ">=") for _, op, _ in TARGETS)


def test_median_of_rounds() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    with pytest.raises(ValueError):
        median([])


def test_ratio_of_medians_is_not_a_median_of_ratios() -> None:
    ours, theirs = [10.0, 20.0, 30.0], [30.0, 10.0, 20.0]
    assert ratio_of_medians(ours, theirs) == 1.0
    assert ratio_of_medians([9.0, 9.0, 9.0], [3.0, 3.0, 6.0]) == 3.0
    with pytest.raises(ZeroDivisionError):
        ratio_of_medians([1.0], [0.0])


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_target_met() -> None:
    assert target_met(0.96, ">=", 0.95) is True
    assert target_met(0.94, ">=", 0.95) is False
    assert target_met(1.2, "<=", 1.2) is True
    assert target_met(1.3, "<=", 1.2) is False
    assert target_met(None, "<=", 1.2) is None


def test_missing_keys_lists_what_a_results_dict_lacks() -> None:
    full = {key: None for key in REQUIRED_KEYS}
    assert missing_keys(full) == []
    del full["switch_ratio"]
    assert missing_keys(full) == ["switch_ratio"]


def test_committed_results_hold_every_required_key() -> None:
    latest = Path(__file__).resolve().parents[2] / "bench" / "results" / "latest.json"
    if not latest.is_file():
        pytest.skip("no bench/results/latest.json in this checkout")
    results = json.loads(latest.read_text())
    assert missing_keys(results) == []
    machine = results["machine"]
    for field in ("cpu", "threads", "llama_cpp_commit", "llama_cpp_python"):
        assert field in machine


def test_parse_llama_bench_json() -> None:
    out = json.dumps([
        {"n_prompt": 512, "n_gen": 0, "avg_ts": 61.2, "n_threads": 1},
        {"n_prompt": 0, "n_gen": 256, "avg_ts": 22.9, "n_threads": 1},
    ])
    assert llama_bench.parse_json_output(out) == {"pp": 61.2, "tg": 22.9}


def test_parse_first_paint() -> None:
    assert startup.parse_first_paint("noise\nfirst-paint 123.456789\n") == 123.456789
    assert startup.parse_first_paint("") is None
    assert startup.parse_first_paint("first-painted 1.0") is None


def test_gui_env_measures_an_installed_like_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = startup.gui_env("/some/home")
    assert env["QT_QPA_PLATFORM"] == "offscreen"
    assert env["SLMDESK_HOME"] == "/some/home"
    assert "PYTHONDONTWRITEBYTECODE" not in env


def test_bundle_sizes(tmp_path: Path) -> None:
    assert startup.bundle_sizes(tmp_path) is None
    app = tmp_path / "slmdesk"
    (app / "_internal").mkdir(parents=True)
    (app / "slmdesk").write_bytes(b"x" * 1_500_000)
    (app / "_internal" / "lib.so").write_bytes(b"x" * 500_000)
    (tmp_path / "slmdesk-0.1.0-linux-x86_64.tar.xz").write_bytes(b"x" * 700_000)
    assert startup.bundle_sizes(tmp_path) == {
        "folder": 2.0, "slmdesk-0.1.0-linux-x86_64.tar.xz": 0.7}


def test_print_table_flags_missed_and_unmeasured_targets() -> None:
    lines: list[str] = []
    results = {key: None for key in REQUIRED_KEYS}
    results.update(decode_ratio=0.97, cold_start_ratio=4.2, bundle_mb={"folder": 234.5},
                   switch_error="gemma missing",
                   machine={"cpu": "X", "threads": 1, "llama_cpp_commit": "0c1e570"})
    print_table(results, lines.append)
    row = {line.split()[0]: line for line in lines if line and not line.startswith(" ")}
    assert row["decode_ratio"].rstrip().endswith("yes")
    assert row["cold_start_ratio"].rstrip().endswith("NO")
    assert row["switch_ratio"].rstrip().endswith("—")
    assert "folder 234.5" in "\n".join(lines)
    assert "switch_error: gemma missing" in lines
