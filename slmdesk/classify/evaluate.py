"""Accuracy, per-label precision/recall/F1, macro F1, a confusion matrix, and McNemar's
paired test of two classifiers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slmdesk.errors import InvalidInputError


@dataclass
class EvalReport:
    """How predictions compare with gold labels.

    ``confusion[i][j]`` counts texts whose gold label is ``labels[i]`` and whose predicted
    label is ``labels[j]``. A text with no prediction (an error) counts as wrong: it is in
    ``n`` and in its gold label's support, but in no confusion cell.
    """

    accuracy: float
    macro_f1: float
    per_label: dict[str, dict[str, float]]  # label -> precision, recall, f1, support
    confusion: list[list[int]]
    labels: list[str]
    n: int
    seconds: float = 0.0
    texts_per_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_label": {k: dict(v) for k, v in self.per_label.items()},
            "confusion": [list(row) for row in self.confusion],
            "labels": list(self.labels),
            "n": self.n,
            "seconds": self.seconds,
            "texts_per_s": self.texts_per_s,
        }


def evaluate(
    gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]
) -> EvalReport:
    """Compare ``predicted`` with ``gold``; every gold and predicted label must be in ``labels``.

    Precision of a label never predicted, recall of a label with no gold texts, and F1 where
    both are 0 are 0 (no division by zero). Macro F1 averages over the labels that occur as
    gold or predicted labels, so a label that is listed but never appears does not pull
    the average down.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    labels = list(labels)
    index = {name: i for i, name in enumerate(labels)}
    if len(index) != len(labels):
        raise InvalidInputError("A label is listed twice.")
    for name in gold:
        if name not in index:
            raise InvalidInputError(
                f"The gold label '{name}' is not one of the labels ({', '.join(labels)})."
            )
    # No label (an empty text, an error) may come as None or "" (no label is named "").
    predicted = [p if p else None for p in predicted]
    for pred in predicted:
        if pred is not None and pred not in index:
            raise InvalidInputError(f"The predicted label '{pred}' is not one of the labels.")
    k = len(labels)
    confusion = [[0] * k for _ in range(k)]
    support = [0] * k
    for g, p in zip(gold, predicted, strict=True):
        support[index[g]] += 1
        if p is not None:
            confusion[index[g]][index[p]] += 1
    n = len(gold)
    correct = sum(confusion[i][i] for i in range(k))
    per_label: dict[str, dict[str, float]] = {}
    present: list[float] = []
    for i, name in enumerate(labels):
        tp = confusion[i][i]
        n_pred = sum(confusion[r][i] for r in range(k))
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / support[i] if support[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": float(support[i]),
        }
        if support[i] or n_pred:
            present.append(f1)
    return EvalReport(
        accuracy=correct / n if n else 0.0,
        macro_f1=sum(present) / len(present) if present else 0.0,
        per_label=per_label,
        confusion=confusion,
        labels=labels,
        n=n,
    )


def format_report(report: EvalReport) -> str:
    """The report as a small text table for a terminal."""
    width = max([len("label"), *(len(name) for name in report.labels)])
    lines = [
        f"accuracy {report.accuracy:.3f}   macro F1 {report.macro_f1:.3f}   n {report.n}"
        + (
            f"   ({report.seconds:.1f} s, {report.texts_per_s:.2f} texts/s)"
            if report.seconds
            else ""
        ),
        "",
        f"{'label':<{width}}  precision  recall  f1     support",
    ]
    for name in report.labels:
        m = report.per_label[name]
        lines.append(
            f"{name:<{width}}  {m['precision']:<9.3f}  {m['recall']:<6.3f}  {m['f1']:<5.3f}  "
            f"{int(m['support'])}"
        )
    lines += ["", "confusion (rows: gold, columns: predicted)"]
    cell = max([5, *(len(name) for name in report.labels)])
    lines.append(" " * width + "  " + "  ".join(f"{name:>{cell}}" for name in report.labels))
    for name, row in zip(report.labels, report.confusion, strict=True):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)


def mcnemar_exact(
    gold: Sequence[str], first: Sequence[str | None], second: Sequence[str | None]
) -> dict[str, float]:
    """The exact (binomial) McNemar test of two classifiers on the same texts.

    Only the discordant texts count: ``b`` that only ``first`` gets right, ``c`` that only
    ``second`` gets right. Under the null hypothesis (equal error rates) each discordant
    text is a fair coin, so the two-sided p-value is ``min(1, 2 · P(X ≤ min(b, c)))`` for
    X ~ Binomial(b + c, 1/2); with no discordant texts it is 1.
    """
    if not len(gold) == len(first) == len(second):
        raise ValueError("gold labels and both predictions must have the same length")
    b = sum(1 for g, x, y in zip(gold, first, second, strict=True) if x == g and y != g)
    c = sum(1 for g, x, y in zip(gold, first, second, strict=True) if y == g and x != g)
    n = b + c
    if n == 0:
        p = 1.0
    else:
        tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2.0**n
        p = min(1.0, 2.0 * tail)
    return {"only_first_right": float(b), "only_second_right": float(c), "p_value": p}
