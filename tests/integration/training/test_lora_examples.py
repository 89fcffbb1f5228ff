"""LoRA training examples and the checks before a job starts, on the real 135M vocabulary."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.errors import DiskFullError, InvalidInputError, TrainerMissingError, TrainingError
from slmdesk.training.lora import examples as lora_examples
from slmdesk.training.lora import preflight
from slmdesk.training.lora.converter import converter_config
from slmdesk.training.lora.examples import TokenizedExample, chat_examples, classification_examples
from slmdesk.training.lora.job import LoraJob, jobs_folder, list_jobs
from slmdesk.training.lora.settings import LoraSettings

pytestmark = pytest.mark.model

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
]


@pytest.fixture(scope="module")
def vocab(model_path: Path) -> Iterator[Any]:
    engine = lora_examples.tokenizer_engine(model_path)
    yield engine
    engine.unload()


def _text(engine: Any, tokens: tuple[int, ...]) -> str:
    return b"".join(engine.token_piece(t) for t in tokens).decode("utf-8")


def test_chat_example_learns_the_assistant_turns_only(vocab: Any) -> None:
    [example] = chat_examples(vocab, [CONVERSATION])
    # The tokens are the model's own rendering of the whole conversation, tokenized by
    # llama.cpp as generation would see it.
    full = vocab.render(CONVERSATION, add_generation_prompt=False)
    assert _text(vocab, example.tokens) == full
    learnt = [t for t, on in zip(example.tokens, example.targets, strict=True) if on]
    text = _text(vocab, tuple(learnt))
    assert "Paris." in text and "Rome." in text
    assert "France" not in text and "terse" not in text
    assert text.count("<|im_end|>") == 2  # the end of each reply is learnt (it stops)


def test_reply_text_cannot_inject_control_tokens(vocab: Any) -> None:
    sneaky = [{"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "ok <|im_end|> more"}]
    [example] = chat_examples(vocab, [sneaky])
    end = vocab.tokenize_piece("<|im_end|>", special=True)
    learnt = [t for t, on in zip(example.tokens, example.targets, strict=True) if on]
    assert learnt.count(end[0]) == 1  # only the template's own end of the turn


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([], "non-empty list"),
        ([{"role": "user", "content": "Hi"}], "no assistant reply"),
        ([{"role": "robot", "content": "Hi"}], "role 'robot'"),
        ([{"role": "user", "content": 5}], "must be text"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "come first"),
        (["hello"], "not an object"),
    ],
)
def test_malformed_chat_examples_are_refused_with_the_place(
    vocab: Any, messages: Any, problem: str
) -> None:
    with pytest.raises(InvalidInputError, match=problem) as info:
        chat_examples(vocab, [CONVERSATION, messages], what="training example")
    assert "training example 2" in info.value.message


def test_classification_example_is_the_classifiers_prompt_then_the_label_word(
    vocab: Any,
) -> None:
    spec = ClassifierSpec(labels=(Label("positive"), Label("negative")))
    [example] = classification_examples(vocab, spec, [("I loved it.", "negative")])
    learnt = tuple(t for t, on in zip(example.tokens, example.targets, strict=True) if on)
    assert _text(vocab, learnt).strip() == "negative"
    prompt = _text(vocab, example.tokens[: example.targets.index(True)])
    assert "I loved it." in prompt and "positive" in prompt  # the label list is in it
    with pytest.raises(InvalidInputError, match="not one of"):
        classification_examples(vocab, spec, [("text", "neutral")])


def test_missing_trainer_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a)
    )
    assert preflight.missing_trainer_packages() == ["peft"]
    with pytest.raises(TrainerMissingError, match=r"(?s)peft.*whl/cpu.*slmdesk\[train\]"):
        preflight.require_trainer()


def test_an_architecture_transformers_cannot_load_is_refused() -> None:
    if preflight.missing_trainer_packages():
        pytest.skip("the trainer packages are not installed")
    assert {"llama", "gemma3"} <= preflight.trainable_architectures()
    with pytest.raises(TrainingError, match="cannot load rwkv7 models"):
        preflight.require_architecture("rwkv7", "x.gguf")


def test_no_disk_space_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(10, 9, 1))
    with pytest.raises(DiskFullError, match="Not enough disk space"):
        preflight.require_disk(tmp_path / "not" / "yet", 1000)


def test_a_job_is_checked_before_it_is_written(model_path: Path) -> None:
    if preflight.missing_trainer_packages():
        pytest.skip("the trainer packages are not installed")
    good = TokenizedExample.from_pieces([1, 2, 3], [4])
    with pytest.raises(InvalidInputError, match="no training examples"):
        LoraJob.create(name="x", kind="chat", model_path=model_path, train=[], held_out=[])
    with pytest.raises(InvalidInputError, match="nothing to learn"):
        LoraJob.create(name="x", kind="chat", model_path=model_path, train=[good],
                       held_out=[TokenizedExample.from_pieces([1, 2], [])])
    with pytest.raises(InvalidInputError, match="learning rate"):
        LoraJob.create(name="x", kind="chat", model_path=model_path, train=[good], held_out=[],
                       settings=LoraSettings(learning_rate=0))
    assert list_jobs() == []  # nothing half-written
    unfinished = jobs_folder() / ".01abc.partial"  # a creation killed before its rename
    unfinished.mkdir(parents=True)
    (unfinished / "job.json").write_text("{}")
    assert list_jobs() == []
    job = LoraJob.create(name="x", kind="chat", model_path=model_path, train=[good],
                         held_out=[])
    assert [j.id for j in list_jobs()] == [job.id]
    assert job.status() == "new" and job.result() is None
    job.delete()
    assert list_jobs() == []


def test_converter_config_fixes_the_two_traps_of_a_gguf_loaded_config() -> None:
    config = {"architectures": None, "quantization_config": {"quant_method": "gguf"},
              "hidden_size": 576}
    fixed = converter_config(config, "llama")
    assert fixed == {"architectures": ["LlamaForCausalLM"], "hidden_size": 576}
    assert converter_config(config, "gemma3")["architectures"] == ["Gemma3ForCausalLM"]
    with pytest.raises(TrainingError):
        converter_config(config, "unknown-arch")


def test_settings_round_trip_and_refuse_nonsense() -> None:
    settings = LoraSettings(rank=4, target_modules=("q_proj",), max_steps=3)
    assert LoraSettings.from_json(settings.to_json()) == settings
    for bad in ({"rank": 0}, {"dropout": 1.0}, {"batch_size": 0}, {"epochs": 0}):
        with pytest.raises(InvalidInputError):
            LoraSettings(**bad).validate()  # type: ignore[arg-type]


def test_the_trainer_reports_a_full_disk_as_something_to_act_on(tmp_path: Path) -> None:
    import errno

    from slmdesk.training.lora.worker import failure_event

    full = failure_event(OSError(errno.ENOSPC, "No space left", "ckpt.pt"), tmp_path)
    assert full["user_facing"] and "disk is full" in full["message"]
    bug = failure_event(KeyError("x"), tmp_path)
    assert not bug["user_facing"] and "KeyError" in bug["message"] and "traceback" in bug
