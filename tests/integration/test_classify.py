"""Classification on the real SmolLM2-135M model through real llama-cpp-python."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest

from slmdesk.classify import Classifier, ClassifierSpec, Label, Prediction
from slmdesk.classify.classifier import (
    AUTO_BATCH_MIN,
    EMPTY_TEXT,
    calibrate,
    mean_distribution,
)
from slmdesk.engine.llama_engine import Cancelled, LlamaEngine
from slmdesk.engine.params import LoadParams, SamplingParams
from slmdesk.errors import ContextOverflowError
from slmdesk.settings import DEFAULT_SYSTEM_PROMPT

pytestmark = pytest.mark.model

POSITIVE = "I absolutely love this wonderful movie, it is the best film I have ever seen!"
NEGATIVE = "This is a terrible, awful movie. I hated every minute of it."
SENTIMENT = (Label("positive"), Label("negative"))
FEW_SHOT = (
    ("I adore this phone, it works perfectly and looks great.", "positive"),
    ("Terrible service, the waiter was rude and the soup was cold. Never again.", "negative"),
    ("An amazing trip with lovely people and beautiful weather every day.", "positive"),
    ("The movie was dull, far too long, and the ending made no sense at all.", "negative"),
    ("Fast delivery, great price, and the quality is excellent. Very happy.", "positive"),
    ("It broke after two days and customer support never answered my emails.", "negative"),
) * 3
MORE_TEXTS = [
    POSITIVE,
    NEGATIVE,
    "What a fantastic, delightful experience.",
    "The food was cold and the staff were rude.",
    "Great quality and fast delivery, I am very pleased.",
    "Poor quality and slow delivery, I am very disappointed.",
    "A beautiful, moving and joyful film.",
    "An ugly, painful and depressing film.",
    "Best purchase I have made all year.",
]


# The same log-probability computed along two paths (a fresh prefix vs one reused from the KV
# cache, one batch vs several) differs by the rounding of different kernels. Measured with
# bench/cpu_variants.py on one AMD EPYC (Zen 4): 0 on the native, zen4, sse42 and x64 builds,
# 0.0704 nats (a two-token label) on the haswell (AVX2) build — the 0.07 an AVX2 machine
# (Zen 3) reported. Allowed: about twice that. On probabilities that moves at most
# 0.0704 * p(1 - p) <= 0.018; allowed 0.03.
SAME_SCORE_NATS = 0.15
SAME_PROB = 0.03


def _log_softmax_sum(scores: Any, tokens: list[int], start: int) -> float:
    import numpy as np

    total = 0.0
    for i in range(start, len(tokens)):
        row = scores[i - 1].astype(np.float64)
        top = row.max()
        total += float(row[tokens[i]] - (top + np.log(np.exp(row - top).sum())))
    return total


@pytest.fixture(scope="module")
def reference_llama(model_path: Path) -> Any:
    """A separate Llama with logits for every position: the brute-force reference."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(model_path), n_ctx=512, n_threads=1, logits_all=True, verbose=False
    )
    yield llm
    llm.close()


def _reference_score(llm: Any, prefix: list[int], context: list[int], target: list[int]) -> float:
    tokens = prefix + context + target
    llm.reset()
    llm.eval(tokens)
    return _log_softmax_sum(llm.scores[: len(tokens)], tokens, len(prefix) + len(context))


# -- the scoring primitive ------------------------------------------------------------------


def test_score_continuations_equals_a_brute_force_reference(
    engine: Any, reference_llama: Any
) -> None:
    prefix = engine.tokenize_prompt(
        "<|im_start|>user\nText: The central bank raised interest rates again.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    conts = [
        ([], engine.tokenize_piece("interest rates")),  # multi-token target, no context
        ([], engine.tokenize_piece("sports")),
        (engine.tokenize_piece("Topic:"), engine.tokenize_piece(" central banking")),
        (engine.tokenize_piece("Topic:"), engine.tokenize_piece(" football")),  # shared decode
    ]
    assert len(conts[0][1]) > 1 and len(conts[2][1]) > 1
    got = engine.score_continuations(prefix, conts)
    want = [_reference_score(reference_llama, prefix, c, t) for c, t in conts]
    assert got == pytest.approx(want, abs=SAME_SCORE_NATS)
    # Scored again from the KV cache: the same numbers within the batch-shape spread, and
    # only one prefix token redone.
    engine.reset_perf()
    again = engine.score_continuations(prefix, conts)
    assert again == pytest.approx(got, abs=SAME_SCORE_NATS)
    counts = engine.perf_counts()
    # The last prefix token (for its logits), then per distinct context + target without
    # its last token (whose probability comes from the logits before it).
    keys = {tuple(c + t[:-1]) for c, t in conts}
    assert counts["n_p_eval"] + counts["n_eval"] == 1 + sum(len(k) for k in keys)
    # The cache holds exactly the prefix again.
    assert engine.cached_tokens() == len(prefix)


