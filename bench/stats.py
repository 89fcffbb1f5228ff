"""Small pure helpers the benchmarks share: medians of rounds, ratios, percentiles, the key list."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# The keys issue 8 asks latest.json to hold (more may be added). Kept here so a unit test
# can check that a results dict names every one of them.
REQUIRED_KEYS = (
    "decode_ratio",
    "decode_window_vs_engine_ratio",
    "prefill_ratio",
    "followup_ttft_ratio",
    "ui_stall_max_ms",
    "ui_stall_p99_ms",
    "ui_stall_idle_p99_ms",
    "cold_start_ratio",
    "switch_ratio",
    "classify_per_s",
    "classify_ratio",
    "classify_speedup_vs_naive",
    "search_p95_ms",
    "start_ratio_10k_chats",
    "rss_overhead_ratio",
    "bundle_start_ratio",
    "bundle_mb",
    "variant_decode_ratio",
    # issue 17 (the server) and issue 14 item 5 (training)
    "server_overhead_ratio",
    "server_ttft_ratio",
    "server_throughput_ratio_c1",
    "server_throughput_ratio_c2",
    "server_throughput_ratio_c4",
    "remote_classify_per_s_c1",
    "remote_classify_per_s_c2",
    "remote_classify_per_s_c4",
    "remote_classify_ratio_c1",
    "lora_tokens_per_s_ratio",
    "lora_s_per_epoch_per_1k",
    "train_accuracy",
    "machine",
)

# Targets from the issue: (key, "<=" or ">=", bound). Reported, never asserted.
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("decode_ratio", ">=", 0.95),
    ("decode_window_vs_engine_ratio", ">=", 0.95),
    ("prefill_ratio", ">=", 0.95),
    ("followup_ttft_ratio", "<=", 1.2),
    ("ui_stall_max_ms", "<=", 50.0),
    ("ui_stall_p99_ms", "<=", 17.0),
    ("cold_start_ratio", "<=", 1.5),
    ("switch_ratio", "<=", 1.5),
    ("classify_ratio", ">=", 0.8),
    ("search_p95_ms", "<=", 50.0),
    ("start_ratio_10k_chats", "<=", 1.2),
    ("variant_decode_ratio", ">=", 0.95),
    ("server_overhead_ratio", ">=", 0.95),
    ("server_throughput_ratio_c1", ">=", 0.9),
    ("server_throughput_ratio_c2", ">=", 0.9),
    ("server_throughput_ratio_c4", ">=", 0.9),
    ("lora_tokens_per_s_ratio", ">=", 0.9),
)


def median(values: Sequence[float]) -> float:
    """Median of one or more rounds."""
    if not values:
        raise ValueError("no rounds to take the median of")
    return float(statistics.median(values))


def ratio_of_medians(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """median(ours) ÷ median(theirs): the figure every ratio in latest.json reports."""
    bottom = median(theirs)
    if bottom == 0:
        raise ZeroDivisionError("the baseline's median is zero")
    return median(ours) / bottom


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    if not 0 <= pct <= 100:
        raise ValueError("pct must lie in 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def target_met(value: float | None, op: str, bound: float) -> bool | None:
    """Whether ``value`` meets ``op bound``; None when it was not measured."""
    if value is None:
        return None
    return value >= bound if op == ">=" else value <= bound


def missing_keys(results: dict[str, object]) -> list[str]:
    """Required keys that ``results`` lacks (a key may hold None when it could not be measured)."""
    return [k for k in REQUIRED_KEYS if k not in results]
