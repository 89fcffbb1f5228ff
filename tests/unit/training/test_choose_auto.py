"""auto's choice between the best head and the best other candidate (methods.choose_auto)."""

from __future__ import annotations

from slmdesk.classify.evaluate import evaluate
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.training.methods import AUTO_SWITCH_P, Candidate, choose_auto

LABELS = ["pos", "neg"]
SPEC = ClassifierSpec(labels=(Label("pos"), Label("neg")))


def _candidate(method: str, name: str, gold: list[str], right: set[int]) -> Candidate:
    """A candidate that labels the texts at ``right`` correctly and the others wrongly."""
    flip = {"pos": "neg", "neg": "pos"}
    predicted = [g if i in right else flip[g] for i, g in enumerate(gold)]
    return Candidate(method=method, name=name, spec=SPEC,
                     validation=evaluate(gold, predicted, LABELS), predictions=predicted)


def test_a_small_validation_lead_keeps_the_head_and_says_so() -> None:
    # 16 texts (as the bench's tweets and 20ng runs): 3 texts only the prompt gets right, 1
    # only the head: McNemar p = 0.625.
    gold = ["pos", "neg"] * 8
    head = _candidate("head", "head on the hidden state (last token)", gold,
                      set(range(16)) - {0, 1, 2})
    prompt = _candidate("prompt", "prompt: default instructions, batch calibration", gold,
                        set(range(16)) - {3})
    assert prompt.validation.macro_f1 > head.validation.macro_f1
    choice = choose_auto([prompt, head], gold)
    assert choice.chosen is head
    assert "led on validation" in choice.note and "p = 0.62" in choice.note


def test_a_lead_beyond_chance_switches_to_the_other_candidate() -> None:
    # 40 texts: the prompt gets 36 right, the head 20, every head-right text also prompt-right:
    # 16 discordant texts all for the prompt, p = 2 * 0.5**16.
    gold = ["pos", "neg"] * 20
    head = _candidate("head", "head", gold, set(range(20)))
    prompt = _candidate("prompt", "prompt", gold, set(range(36)))
    choice = choose_auto([head, prompt], gold)
    assert 2 * 0.5**16 < AUTO_SWITCH_P
    assert choice.chosen is prompt and choice.note == ""


def test_the_head_wins_outright_and_without_a_head_the_best_is_chosen() -> None:
    gold = ["pos", "neg"] * 10
    head = _candidate("head", "head", gold, set(range(18)))
    zero = _candidate("zero_shot", "zero-shot", gold, set(range(10)))
    prompt = _candidate("prompt", "prompt", gold, set(range(14)))
    assert choose_auto([zero, prompt, head], gold).chosen is head
    assert choose_auto([zero, prompt], gold).chosen is prompt
    assert choose_auto([head], gold).chosen is head


def test_a_significant_difference_the_other_way_keeps_the_head() -> None:
    # 90 "pos" and 10 "neg" texts. The head says "pos" to all (90 right, macro-F1 0.474); the
    # prompt gets the 10 "neg" and 60 "pos" right (70 right, macro-F1 0.600). Its macro-F1
    # leads, and McNemar is significant (30 texts only the head gets right, 10 only the
    # prompt: p = 0.002), but in the head's favour: the head stays.
    gold = ["pos"] * 90 + ["neg"] * 10
    head = Candidate(method="head", name="head", spec=SPEC,
                     validation=evaluate(gold, ["pos"] * 100, LABELS), predictions=["pos"] * 100)
    predicted = ["pos"] * 60 + ["neg"] * 40
    prompt = Candidate(method="prompt", name="prompt", spec=SPEC,
                       validation=evaluate(gold, predicted, LABELS), predictions=predicted)
    assert prompt.validation.macro_f1 > head.validation.macro_f1 + 0.1
    choice = choose_auto([prompt, head], gold)
    assert choice.chosen is head
    assert "the head got more of the 100 texts right (30 only by the head, 10 only" in choice.note


def test_the_threshold_is_divided_among_the_other_candidates() -> None:
    # 20 texts: 8 only the prompt gets right, 1 only the head (p = 0.039). Alone, the prompt
    # beats 0.05; as the best of two other candidates it must beat 0.025, and does not.
    gold = ["pos", "neg"] * 10
    head = _candidate("head", "head", gold, set(range(10)))
    prompt = _candidate("prompt", "prompt", gold, set(range(1, 18)))
    zero = _candidate("zero_shot", "zero-shot", gold, set(range(5)))
    assert choose_auto([prompt, head], gold).chosen is prompt
    choice = choose_auto([zero, prompt, head], gold)
    assert choice.chosen is head and "p = 0.039, the best of 2 other candidates" in choice.note
