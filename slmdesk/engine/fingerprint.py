"""A model's numeric fingerprint: the mean log-likelihood per token of one fixed text.

Why not "ask the model a question and check the words": greedy decoding of a small quantized
model is decided by the last bits of dot products, and those differ between CPUs (AVX2 vs
AVX-512 kernels round differently), builds and batch shapes. The mean log-probability of a
few hundred tokens moves only by a tiny, measurable amount across correct builds, but far
more when the weights or the arithmetic are wrong. ``--self-test`` and the tests compare it
with a reference value recorded for the model (resources/catalog.json, ``fingerprint``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Bump when REFERENCE_TEXT changes: stored reference values name the version they belong to.
FINGERPRINT_VERSION = 1

# The same text for every model: plain, factual English that any instruction model has seen
# the like of, so a healthy model predicts it well (SmolLM2-135M: about 220 tokens).
REFERENCE_TEXT = (
    "The river rises in the hills to the north of the town and flows south for about forty "
    "kilometres before it reaches the sea. In spring, when the snow melts, the water is high "
    "and fast, and the old stone bridge near the market is sometimes closed for a few days. "
    "In summer the river is slow and shallow, and children swim in the pools below the mill. "
    "The town grew up around the bridge in the twelfth century, when merchants began to "
    "cross the river on their way to the coast. Today it has a small museum, two schools, a "
    "railway station and a weekly market where farmers sell vegetables, cheese, bread and "
    "honey. Most people who live in the town work in the nearby city, which is half an hour "
    "away by train. Visitors come to walk along the river, to see the church with its tall "
    "tower, and to eat fresh fish in the restaurants by the harbour. The weather is mild for "
    "most of the year, although the winters can be wet and windy. Every August there is a "
    "festival with music, dancing and a boat race on the river, and the streets are full of "
    "people until late at night."
)

# The difference from a model's reference value that still counts as the same model computed
# correctly, in nats per token, where the catalog records none of its own. Measured on
# SmolLM2-135M Q4_1 across five CPU builds of llama.cpp 0.3.36's vendored source on one AMD
# EPYC (bench/cpu_variants.py; docs/reliability.md): native -2.78897, zen4 -2.78897,
# haswell (AVX2) -2.78849, sse42 -2.78910, x64 -2.79115 — a spread of 0.0027 (the catalog
# records the middle of that range, -2.78982, with this tolerance: 0.02 is about seven times
# the spread, room for GPU backends, not measured here). Gemma 3 270M Q4_K_M moves more: native
# -2.38288, haswell -2.38158, sse42 -2.39296, x64 -2.39258, a spread of 0.0114 (its entry:
# -2.38727 ± 0.03). One damaged weight block moves the starter's by more than 20
# (tests/integration/test_engine.py).
DEFAULT_TOLERANCE = 0.02


@dataclass(frozen=True)
class Fingerprint:
    """Mean log-probability (nats) of each reference-text token given the ones before it."""

    mean_logprob: float
    tokens: int
    version: int = FINGERPRINT_VERSION

    @property
    def perplexity(self) -> float:
        return math.exp(-self.mean_logprob) if math.isfinite(self.mean_logprob) else math.inf


@dataclass(frozen=True)
class FingerprintCheck:
    """A measured fingerprint against a model's reference value."""

    measured: Fingerprint
    expected: float | None
    tolerance: float

    @property
    def difference(self) -> float | None:
        if self.expected is None:
            return None
        return self.measured.mean_logprob - self.expected

    @property
    def ok(self) -> bool:
        """Within tolerance; a NaN or infinite measurement never is."""
        diff = self.difference
        if not math.isfinite(self.measured.mean_logprob):
            return False
        return diff is None or abs(diff) <= self.tolerance

    def describe(self) -> str:
        got = self.measured.mean_logprob
        text = f"mean log-likelihood {got:.4f} nats/token over {self.measured.tokens} tokens"
        if not math.isfinite(got):
            return (f"the model computed a non-finite log-likelihood ({got}) for the reference "
                    "text: the model file is damaged or llama.cpp computes wrongly")
        if self.expected is None:
            return f"{text} (no reference value recorded for this model)"
        diff = self.difference or 0.0
        if self.ok:
            return f"{text}, reference {self.expected:.4f} (difference {diff:+.4f})"
        return (
            f"{text}, but the reference for this model is {self.expected:.4f} ± "
            f"{self.tolerance:g} (difference {diff:+.4f}): the model file is damaged or "
            "this build of llama.cpp computes wrongly"
        )