def test_classifier_raw_scores_equal_the_brute_force_reference(
    engine: Any, reference_llama: Any
) -> None:
    spec = ClassifierSpec(
        labels=(
            Label("interest rates"),
            Label("sports", verbalizers=("sports", "football match")),
            Label("food"),
        ),
        calibration="none",
        prompt_style="completion",
    )
    classifier = Classifier(engine, spec)
    text = "The central bank raised interest rates by half a point."
    pred = classifier.classify(text)
    # Rebuild the prompt from its pieces with the reference model and score every word
    # from scratch: the instructions and labels, then the text (tokenised on its own, as
    # untrusted text), then "Label:" followed by the word, tokenised together.
    before = (
        "Classify the text into one of the labels.\n\nLabels:\n- interest rates\n- sports\n"
        "- food\n\nText:"
    )
    ref = reference_llama
    base = ref.tokenize(before.encode(), add_bos=False, special=True)
    base += ref.tokenize((" " + text).encode(), add_bos=False, special=False)
    after = ref.tokenize(b"\nLabel:", add_bos=False, special=True)
    words = {"interest rates": ["interest rates"], "sports": ["sports", "football match"],
             "food": ["food"]}
    label_scores = {}
    for name, ws in words.items():
        per_word = []
        for w in ws:
            full = ref.tokenize(("\nLabel: " + w).encode(), add_bos=False, special=True)
            cut = next(i for i in range(len(full)) if i >= len(after) or full[i] != after[i])
            tokens = base + full
            per_word.append(_reference_score(ref, base + full[:cut], [], tokens[len(base) + cut:]))
        top = max(per_word)
        label_scores[name] = top + math.log(sum(math.exp(s - top) for s in per_word))
    top = max(label_scores.values())
    z = sum(math.exp(s - top) for s in label_scores.values())
    want = {k: math.exp(s - top) / z for k, s in label_scores.items()}
    assert pred.raw_probs == pytest.approx(want, abs=SAME_PROB)
    assert pred.label == "interest rates"
    assert pred.calibration == "none" and pred.probs == pred.raw_probs


# -- classification --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["chat", "completion"])
@pytest.mark.parametrize("calibration", ["contextual", "batch", "auto"])
def test_obvious_sentiment_with_calibration(engine: Any, style: str, calibration: str) -> None:
    spec = ClassifierSpec(labels=SENTIMENT, calibration=calibration, prompt_style=style)
    classifier = Classifier(engine, spec)
    assert classifier.prompt_style == style
    if calibration == "batch":
        preds = classifier.classify_many([POSITIVE, NEGATIVE])
    else:
        preds = [classifier.classify(POSITIVE), classifier.classify(NEGATIVE)]
    assert [p.label for p in preds] == ["positive", "negative"]
    for pred in preds:
        assert pred.calibration == ("batch" if calibration == "batch" else "contextual")
        assert sum(pred.probs.values()) == pytest.approx(1.0)
        assert sum(pred.raw_probs.values()) == pytest.approx(1.0)
        assert all(0.0 <= v <= 1.0 for v in pred.probs.values())
        assert pred.confidence == pred.probs[pred.label] > 0.5
        assert pred.labels == (pred.label,)


def test_auto_prompt_style_follows_the_chat_template(engine: Any) -> None:
    classifier = Classifier(engine, ClassifierSpec(labels=SENTIMENT))
    assert engine.has_chat_template()
    assert classifier.prompt_style == "chat"


def test_multi_token_labels(engine: Any) -> None:
    spec = ClassifierSpec(labels=(Label("sports"), Label("interest rates"), Label("food")))
    classifier = Classifier(engine, spec)
    assert len(engine.tokenize_piece("interest rates")) > 1
    got = {
        text: classifier.classify(text).label
        for text in (
            "The central bank raised interest rates by half a point.",
            "I cooked pasta with tomato sauce for dinner.",
        )
    }
    assert got == {
        "The central bank raised interest rates by half a point.": "interest rates",
        "I cooked pasta with tomato sauce for dinner.": "food",
    }


def test_few_shot_prefix_is_decoded_once_and_reused(engine: Any) -> None:
    spec = ClassifierSpec(labels=SENTIMENT, examples=FEW_SHOT)
    classifier = Classifier(engine, spec)
    prefix = classifier.prefix_tokens()
    assert prefix > 300
    first = classifier.classify(MORE_TEXTS[2])
    assert first.label == "positive"
    for text, label in ((MORE_TEXTS[3], "negative"), (MORE_TEXTS[4], "positive")):
        engine.reset_perf()
        pred = classifier.classify(text)
        counts = engine.perf_counts()
        evaluated = counts["n_p_eval"] + counts["n_eval"]
        # llama.cpp itself processed only this text, the template tokens after it and
        # the label tokens: a few dozen, against hundreds in the prefix.
        assert evaluated <= engine.count_tokens(text) + 16, counts
        assert evaluated < prefix / 10
        assert pred.label == label


