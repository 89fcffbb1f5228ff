"""Classify texts with a small language model by scoring each label's words after a prompt.

For every label, the score is the log-probability the model gives to the label's own tokens
right after the prompt (prompt and label tokenised together, so " positive" after "Label:"
is the token the model would really produce). The prompt prefix — instructions, the label
list and the few-shot examples — is the same for every text, so the engine decodes it once
and keeps it in the KV cache; each text then costs only its own tokens plus one short
decode per label word. Probabilities are a softmax over labels, then calibrated:

* contextual calibration (Zhao et al., 2021, "Calibrate Before Use"): divide by the
  prediction for content-free inputs ("N/A", "", "[MASK]"), which removes the prompt's
  bias towards some labels — the default for single texts;
* batch calibration (Zhou et al., 2023): divide by the mean prediction over the batch —
  the default when classifying many texts at once.

Multi-label mode asks one yes/no question per label and reports P(yes) per label.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slmdesk.classify.prompt import (
    DEFAULT_INSTRUCTIONS,
    DEFAULT_LAYOUT,
    DEFAULT_MULTI_INSTRUCTIONS,
    ChatLayout,
    PromptWords,
)
from slmdesk.classify.spec import ClassifierSpec
from slmdesk.engine.llama_engine import Cancelled, LlamaEngine
from slmdesk.engine.params import SamplingParams
from slmdesk.engine.remote.scoring import RemoteScorer
from slmdesk.errors import (
    ContextOverflowError,
    InvalidInputError,
    TemplateError,
    UnsupportedFeatureError,
)

log = logging.getLogger(__name__)

# Re-exported: callers and tests import the prompt's defaults from here too.
__all__ = [
    "DEFAULT_INSTRUCTIONS", "DEFAULT_LAYOUT", "DEFAULT_MULTI_INSTRUCTIONS", "ChatLayout",
    "Classifier", "Prediction", "TextFeatures",
]

# Inputs with no content; their averaged prediction is the prompt's own bias.
CONTENT_FREE = ("N/A", "", "[MASK]")
AUTO_BATCH_MIN = 8  # "auto" uses batch calibration from this many texts on
EXPLAIN_MAX_TOKENS = 60
MIN_TEXT_TOKENS = 8  # below this much room for the text, the prompt itself is too long
YES_WORDS = ("yes", "Yes")
NO_WORDS = ("no", "No")
EMPTY_TEXT = "The text is empty."

# Stand-ins rendered through the chat template where the text and the question go; the
# rendered prompt is split at them so that each piece can be tokenised on its own.
_TEXT_MARK = "\u2063\u2063slmdesk-text\u2063\u2063"
_QUESTION_MARK = "\u2063\u2063slmdesk-question\u2063\u2063"

@dataclass
class Prediction:
    """The result for one text."""

    text: str
    label: str | None  # the chosen label; multi-label: the top label over the threshold
    labels: tuple[str, ...]  # multi-label: every label over the threshold; else (label,)
    probs: dict[str, float]  # calibrated; multi-label: P(yes) per label
    raw_probs: dict[str, float]  # before calibration
    calibration: str  # what was applied: "none" | "contextual" | "batch" | "learned"
    truncated: bool = False
    notes: list[str] = field(default_factory=list)
    explanation: str | None = None
    error: str | None = None

    @property
    def confidence(self) -> float:
        return self.probs.get(self.label, 0.0) if self.label is not None else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "labels": list(self.labels),
            "scores": dict(self.probs),
            "raw_scores": dict(self.raw_probs),
            "calibration": self.calibration,
            "truncated": self.truncated,
            "notes": list(self.notes),
            "explanation": self.explanation,
            "error": self.error,
        }


# -- calibration (pure functions) ----------------------------------------------------------


def _normalise(values: Mapping[str, float]) -> dict[str, float]:
    total = sum(values.values())
    if total <= 0 or not math.isfinite(total):
        return {k: 1.0 / len(values) for k in values}
    return {k: v / total for k, v in values.items()}


def calibrate(
    probs: Mapping[str, float], reference: Mapping[str, float], *, multi_label: bool = False
) -> dict[str, float]:
    """Divide ``probs`` by a reference prediction and renormalise.

    Single-label: q(y) = p(y) / r(y), normalised over labels. Multi-label: each label is
    its own yes/no distribution, (p, 1 - p) divided by (r, 1 - r). With the content-free
    prediction as reference this is contextual calibration; with the batch mean it is
    batch calibration.
    """
    tiny = 1e-300
    if multi_label:
        out: dict[str, float] = {}
        for k, p in probs.items():
            r = min(max(reference[k], tiny), 1 - 1e-16)
            yes = p / r
            no = (1.0 - p) / (1.0 - r)
            out[k] = yes / (yes + no) if yes + no > 0 else 0.5
        return out
    return _normalise({k: p / max(reference[k], tiny) for k, p in probs.items()})


def mean_distribution(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The mean prediction over ``rows`` (each a label → probability mapping)."""
    if not rows:
        raise ValueError("no predictions to average")
    keys = list(rows[0])
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}


