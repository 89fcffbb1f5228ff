"""The fingerprint check's verdicts and the catalog's reference values (no model needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from slmdesk.catalog.curated import CatalogError, load_catalog, reference_for_file
from slmdesk.engine.fingerprint import (
    FINGERPRINT_VERSION,
    REFERENCE_TEXT,
    Fingerprint,
    FingerprintCheck,
)

ROOT = Path(__file__).resolve().parents[3]


def _check(measured: float, expected: float | None = -2.789, tol: float = 0.01) -> FingerprintCheck:
    return FingerprintCheck(Fingerprint(measured, 228), expected, tol)


def test_within_the_tolerance_passes_and_says_the_difference() -> None:
    check = _check(-2.785)
    assert check.ok
    assert "reference -2.7890" in check.describe() and "+0.0040" in check.describe()


def test_outside_the_tolerance_fails_with_the_reason() -> None:
    check = _check(-2.85)
    assert not check.ok
    text = check.describe()
    assert "reference for this model is -2.7890 ± 0.01" in text and "damaged" in text


@pytest.mark.parametrize("value", [math.nan, -math.inf, math.inf])
def test_a_non_finite_fingerprint_always_fails(value: float) -> None:
    # NaN compares False with everything: a naive `abs(d) > tol` would let it pass.
    assert not _check(value).ok
    assert not _check(value, expected=None).ok
    assert "non-finite" in _check(value).describe()


def test_without_a_reference_the_value_is_reported_not_judged() -> None:
    check = _check(-3.5, expected=None)
    assert check.ok and "no reference value" in check.describe()


def test_the_reference_text_is_a_few_hundred_tokens_of_plain_text() -> None:
    words = REFERENCE_TEXT.split()
    assert 150 <= len(words) <= 250
    assert REFERENCE_TEXT.isascii() and "\n" not in REFERENCE_TEXT


def test_the_starter_has_a_reference_found_by_size_and_architecture() -> None:
    entries = load_catalog(ROOT / "resources" / "catalog.json")
    entry = reference_for_file(98362432, "llama", entries)
    assert entry is not None and entry.quantization == "Q4_1"
    assert entry.fingerprint_logprob is not None and entry.fingerprint_tolerance is not None
    assert -3.5 < entry.fingerprint_logprob < -2.0
    assert reference_for_file(98362432, "gemma3", entries) is None
    assert reference_for_file(98362433, "llama", entries) is None


def _catalog_with(tmp_path: Path, fingerprint: object) -> Path:
    data = json.loads((ROOT / "resources" / "catalog.json").read_text())
    data["models"][0]["files"][0]["fingerprint"] = fingerprint
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("bad", [
    "fast", {"version": 1, "mean_logprob": 2.5, "tolerance": 0.01},
    {"version": 1, "mean_logprob": -2.5, "tolerance": 3.0},
    {"version": 1, "mean_logprob": -2.5},
])
def test_a_malformed_fingerprint_in_the_catalog_is_named(tmp_path: Path, bad: object) -> None:
    with pytest.raises(CatalogError, match="fingerprint"):
        load_catalog(_catalog_with(tmp_path, bad))


def test_a_fingerprint_of_another_text_version_is_not_compared(tmp_path: Path) -> None:
    other = {"version": FINGERPRINT_VERSION + 1, "mean_logprob": -2.5, "tolerance": 0.01}
    entries = load_catalog(_catalog_with(tmp_path, other))
    assert entries[0].fingerprint_logprob is None
