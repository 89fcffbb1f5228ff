"""`slmdesk train` end to end in real subprocesses: a head on the zorp/blick set (zero-shot
near chance), a tiny LoRA classifier and chat fine-tune, cancel and resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from slmdesk.startup import open_core
from slmdesk.store.datasets import DatasetRepository, NewExample
from slmdesk.training.lora import missing_trainer_packages
from tests.cli.test_cli import Cli, _decoy_env, assert_one_line_error
from tests.training_data import make_dataset, texts

pytestmark = [pytest.mark.model]

# Per label: train, validation, test (as tests/integration/training/test_methods.py: the
# head gets the 28 test texts right where zero-shot is near chance, p ~ 1e-8).
SPLITS = {"train": 12, "validation": 5, "test": 14}
# The LoRA tests' tiny settings (tests/integration/training/test_lora_training.py).
TINY_LORA = ("--lora-max-steps", "6", "--lora-batch-size", "4", "--lora-rank", "8",
             "--lora-learning-rate", "1e-3", "--lora-checkpoint-every", "3", "--threads", "2")

# The LoRA classifier's settings: the fewest steps that learn the zorp/blick property.
# Measured through `slmdesk train` (batch 4, rank 8, lr 1e-3, 2 threads, 24 train texts):
#   steps  test accuracy  validation  held-out label loss  (zero-shot test 0.036)
#     6        0.500         0.5           0.439            one label for every text
#     9        0.500         0.5           0.886
#    12        0.786         0.8           0.228
#    15        1.000         1.0           0.111            <- these settings
#    18        1.000         1.0           0.017
# (That sweep ran before the trainer seeded LoRA's initial weights after loading the model;
# since then 15 steps measure 1.000 and 0.082.) A run is 160-290 s on a busy 2-core machine,
# about 100 s of it loading, converting and scoring, the same for any number of steps.
LORA_CLASSIFIER = ("--epochs", "3", "--lora-max-steps", "15", "--lora-batch-size", "4",
                   "--lora-rank", "8", "--lora-learning-rate", "1e-3",
                   "--lora-checkpoint-every", "3", "--threads", "2")

LORA_TIMEOUT = 900


def _home_with(cli: Cli, build: Any) -> None:
    """Build data sets in ``cli``'s home (its database), then close it."""
    assert cli.home is not None
    core = open_core(str(cli.home), register_starter=False)
    try:
        build(core.db)
    finally:
        core.db.close()


def _chat_set(db: Any, name: str = "zorp-chat", count: int = 24) -> None:
    repo = DatasetRepository(db)
    ds = repo.create(name, kind="chat")
    rows = []
    for i in range(count):
        a, b = i % 7 + 2, i % 5 + 3
        rows.append(NewExample(messages=[
            {"role": "user", "content": f"What is {a} plus {b}? Answer in the secret style."},
            {"role": "assistant", "content": f"Zorp! {a} plus {b} makes {a + b}. Zorp!"}]))
    repo.add_examples(ds, rows)


def _classifier(cli: Cli, name: str) -> dict[str, Any]:
    [saved] = [c for c in cli.json("classifiers", "list", "--json") if c["name"] == name]
    assert isinstance(saved, dict)
    return saved