def batch_calibrate(
    rows: Sequence[Mapping[str, float]], *, multi_label: bool = False
) -> list[dict[str, float]]:
    """Batch calibration: every row divided by the mean row, then renormalised."""
    if not rows:
        return []
    mean = mean_distribution(rows)
    return [calibrate(r, mean, multi_label=multi_label) for r in rows]


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _softmax(scores: Mapping[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exps = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(exps.values())
    return {k: v / total for k, v in exps.items()}


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# -- prompts -------------------------------------------------------------------------------


@dataclass
class _Plan:
    """The token pieces of one classifier on one loaded model, built once."""

    style: str  # "chat" | "completion"
    before: str  # prompt text before the text (instructions, labels, examples)
    lead: str  # put in front of the text when it is tokenised (a space the prompt ends with)
    prefix: list[int]  # tokens of ``before``
    shared: list[int]  # tokens after the text that every continuation starts with
    conts: list[tuple[list[int], list[int]]]  # (context, target) per scored word
    owners: list[tuple[int, int]]  # (label index, 0 = the label / yes, 1 = no)
    longest: int  # tokens of the longest context + target
    notes: list[str]


@dataclass
class _Raw:
    probs: dict[str, float]  # single: softmax over labels; multi: P(yes) per label
    truncated: bool
    notes: list[str]
    text_tokens: list[int]  # the (maybe cut) text tokens, for the explanation
    hidden: dict[str, list[float]] | None = None  # pooled hidden states, when asked for


@dataclass
class TextFeatures:
    """What a trained scorer can learn from for one text (``Classifier.features``)."""

    logprobs: list[float]  # per label, in the spec's label order
    hidden_last: list[float]  # hidden state at the prompt's last token (before the label)
    hidden_mean: list[float]  # hidden state averaged over the text's tokens
    truncated: bool


class Classifier:
    """Scores texts against a ``ClassifierSpec`` with the engine's loaded model.

    Not thread-safe: use it on the thread that owns the engine. The prompt pieces and the
    content-free prediction are computed once and rebuilt when another model is loaded.
    """

    def __init__(
        self, engine: LlamaEngine | RemoteScorer, spec: ClassifierSpec, *,
        layout: ChatLayout | None = None,
    ) -> None:
        self.engine = engine
        self.spec = spec.validate()
        self.layout = layout or DEFAULT_LAYOUT
        self.words = PromptWords(self.spec, self.layout)
        self._plan: _Plan | None = None
        self._plan_for: object | None = None
        self._content_free: dict[str, float] | None = None

    # public --------------------------------------------------------------------------------
    @property
    def prompt_style(self) -> str:
        """The prompt style in use: "chat" or "completion" (loads the plan)."""
        return self._ensure_plan().style

    def prefix_tokens(self) -> int:
        """Tokens of the shared prompt prefix (instructions, labels, examples)."""
        return len(self._ensure_plan().prefix)

    def classify(self, text: str, *, cancel: threading.Event | None = None) -> Prediction:
        """Classify one text ("auto" calibration is contextual).

        Raises ``Cancelled`` when ``cancel`` is set while scoring.
        """
        if not text.strip():
            return self._empty(text)
        mode = self.spec.calibration
        notes: list[str] = []
        if mode == "batch" and self.spec.trained is None:
            notes.append("Batch calibration needs several texts; contextual calibration "
                         "was used for this one.")
        if self.spec.trained is not None:
            mode = "learned"
        elif mode in ("auto", "batch"):
            mode = "contextual"
        raw = self._score(text, cancel)
        pred = self._predict(text, raw, mode, self._reference(mode, cancel))
        pred.notes.extend(notes)
        if self.spec.explain:
            self._explain(pred, raw, cancel)
        return pred

    def classify_many(
        self,
        texts: Sequence[str],
        *,
        cancel: threading.Event | None = None,
        on_result: Callable[[int, Prediction], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """Classify many texts, in order.

        "auto" calibration is batch calibration from ``AUTO_BATCH_MIN`` texts on, else
        contextual. ``on_result(i, prediction)`` is called as each text is scored, with
        contextual calibration (or none when the spec says "none"), so a window can show
        live results; the returned list holds the final predictions, batch-calibrated
        where batch calibration applies. ``on_progress(done, total)`` follows; when batch
        calibration and explanations are both on, explanations are written after all
        texts are scored and ``total`` counts both passes (2 x len(texts)).

        When ``cancel`` is set, returns the predictions finished so far (a shorter list),
        as they were reported to ``on_result``.
        """
        cancel = cancel or threading.Event()
        n = len(texts)
        final = self._final_mode(n)
        live = final if final in ("none", "learned") else "contextual"
        explain_later = self.spec.explain and final == "batch"
        total = 2 * n if explain_later else n
        preds: list[Prediction] = []
        raws: list[_Raw | None] = []
        try:
            reference = self._reference(live, cancel) if any(t.strip() for t in texts) else None
            for i, text in enumerate(texts):
                if cancel.is_set():
                    break
                if not text.strip():
                    pred, raw = self._empty(text), None
                else:
                    raw = self._score(text, cancel)
                    pred = self._predict(text, raw, live, reference)
                    if self.spec.explain and not explain_later:
                        self._explain(pred, raw, cancel)
                preds.append(pred)
                raws.append(raw)
                if on_result is not None:
                    on_result(i, pred)
                if on_progress is not None:
                    on_progress(i + 1, total)
        except Cancelled:
            pass
        if len(preds) < n:
            return preds
        if self.spec.calibration == "batch" and final != "batch":
            for pred in preds:
                if pred.error is None:
                    pred.notes.append("Batch calibration needs several texts; contextual "
                                      "calibration was used.")
        if final != "batch":
            return preds
        valid = [r for r in raws if r is not None]
        if len(valid) < 2:
            return preds
        mean = mean_distribution([r.probs for r in valid])
        final_preds = [
            self._predict(p.text, r, "batch", mean) if r is not None else p
            for p, r in zip(preds, raws, strict=True)
        ]
        if explain_later:
            try:
                for j, (pred, raw) in enumerate(zip(final_preds, raws, strict=True)):
                    if cancel.is_set():
                        return final_preds[:j]
                    if raw is not None:
                        self._explain(pred, raw, cancel)
                    if on_progress is not None:
                        on_progress(n + j + 1, total)
            except Cancelled:
                return final_preds[:j]
        return final_preds

    def training_pair(self, text: str, label: str) -> tuple[list[int], list[int]]:
        """The prompt tokens for ``text`` and the tokens of ``label``'s first word after it.

        What a fine-tune learns to continue: the very prompt ``classify`` scores (cut to
        fit like it), so a trained adapter raises the score the classifier reads.
        Single-label classifiers only.
        """
        if self.spec.multi_label:
            raise InvalidInputError("Fine-tuning needs a single-label classifier.")
        plan = self._ensure_plan()
        index = self.spec.label_names.index(label)
        tokens = self.engine.tokenize_piece(plan.lead + text.strip())
        room = self._n_ctx() - len(plan.prefix) - len(plan.shared) - plan.longest
        context, target = plan.conts[plan.owners.index((index, 0))]
        return plan.prefix + tokens[:room] + plan.shared + context, list(target)

    def content_free_prediction(
        self, cancel: threading.Event | None = None
    ) -> dict[str, float]:
        """The mean raw prediction for the content-free inputs (computed once)."""
        self._ensure_plan()
        if self._content_free is None:
            rows = [self._score(t, cancel, content_free=True).probs for t in CONTENT_FREE]
            self._content_free = mean_distribution(rows)
        return dict(self._content_free)

    def features(self, text: str, cancel: threading.Event | None = None) -> TextFeatures:
        """The label log-probabilities and pooled hidden states of one text (for training).

        Raises ``Cancelled`` when ``cancel`` is set.
        """
        from slmdesk.classify.learned import logprob_features

        raw = self._score(text, cancel, hidden=True)
        assert raw.hidden is not None
        return TextFeatures(
            logprobs=logprob_features(raw.probs, self.spec.label_names),
            hidden_last=raw.hidden["hidden_last"], hidden_mean=raw.hidden["hidden_mean"],
            truncated=raw.truncated,
        )

    def calibration_for(self, n: int) -> str:
        """The calibration ``classify_many`` applies to ``n`` texts' final predictions."""
        return self._final_mode(n)

    # calibration choice -----------------------------------------------------------------
    def _final_mode(self, n: int) -> str:
        if self.spec.trained is not None:
            return "learned"
        mode = self.spec.calibration
        if mode == "auto":
            return "batch" if n >= AUTO_BATCH_MIN else "contextual"
        if mode == "batch":
            return "batch" if n >= 2 else "contextual"
        return mode

    def _reference(
        self, mode: str, cancel: threading.Event | None
    ) -> dict[str, float] | None:
        return self.content_free_prediction(cancel) if mode == "contextual" else None

    # scoring ------------------------------------------------------------------------------
    def _empty(self, text: str) -> Prediction:
        return Prediction(
            text=text, label=None, labels=(), probs={}, raw_probs={}, calibration="none",
            error=EMPTY_TEXT,
        )

    def _score(
        self, text: str, cancel: threading.Event | None, *, content_free: bool = False,
        hidden: bool = False,
    ) -> _Raw:
        plan = self._ensure_plan()
        body = text.strip()
        tokens = self.engine.tokenize_piece(plan.lead + body) if body else []
        n_ctx = self._n_ctx()
        room = n_ctx - len(plan.prefix) - len(plan.shared) - plan.longest
        notes: list[str] = []
        truncated = False
        if len(tokens) > room:
            notes.append(
                f"The text was cut to its first {room} of {len(tokens)} tokens to fit the "
                f"model's {n_ctx}-token context."
            )
            tokens = tokens[:room]
            truncated = True
        trained = self.spec.trained
        pooled = None
        if hidden or (trained is not None and trained.needs_hidden and not content_free):
            pooled = self._pooled_hidden(plan, tokens, cancel)
        scores = self.engine.score_continuations(
            plan.prefix + tokens + plan.shared, plan.conts, cancel=cancel
        )
        names = self.spec.label_names
        if self.spec.multi_label:
            yes: dict[int, list[float]] = {}
            no: dict[int, list[float]] = {}
            for (label, slot), score in zip(plan.owners, scores, strict=True):
                (yes if slot == 0 else no).setdefault(label, []).append(score)
            probs = {
                name: 1.0 / (1.0 + math.exp(_logsumexp(no[i]) - _logsumexp(yes[i])))
                for i, name in enumerate(names)
            }
        else:
            per_label: dict[int, list[float]] = {}
            for (label, _slot), score in zip(plan.owners, scores, strict=True):
                per_label.setdefault(label, []).append(score)
            # A label's score is the log of the probability that the model says any of
            # its words: log-sum-exp over the words (they are different strings, so their
            # probabilities add), not the max, which would ignore every word but one.
            probs = _softmax({
                name: _logsumexp(per_label[i]) for i, name in enumerate(names)
            })
        if content_free:
            notes = []
        else:
            # A remote engine's scores say when a label token was outside what it returned.
            notes = plan.notes + notes + list(getattr(scores, "notes", ()))
        return _Raw(probs=probs, truncated=truncated, notes=notes, text_tokens=tokens,
                    hidden=pooled)

    def _pooled_hidden(
        self, plan: _Plan, tokens: list[int], cancel: threading.Event | None
    ) -> dict[str, list[float]]:
        """Hidden states of the text and what follows it, pooled two ways. Decoding them
        leaves the whole prompt in the KV cache, so the label scoring after it costs one
        token more, not the text again."""
        if not isinstance(self.engine, LlamaEngine):
            raise UnsupportedFeatureError(
                "A remote engine gives no hidden states: a classifier with a trained head "
                "runs on a model on this machine.")
        states = self.engine.hidden_states(
            plan.prefix + tokens + plan.shared, len(plan.prefix), cancel=cancel
        )
        text_part = states[: len(tokens)] if tokens else states
        return {
            "hidden_last": [float(v) for v in states[-1]],
            "hidden_mean": [float(v) for v in text_part.mean(axis=0)],
        }

    def _predict(
        self, text: str, raw: _Raw, mode: str, reference: Mapping[str, float] | None
    ) -> Prediction:
        multi = self.spec.multi_label
        trained = self.spec.trained
        if trained is not None:
            from slmdesk.classify.learned import logprob_features

            row = logprob_features(raw.probs, self.spec.label_names)
            if trained.needs_hidden:
                assert raw.hidden is not None
                row = raw.hidden[trained.features] + row
            probs, applied = trained.model.predict(row), "learned"
        elif mode == "none" or reference is None:
            probs, applied = dict(raw.probs), "none"
        else:
            probs, applied = calibrate(raw.probs, reference, multi_label=multi), mode
        names = self.spec.label_names
        if multi:
            passing = sorted(
                (n for n in names if probs[n] >= self.spec.threshold),
                key=lambda n: -probs[n],
            )
            label = passing[0] if passing else None
            labels = tuple(passing)
        else:
            label = max(names, key=lambda n: probs[n])
            labels = (label,)
        return Prediction(
            text=text, label=label, labels=labels, probs=probs, raw_probs=dict(raw.probs),
            calibration=applied, truncated=raw.truncated, notes=list(raw.notes),
        )

    def _n_ctx(self) -> int:
        info = self.engine.info
        assert info is not None
        return info.n_ctx

    # explanation ----------------------------------------------------------------------------
    def _explain(self, pred: Prediction, raw: _Raw, cancel: threading.Event | None) -> None:
        """Add a short justification of the label already chosen (it never changes it)."""
        plan = self._ensure_plan()
        words = [self.spec.label(name).words[0] for name in pred.labels]
        if not words:
            pred.explanation = None
            return
        before, after = self._explain_prompt(plan, words)
        prefix = self.engine.tokenize_prompt(before)
        rest = self.engine.tokenize_piece(after, special=True)
        text = list(raw.text_tokens)
        room = self._n_ctx() - len(prefix) - len(rest) - EXPLAIN_MAX_TOKENS - 1
        if room < 0:
            pred.notes.append("The explanation was left out: the prompt fills the context.")
            return
        text = text[:room]
        stops = ("\n",) if plan.style == "completion" else ()
        result = self.engine.stream_tokens(
            prefix + text + rest,
            SamplingParams(temperature=0, max_tokens=EXPLAIN_MAX_TOKENS, repeat_penalty=1.1,
                           stop=stops),
            cancel=cancel,
        )
        if result.finish_reason == "cancelled":
            raise Cancelled
        if result.error:
            pred.notes.append(f"No explanation: {result.error}")
            return
        pred.explanation = result.text.strip() or None

    def _explain_prompt(self, plan: _Plan, words: list[str]) -> tuple[str, str]:
        multi = self.spec.multi_label
        answer = ("Labels: " + ", ".join(words)) if multi else words[0]
        if plan.style == "chat":
            if not multi and self.layout.opener:
                answer = f"{self.layout.opener} {answer}"
            ask = (
                "In one short sentence, why do these labels apply to the text?"
                if multi
                else f'In one short sentence, why does the text get the label "{words[0]}"?'
            )
            messages = self.words.chat_messages(f"Text: {_TEXT_MARK}")
            messages += [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": ask},
            ]
            before, after = _split_once(self.engine.render(messages), _TEXT_MARK)
            if before.endswith(" "):
                before = before[:-1]
            return before, after
        if multi:
            after = f"\n{answer}\nReason:"
        else:
            after = f"\nLabel: {answer}\nReason:"
        return plan.before, after

    # plan -----------------------------------------------------------------------------------
    def _ensure_plan(self) -> _Plan:
        info = self.engine.info
        if info is None:
            from slmdesk.errors import ModelNotLoadedError

            raise ModelNotLoadedError("No model is loaded.")
        if self._plan is None or self._plan_for is not info:
            self._plan = self._build_plan()
            self._plan_for = info
            self._content_free = None
        return self._plan

    def _resolve_style(self) -> tuple[str, list[str]]:
        style = self.spec.prompt_style
        if style == "auto":
            style = "chat" if self.engine.has_chat_template() else "completion"
        return style, []

    def _build_plan(self) -> _Plan:
        style, notes = self._resolve_style()
        if style == "chat":
            try:
                return self._plan_for_style("chat", notes)
            except TemplateError as exc:
                if self.spec.prompt_style == "chat":
                    raise
                log.warning("classifier: chat prompt failed, using completion: %s", exc)
                notes.append("The model's chat template could not hold the classifier's "
                             "prompt; a plain completion prompt was used.")
        return self._plan_for_style("completion", notes)

    def _plan_for_style(self, style: str, notes: list[str]) -> _Plan:
        multi = self.spec.multi_label
        if style == "chat":
            content = f"Text: {_TEXT_MARK}" + (f"\n\n{_QUESTION_MARK}" if multi else "")
            rendered = self.engine.render(self.words.chat_messages(content))
            before, rest = _split_once(rendered, _TEXT_MARK)
            if not multi:
                rest += self.layout.opener
        else:
            before = self.words.completion_before()
            rest = f"\n{_QUESTION_MARK}\nAnswer:" if multi else "\nLabel:"
        lead = ""
        if before.endswith(" "):
            # "Text: " + "hello" tokenises as "Text:" + " hello" when the space goes with
            # the text, as it would in one piece. SentencePiece vocabularies that add a
            # leading space to every piece get it from the tokenizer instead.
            before = before[:-1]
            lead = "" if self._tokenizer_adds_space() else " "
        # (after text, word, owner) for every scored word
        items: list[tuple[str, str, tuple[int, int]]] = []
        if multi:
            mid, after = _split_once(rest, _QUESTION_MARK)
            for i, label in enumerate(self.spec.labels):
                context = mid + self.words.question(label, style) + after
                items += [(context, w, (i, 0)) for w in YES_WORDS]
                items += [(context, w, (i, 1)) for w in NO_WORDS]
        else:
            for i, label in enumerate(self.spec.labels):
                items += [(rest, w, (i, 0)) for w in label.words]
        shared, conts = self._continuations([(a, w) for a, w, _ in items])
        prefix = self.engine.tokenize_prompt(before)
        if not prefix:
            raise TemplateError("The classifier prompt is empty.")
        longest = max(len(c) + len(t) for c, t in conts)
        room = self._n_ctx() - len(prefix) - len(shared) - longest
        if room < MIN_TEXT_TOKENS:
            raise ContextOverflowError(
                f"The instructions, labels and examples need {len(prefix) + len(shared) + longest}"
                f" tokens, but the model's context holds {self._n_ctx()}. Use fewer or "
                "shorter examples, or raise the context size in the settings."
            )
        return _Plan(
            style=style, before=before, lead=lead, prefix=prefix, shared=shared, conts=conts,
            owners=[o for _, _, o in items], longest=longest, notes=notes,
        )

    def _continuations(
        self, items: list[tuple[str, str]]
    ) -> tuple[list[int], list[tuple[list[int], list[int]]]]:
        """Tokenise each (text after the input, word) together.

        The target of a word is the tokens of ``after + word`` beyond what they share with
        the tokens of ``after`` alone, so merges at the boundary are what the model would
        see. The part every continuation shares moves into the prefix (decoded once).
        """
        fulls: list[list[int]] = []
        cuts: list[int] = []
        for after, word in items:
            sep = "" if not after or after[-1].isspace() else " "
            alone = self.engine.tokenize_piece(after, special=True)
            full = self.engine.tokenize_piece(after + sep + word, special=True)
            cut = _common_prefix(alone, full)
            if cut >= len(full):
                raise TemplateError(f"The label word '{word}' has no tokens of its own.")
            fulls.append(full)
            cuts.append(cut)
        shared = min(cuts)
        for full in fulls[1:]:
            shared = min(shared, _common_prefix(fulls[0], full))
        conts = [(full[shared:cut], full[cut:]) for full, cut in zip(fulls, cuts, strict=True)]
        return fulls[0][:shared], conts

    def _tokenizer_adds_space(self) -> bool:
        tokens = self.engine.tokenize_piece("a")
        return bool(tokens) and self.engine.token_piece(tokens[0]).startswith(b" ")



def _split_once(rendered: str, mark: str) -> tuple[str, str]:
    if rendered.count(mark) != 1:
        raise TemplateError("The chat template changed the classifier's prompt.")
    before, after = rendered.split(mark)
    return before, after