def test_chat_still_reuses_its_cache_after_classification(engine: Any) -> None:
    system = {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    greedy = SamplingParams(temperature=0, max_tokens=24)
    history = [system, {"role": "user", "content": "What is the capital of France?"}]
    Classifier(engine, ClassifierSpec(labels=SENTIMENT)).classify(POSITIVE)
    first = engine.stream_chat(history, greedy)
    assert first.finish_reason in ("stop", "length") and first.text.strip()
    Classifier(engine, ClassifierSpec(labels=SENTIMENT, examples=FEW_SHOT[:2])).classify(
        NEGATIVE
    )
    # After classifying, the cache holds the classifier's prompt: the chat prompt is
    # processed again, all but what it shares with the classifier's prompt. (Its greedy
    # reply may differ from the first in its words: a different batch shape rounds
    # differently on some CPUs.)
    again = engine.stream_chat(history, greedy)
    assert again.finish_reason in ("stop", "length") and again.text.strip()
    assert again.prompt_tokens == first.prompt_tokens
    assert again.prompt_tokens_evaluated > again.prompt_tokens // 2
    history += [{"role": "assistant", "content": again.text},
                {"role": "user", "content": "And of Germany?"}]
    engine.reset_perf()
    follow = engine.stream_chat(history, greedy)
    assert follow.prompt_tokens_evaluated < 20
    assert engine.perf_counts()["n_p_eval"] <= follow.prompt_tokens_evaluated + 1


def test_batch_calibration_divides_out_the_batch_mean(engine: Any) -> None:
    spec = ClassifierSpec(labels=SENTIMENT, calibration="batch", prompt_style="completion")
    live: dict[int, Prediction] = {}
    progress: list[tuple[int, int]] = []
    preds = Classifier(engine, spec).classify_many(
        MORE_TEXTS[:4], on_result=live.__setitem__,
        on_progress=lambda d, t: progress.append((d, t)),
    )
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert sorted(live) == [0, 1, 2, 3]
    assert all(p.calibration == "contextual" for p in live.values())
    assert all(p.calibration == "batch" for p in preds)
    mean = mean_distribution([p.raw_probs for p in preds])
    for pred in preds:
        assert pred.probs == pytest.approx(calibrate(pred.raw_probs, mean), abs=1e-12)
        # the calibrated distribution is the raw one divided by the mean, renormalised
        ratio = {k: pred.raw_probs[k] / mean[k] for k in mean}
        assert pred.probs["positive"] == pytest.approx(
            ratio["positive"] / sum(ratio.values())
        )
    assert [p.label for p in preds] == ["positive", "negative", "positive", "negative"]


def test_auto_calibration_is_batch_for_many_texts(engine: Any) -> None:
    classifier = Classifier(engine, ClassifierSpec(labels=SENTIMENT))
    assert classifier.calibration_for(AUTO_BATCH_MIN) == "batch"
    assert classifier.calibration_for(AUTO_BATCH_MIN - 1) == "contextual"
    preds = classifier.classify_many(MORE_TEXTS[:AUTO_BATCH_MIN])
    assert {p.calibration for p in preds} == {"batch"}
    few = classifier.classify_many(MORE_TEXTS[:3])
    assert {p.calibration for p in few} == {"contextual"}
    none = Classifier(engine, ClassifierSpec(labels=SENTIMENT, calibration="none"))
    pred = none.classify(POSITIVE)
    assert pred.calibration == "none" and pred.probs == pred.raw_probs


def test_cancel_mid_batch_returns_the_predictions_so_far(engine: Any) -> None:
    cancel = threading.Event()

    def on_result(i: int, _pred: Prediction) -> None:
        if i == 1:
            cancel.set()

    preds = Classifier(engine, ClassifierSpec(labels=SENTIMENT)).classify_many(
        MORE_TEXTS, cancel=cancel, on_result=on_result
    )
    assert len(preds) == 2
    assert all(p.calibration == "contextual" for p in preds)
    # Cancelling one text raises; the engine stays usable.
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        Classifier(engine, ClassifierSpec(labels=SENTIMENT, calibration="none")).classify(
            POSITIVE, cancel=cancel
        )
    assert Classifier(engine, ClassifierSpec(labels=SENTIMENT)).classify(POSITIVE).label == (
        "positive"
    )


def test_empty_text_is_a_clear_message_without_a_model_call() -> None:
    unloaded = LlamaEngine()  # any model call would raise ModelNotLoadedError
    classifier = Classifier(unloaded, ClassifierSpec(labels=SENTIMENT))
    pred = classifier.classify("   \n")
    assert pred.error == EMPTY_TEXT == "The text is empty."
    assert pred.label is None and pred.probs == {} and pred.labels == ()


def test_empty_texts_in_a_batch_keep_their_place(engine: Any) -> None:
    preds = Classifier(engine, ClassifierSpec(labels=SENTIMENT)).classify_many(
        [POSITIVE, "", NEGATIVE]
    )
    assert [p.label for p in preds] == ["positive", None, "negative"]
    assert preds[1].error == "The text is empty."


def test_long_text_is_truncated_with_a_note(model_path: Path) -> None:
    small = LlamaEngine()
    small.load(model_path, LoadParams(max_context=512, n_threads=1))
    try:
        long_text = NEGATIVE + " " + " ".join(["The plot was slow and the acting was bad."] * 120)
        assert small.count_tokens(long_text) > 1000
        classifier = Classifier(small, ClassifierSpec(labels=SENTIMENT))
        pred = classifier.classify(long_text)
        assert pred.truncated is True
        assert any("cut to its first" in n and "512-token context" in n for n in pred.notes)
        assert pred.label in ("positive", "negative")
        assert sum(pred.probs.values()) == pytest.approx(1.0)
        short = classifier.classify(NEGATIVE)
        assert short.truncated is False and short.notes == []
        with pytest.raises(ContextOverflowError, match="examples need"):
            Classifier(small, ClassifierSpec(labels=SENTIMENT, examples=FEW_SHOT)).classify(
                POSITIVE
            )
    finally:
        small.unload()


def test_multi_label_scores_each_label_yes_or_no(engine: Any) -> None:
    spec = ClassifierSpec(
        labels=(Label("sports"), Label("interest rates"), Label("food")),
        multi_label=True, threshold=0.3,
    )
    pred = Classifier(engine, spec).classify("After the match the players ate pizza together.")
    assert set(pred.probs) == {"sports", "interest rates", "food"}
    assert all(0.0 < p < 1.0 for p in pred.probs.values())
    assert all(0.0 < p < 1.0 for p in pred.raw_probs.values())
    assert pred.labels == tuple(sorted(
        (k for k, v in pred.probs.items() if v >= 0.3), key=lambda k: -pred.probs[k]
    ))
    assert pred.label == (pred.labels[0] if pred.labels else None)
    assert pred.calibration == "contextual"


def test_explanation_comes_after_the_label_and_does_not_change_it(engine: Any) -> None:
    plain = Classifier(engine, ClassifierSpec(labels=SENTIMENT)).classify(NEGATIVE)
    explained = Classifier(engine, ClassifierSpec(labels=SENTIMENT, explain=True)).classify(
        NEGATIVE
    )
    assert explained.label == plain.label == "negative"
    assert explained.probs == pytest.approx(plain.probs, abs=SAME_PROB)
    assert explained.explanation
    assert plain.explanation is None
    completion = Classifier(
        engine, ClassifierSpec(labels=SENTIMENT, explain=True, prompt_style="completion")
    ).classify(POSITIVE)
    assert completion.label == "positive"
    assert completion.explanation and "\n" not in completion.explanation


def test_engine_client_classify_job(model_path: Path, qtbot: Any) -> None:
    from slmdesk.ui.engine_thread import EngineClient

    eng = LlamaEngine()
    eng.load(model_path, LoadParams(max_context=1024, n_threads=1))
    client = EngineClient(eng)
    try:
        seen: list[tuple[int, Prediction]] = []
        progress: list[tuple[int, int]] = []
        job = client.classify(ClassifierSpec(labels=SENTIMENT), [POSITIVE, "", NEGATIVE])
        # Its reports are queued for the GUI thread: connecting now misses none.
        job.classified.connect(lambda i, pred: seen.append((i, pred)))
        job.progressed.connect(lambda d, t: progress.append((d, t)))
        with qtbot.waitSignal(job.finished, timeout=60_000) as blocker:
            pass
        preds, cancelled = blocker.args
        assert cancelled is False and job.done
        assert [p.label for p in preds] == ["positive", None, "negative"]
        assert [i for i, _ in seen] == [0, 1, 2]
        assert progress[-1] == (3, 3)
        too_long = client.classify(
            ClassifierSpec(labels=SENTIMENT, examples=FEW_SHOT * 8), [POSITIVE])
        with qtbot.waitSignal(too_long.failed, timeout=60_000) as failed:
            pass
        assert "examples need" in failed.args[0]
    finally:
        client.shutdown()