def _run_long(cli: Cli, *args: str) -> str:
    """A LoRA run's stdout: minutes on a busy 2-core machine (a first run also dequantizes
    the base model), past test_cli's per-command timeout."""
    proc = subprocess.run(cli.command(*args), capture_output=True, text=True, env=cli.env,
                          cwd=cli.cwd, timeout=LORA_TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Cli:
    """One home for the module: the zorp/blick set with splits, a chat set, and a set with
    too few examples per label."""
    base = tmp_path_factory.mktemp("train-cli")
    (base / "decoy").mkdir()
    (base / "work").mkdir()
    cli = Cli(home=base / "home", env=_decoy_env(base / "decoy"), cwd=base / "work")
    cli.env["SLMDESK_STARTER_MODEL"] = str(model_path)
    _home_with(cli, lambda db: (make_dataset(db, splits=SPLITS), _chat_set(db), _few_set(db)))
    return cli


@pytest.fixture(scope="module")
def head_events(home: Cli) -> list[dict[str, Any]]:
    proc = home.run("train", "zb", "--data", "zorp-blick", "--method", "head", "--events",
                    "--threads", "2")
    return _events(proc.stdout)


def test_head_training_beats_zero_shot_with_mcnemar(head_events: list[dict[str, Any]]) -> None:
    last = head_events[-1]
    assert last["event"] == "finished"
    report = last["report"]
    assert (report["name"], report["kind"], report["method"]) == ("zb", "classifier", "head")
    assert "head" in report["methods"] and report["adapter"] is None and report["job"] is None
    assert report["test"]["accuracy"] >= report["zero_shot_test"]["accuracy"] + 0.25
    assert report["mcnemar"]["p_value"] < 0.05


def test_events_come_in_order(head_events: list[dict[str, Any]]) -> None:
    kinds = [e["event"] for e in head_events]
    stages = [e["stage"] for e in head_events if e["event"] == "stage"]
    assert stages[:2] == ["checking", "loading"] and stages[-1] == "saving"
    assert "testing" in stages and "head" in stages
    first_evaluated = kinds.index("evaluated")
    assert kinds.index("stage") < first_evaluated < len(kinds) - 1
    assert kinds[-1] == "finished" and kinds.count("finished") == 1
    splits = {(e["method"], e["split"]) for e in head_events if e["event"] == "evaluated"}
    assert {("head", "validation"), ("head", "test"), ("zero_shot", "test")} <= splits
    assert any(e["event"] == "progress" and e["total"] > 0 for e in head_events)


def test_classify_with_the_trained_classifier_uses_its_head(
        home: Cli, head_events: list[dict[str, Any]], tmp_path: Path) -> None:
    saved = _classifier(home, "zb")
    assert saved["spec"]["method"] == "head" and saved["spec"]["trained"]
    rows = texts(31)[-10:]
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("".join(json.dumps({"text": t, "label": g}) + "\n" for t, g in rows),
                         encoding="utf-8")
    report = home.json("classify", "--classifier", "zb", "--eval", str(eval_file), "--json",
                       "--threads", "2")
    assert report["accuracy"] >= 0.8  # measured 1.0; zero-shot is near chance here


def test_the_evaluation_history_has_base_and_trained_runs(
        home: Cli, head_events: list[dict[str, Any]]) -> None:
    runs = home.json("data", "evals", "zorp-blick", "--json")
    roles = {r["report"].get("role"): r for r in runs if r["report"].get("training") == "zb"}
    assert set(roles) == {"zero_shot", "trained"}
    trained, base = roles["trained"], roles["zero_shot"]
    assert trained["n"] == base["n"] == 28 and trained["split"] == base["split"] == "test"
    assert trained["report"]["mcnemar"]["p_value"] < 0.05
    assert set(trained["report"]["per_label"]) == {"zorp", "blick"}


@pytest.mark.parametrize(("args", "needles"), [
    (("train", "x", "--data", "zorp-chat", "--method", "head"), ("chat examples", "LoRA")),
    (("train", "x", "--data", "no-such-set"), ("no-such-set",)),
    (("train", "x", "--data", "few"), ("at least",)),
])
def test_bad_input_is_one_clear_error(home: Cli, args: tuple[str, ...],
                                      needles: tuple[str, ...]) -> None:
    proc = home.run(*args, check=False)
    assert_one_line_error(proc, *needles)
    assert not [c for c in home.json("classifiers", "list", "--json") if c["name"] == "x"]


def test_lora_without_a_trainer_is_one_clear_error(home: Cli, tmp_path: Path) -> None:
    """No trainer where SLMDESK_TRAINER points (as a packaged app without its add-on):
    --method lora says so before the model loads, and nothing is saved."""
    no_addon = Cli(home=home.home, env={**home.env, "SLMDESK_TRAINER": str(tmp_path)},
                   cwd=home.cwd)
    proc = no_addon.run("train", "x", "--data", "zorp-blick", "--method", "lora",
                        check=False)
    assert_one_line_error(proc, "SLMDESK_TRAINER", str(tmp_path), "no trainer add-on")
    assert not [c for c in home.json("classifiers", "list", "--json") if c["name"] == "x"]


def _few_set(db: Any) -> None:
    repo = DatasetRepository(db)
    ds = repo.create("few", kind="labels", labels=["zorp", "blick"])
    repo.add_examples(ds, [NewExample(text=t, label=g) for t, g in texts(3)])


# -- LoRA (the trainer packages are part of ./dev's install: missing them fails) -------------


@pytest.fixture(scope="module")
def trainer_installed() -> None:
    missing = missing_trainer_packages()
    if missing and os.environ.get("CI"):
        pytest.fail(f"the trainer packages are missing under CI: {missing}")
    if missing:
        pytest.skip(f"the trainer packages are not installed: {missing}")


@pytest.fixture(scope="module")
def lora_classifier(home: Cli, trainer_installed: None) -> dict[str, Any]:
    """`slmdesk train zb-lora --method lora` on the zorp/blick set, uninterrupted: its report."""
    report = json.loads(_run_long(home, "train", "zb-lora", "--data", "zorp-blick",
                                  "--method", "lora", "--json", *LORA_CLASSIFIER))
    assert isinstance(report, dict)
    return report


@pytest.mark.slow
def test_the_lora_classifier_beats_zero_shot_with_mcnemar(
        lora_classifier: dict[str, Any]) -> None:
    report = lora_classifier
    test, zero = report["test"], report["zero_shot_test"]
    assert report["counts"] == {"train": 24, "validation": 10, "test": 28}
    # Measured (15 steps): LoRA 1.000 on the 28 test texts, zero-shot 0.036 (batch
    # calibration turns its fixed preference into a wrong one); McNemar 27 texts only LoRA
    # gets right, none the other way, p = 1.5e-8. 24 of 28 would still be far from chance
    # (one-sided binomial p = 1.6e-4): LoRA learnt the property, not just the label words.
    assert test["accuracy"] >= 0.85 and test["macro_f1"] >= 0.85
    assert zero["accuracy"] <= 0.6  # zero-shot cannot know what zorp and blick mean
    assert report["mcnemar"]["p_value"] < 0.05
    assert report["mcnemar"]["only_first_right"] > report["mcnemar"]["only_second_right"]
    lora = report["methods"]["lora"]
    assert lora["steps"] == 15
    # Held-out label-token loss 1.576 before, 0.082 after.
    assert lora["held_out_loss_after"] < 0.5 * lora["held_out_loss_before"]


@pytest.mark.slow
def test_a_tiny_lora_classifier_is_registered_with_its_adapter(
        home: Cli, lora_classifier: dict[str, Any]) -> None:
    report = lora_classifier
    assert (report["kind"], report["method"]) == ("classifier", "lora")
    assert Path(report["adapter"]).is_file() and report["job"]
    saved = _classifier(home, "zb-lora")
    adapter = saved["spec"]["training"]["adapter"]
    assert adapter["path"] == report["adapter"] and adapter["scale"] == 1.0
    models = {m["id"]: m for m in home.json("models", "list", "--json")}
    fine_tune = models[saved["model_id"]]
    assert fine_tune["adapter_path"] == report["adapter"] and fine_tune["base_model_id"]
    out = home.json("classify", "--classifier", "zb-lora", "We ate soup for lunch.", "--json",
                    "--threads", "2")
    assert out["label"] in ("zorp", "blick")


@pytest.mark.slow
def test_cancel_keeps_the_checkpoint_and_registers_nothing_then_resume(
        home: Cli, trainer_installed: None) -> None:
    cmd = home.command("train", "zorp-bot", "--data", "zorp-chat", "--events", *TINY_LORA)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=home.env, cwd=home.cwd)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "checkpoint":
            proc.send_signal(signal.SIGINT)
    assert proc.wait(LORA_TIMEOUT) == 130, proc.stderr.read() if proc.stderr else ""
    assert seen[-1]["event"] == "cancelled" and seen[-1]["job"]
    assert not [m for m in home.json("models", "list", "--json") if m["name"] == "zorp-bot"]
    resumed = _events(_run_long(home, "train", "zorp-bot", "--data", "zorp-chat", "--events",
                                "--resume", *TINY_LORA))
    assert any(e["event"] == "stage" and "resumed" in e["message"] for e in resumed)
    report = resumed[-1]["report"]
    assert (report["kind"], report["job"]) == ("model", seen[-1]["job"])
    loss = report["test"]
    assert loss["held_out_loss_after"] < loss["held_out_loss_before"]
    reply = home.json("chat", "-m", "zorp-bot", "--json", "--max-tokens", "16", "--threads",
                      "2", "What is 2 plus 3?")
    assert reply["text"].strip()  # properties only, never the words


