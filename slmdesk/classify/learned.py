"""Trained scorers: multinomial logistic regression (numpy) over a classifier's features.

A trained classifier turns each text into a feature vector — the label log-probabilities
the prompt gives (the ``prompt`` method's *learned calibration*, which generalises
contextual and batch calibration: a per-label bias and scale learned from data), or the
model's hidden state of the text with those log-probabilities appended (the ``head``
method) — and a linear model maps it to label probabilities.

Why numpy and not scikit-learn: numpy is already here (llama-cpp-python needs it), while
scikit-learn would add about 40 MB and SciPy to the app for one convex fit that is 40
lines. The fit is full-batch gradient descent with Nesterov momentum on standardised
features, L2-regularised, with balanced class weights (macro-F1 is what selection uses, and
a skewed training set would otherwise teach the bias of the majority label); a few hundred
steps on a thousand 600-dimensional vectors take well under a second.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slmdesk.errors import InvalidInputError

if TYPE_CHECKING:
    # numpy is imported where it is used: saved specs are read at start-up, and the
    # window should not pay for numpy before anything is classified.
    import numpy as np
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]

FEATURES = ("label_logprobs", "hidden_last", "hidden_mean")
LOGPROB_FLOOR = -50.0  # a label the model finds impossible still gets a finite feature


def _encode(values: FloatArray) -> str:
    return base64.b64encode(values.astype("<f4").tobytes()).decode("ascii")


def _decode(text: Any, size: int, what: str) -> FloatArray:
    import numpy as np

    if not isinstance(text, str):
        raise InvalidInputError(f"The trained classifier's {what} are missing.")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidInputError(f"The trained classifier's {what} are damaged.") from exc
    if len(raw) != 4 * size:
        raise InvalidInputError(f"The trained classifier's {what} have the wrong size.")
    values = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InvalidInputError(f"The trained classifier's {what} are not finite numbers.")
    return values


@dataclass(frozen=True, eq=False)
class LinearModel:
    """Softmax(W · standardise(x) + b) over ``labels``."""

    labels: tuple[str, ...]
    mean: FloatArray  # (n_features,)
    scale: FloatArray  # (n_features,)
    weights: FloatArray  # (n_labels, n_features)
    bias: FloatArray  # (n_labels,)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def probabilities(self, features: FloatArray) -> FloatArray:
        """Label probabilities for each row of ``features`` (n, n_features)."""
        import numpy as np

        z = ((features - self.mean) / self.scale) @ self.weights.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out: FloatArray = e / e.sum(axis=1, keepdims=True)
        return out

    def predict(self, features: Sequence[float]) -> dict[str, float]:
        import numpy as np

        row = np.asarray(features, dtype=np.float64)[None, :]
        if row.shape[1] != self.n_features:
            raise InvalidInputError(
                f"The trained classifier expects {self.n_features} features, got "
                f"{row.shape[1]} (was it trained with another model?)."
            )
        probs = self.probabilities(row)[0]
        return {name: float(p) for name, p in zip(self.labels, probs, strict=True)}

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "n_features": self.n_features,
            "encoding": "float32-le-base64",
            "mean": _encode(self.mean),
            "scale": _encode(self.scale),
            "weights": _encode(self.weights.reshape(-1)),
            "bias": _encode(self.bias),
        }

    @classmethod
    def from_json(cls, data: Any) -> LinearModel:
        if not isinstance(data, dict):
            raise InvalidInputError("The trained classifier's model must be an object.")
        labels = data.get("labels")
        n = data.get("n_features")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InvalidInputError("The trained classifier's labels are missing.")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= 1 << 20:
            raise InvalidInputError("The trained classifier's feature count is wrong.")
        k = len(labels)
        return cls(
            labels=tuple(labels),
            mean=_decode(data.get("mean"), n, "feature means"),
            scale=_decode(data.get("scale"), n, "feature scales"),
            weights=_decode(data.get("weights"), k * n, "weights").reshape(k, n),
            bias=_decode(data.get("bias"), k, "biases"),
        )


@dataclass(frozen=True)
class TrainedScorer:
    """What a trained classifier computes per text and the linear model on top."""

    features: str  # one of FEATURES
    model: LinearModel

    @property
    def needs_hidden(self) -> bool:
        return self.features != "label_logprobs"

    def to_json(self) -> dict[str, Any]:
        return {"features": self.features, "model": self.model.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> TrainedScorer:
        if not isinstance(data, dict):
            raise InvalidInputError("The trained classifier's parameters must be an object.")
        features = data.get("features")
        if features not in FEATURES:
            raise InvalidInputError(f"Unknown classifier features '{features}'.")
        return cls(features=features,
                   model=LinearModel.from_json(data.get("model")))


def logprob_features(probs: dict[str, float], labels: Sequence[str]) -> list[float]:
    """The log-probability of each label (in ``labels`` order), floored."""
    return [max(math.log(p), LOGPROB_FLOOR) if p > 0 else LOGPROB_FLOOR
            for p in (probs[name] for name in labels)]


def fit_logistic(
    features: FloatArray, targets: Sequence[int], labels: Sequence[str], *,
    l2: float = 1e-2, steps: int = 400,
) -> LinearModel:
    """Fit a multinomial logistic regression with balanced class weights.

    ``targets[i]`` is the index in ``labels`` of row i's label. Minimises the weighted mean
    cross-entropy plus ``l2 / 2 * |W|²`` (bias unpenalised) with Nesterov-accelerated
    gradient descent; the step is 1 / L for L an upper bound of the gradient's Lipschitz
    constant, so it converges without a line search.
    """
    import numpy as np

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.int64)
    n, d = x.shape
    k = len(labels)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    xs = (x - mean) / scale
    counts = np.bincount(y, minlength=k).astype(np.float64)
    weight_of = np.where(counts > 0, n / (k * np.maximum(counts, 1.0)), 0.0)
    sample_w = weight_of[y] / n
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    xb = np.hstack([xs, np.ones((n, 1))])
    # Softmax cross-entropy has a Hessian ≤ 1/2 · Σ w_i x_i x_iᵀ (per class block).
    lipschitz = 0.5 * float(np.linalg.norm(xb * np.sqrt(sample_w)[:, None], 2) ** 2) + l2
    step = 1.0 / lipschitz
    theta = np.zeros((k, d + 1))
    velocity_from = theta.copy()
    for t in range(1, steps + 1):
        look = theta + (t - 1) / (t + 2) * (theta - velocity_from)
        z = xb @ look.T
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        grad = ((p - onehot) * sample_w[:, None]).T @ xb
        grad[:, :d] += l2 * look[:, :d]
        velocity_from = theta
        theta = look - step * grad
    return LinearModel(labels=tuple(labels), mean=mean, scale=scale,
                       weights=theta[:, :d].copy(), bias=theta[:, d].copy())