def _kill_9_when(cli: Cli, args: tuple[str, ...], when: Any) -> list[dict[str, Any]]:
    """Run `slmdesk ARGS --events` until ``when(event)``, then SIGKILL it together with its
    trainer (its own process group: a crash or a reboot); the events seen."""
    proc = subprocess.Popen(cli.command(*args), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=cli.env, cwd=cli.cwd,
                            start_new_session=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if when(seen[-1]):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    assert proc.wait(LORA_TIMEOUT) == -signal.SIGKILL, seen[-1]
    proc.stdout.close()
    return seen


@pytest.mark.slow
def test_kill_9_mid_training_then_resume_gives_the_uninterrupted_result(
        home: Cli, lora_classifier: dict[str, Any]) -> None:
    """The classifier run of ``lora_classifier`` again, under another name: killed with
    SIGKILL after step 5 (last checkpoint: step 3), resumed, killed again while it tests the
    adapter (the trainer has finished), resumed again."""
    args = ("train", "zb-killed", "--data", "zorp-blick", "--method", "lora", "--events",
            *LORA_CLASSIFIER)
    first = _kill_9_when(home, args, lambda e: e["event"] == "progress" and e.get("step") == 5)
    [job] = {e["job"] for e in first if e["event"] == "checkpoint"}
    second = _kill_9_when(home, (*args, "--resume"), lambda e: e["event"] == "stage"
                          and "with the trained adapter" in e["message"])
    assert any(e["event"] == "stage" and e["message"] == "resumed from step 3" for e in second)
    steps = [e["step"] for e in second if e["event"] == "progress" and e.get("step")]
    assert steps == list(range(4, 16))
    assert not [c for c in home.json("classifiers", "list", "--json") if c["name"] == "zb-killed"]
    third = _events(_run_long(home, *args, "--resume"))
    assert not [e for e in third if e["event"] == "progress" and e.get("step")]  # no training
    assert any(e["event"] == "stage" and "had finished" in e["message"] for e in third)
    report, reference = third[-1]["report"], lora_classifier
    assert (report["job"], report["method"]) == (job, "lora")
    # The same initial weights, batches, optimiser moments and dropout draws from the
    # checkpoint on: measured, the resumed run's held-out loss equals the uninterrupted one's
    # to the last digit (0.08208344876766205 both; the uninterrupted run read the GGUF, the
    # resumed one the cached copy) and it classifies the test texts the same (1.000).
    lora, ref = report["methods"]["lora"], reference["methods"]["lora"]
    assert lora["steps"] == ref["steps"] == 15
    assert lora["held_out_loss_after"] == pytest.approx(ref["held_out_loss_after"], rel=1e-3)
    assert report["test"]["confusion"] == reference["test"]["confusion"]
    assert report["mcnemar"]["p_value"] < 0.05
    assert _classifier(home, "zb-killed")["spec"]["training"]["adapter"]["job"] == job


def test_fixtures_build_in_the_home(home: Cli) -> None:
    listed = {d["name"] for d in home.json("data", "list", "--json")}
    assert {"zorp-blick", "zorp-chat"} <= listed

