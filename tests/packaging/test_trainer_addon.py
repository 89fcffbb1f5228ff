"""The trainer add-on (`./dev package --trainer`): its folder, its `--info`, and a tiny chat
fine-tune of the real 135M model run in its frozen process, adapter converted by its frozen
copy of llama.cpp's converter and applied by the engine.

Building it is opt-in: PyInstaller's analysis of torch and transformers took 400 to 855 s
(871 MB folder; the 211 MB .tar.xz 9 to 28 minutes more) on this repository's two-core machine
while other jobs shared it, against about a minute for the app's bundle on an idle one. Set
SLMDESK_TEST_TRAINER_ADDON=DIR to test an add-on already built in DIR (dist/slmdesk-trainer),
or SLMDESK_TEST_TRAINER_ADDON=build to build one here (packaging/build.sh --trainer
--no-archive).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slmdesk import __version__
from slmdesk.engine.llama_engine import LlamaEngine
from slmdesk.engine.params import LoadParams
from slmdesk.training.lora import LoraSettings, create_chat_job
from slmdesk.training.lora.addon import ADDON_ENV, MANIFEST, executable_name
from slmdesk.training.lora.converter import ARCHITECTURE_CLASSES

pytestmark = [pytest.mark.slow, pytest.mark.model]

ROOT = Path(__file__).resolve().parents[2]
OPT_IN = "SLMDESK_TEST_TRAINER_ADDON"
TINY = LoraSettings(rank=8, alpha=16, batch_size=4, learning_rate=1e-3, max_steps=4,
                    checkpoint_every=2, threads=2)


def _chat(i: int) -> list[dict[str, str]]:
    a, b = i % 7 + 2, i % 5 + 3
    return [{"role": "user", "content": f"What is {a} plus {b}? Answer in the secret style."},
            {"role": "assistant", "content": f"Zorp! {a} plus {b} makes {a + b}. Zorp!"}]


@pytest.fixture(scope="module")
def addon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get(OPT_IN)
    if not given:
        pytest.skip(f"building the trainer add-on takes about 15 minutes; set {OPT_IN}=build "
                    "(or to a built dist/slmdesk-trainer)")
    if given != "build":
        return Path(given)
    dist = tmp_path_factory.mktemp("dist")
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "packaging" / "build.sh"), "--trainer", "--dist", str(dist),
         "--no-archive"],
        cwd=ROOT, env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    print(f"trainer add-on built in {time.perf_counter() - started:.0f} s")
    return dist / "slmdesk-trainer"


def test_the_addon_is_the_trainer_and_nothing_of_the_app(addon: Path) -> None:
    assert os.access(addon / executable_name(), os.X_OK)
    manifest = json.loads((addon / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["slmdesk"] == __version__
    assert manifest["packages"]["torch"] and manifest["packages"]["peft"]
    assert {"llama", "gemma3"} <= set(manifest["architectures"]) <= set(ARCHITECTURE_CLASSES)
    internal = addon / "_internal"
    assert (internal / "torch").is_dir()
    for app_only in ("PySide6", "llama_cpp"):
        assert not (internal / app_only).exists(), app_only
    info = subprocess.run([str(addon / executable_name()), "--info"], capture_output=True,
                          text=True, timeout=300)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout) == manifest


def test_a_tiny_fine_tune_runs_in_the_addon(
    addon: Path, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ADDON_ENV, str(addon))
    monkeypatch.setenv("SLMDESK_HOME", str(tmp_path / "home"))
    job = create_chat_job("zorp", model_path, [_chat(i) for i in range(16)],
                          [_chat(i) for i in range(100, 104)], TINY, tmp_path / "cache")
    process = job.start()
    assert process.process.args[0] == str(addon / executable_name())  # not this Python
    events = list(process.events())
    assert process.wait() == 0, (events[-1:], job.folder)
    result = process.outcome()
    assert result["steps"] == 4
    assert result["held_out_loss_after"] < result["held_out_loss_before"]
    engine = LlamaEngine()
    try:
        engine.load(model_path, LoadParams(max_context=1024, n_threads=1))
        base = engine.fingerprint().mean_logprob
        info = engine.load(model_path, LoadParams(max_context=1024, n_threads=1,
                                                  lora_path=result["adapter"], lora_scale=1.0))
        assert info.adapter is not None and info.adapter.path == result["adapter"]
        assert engine.fingerprint().mean_logprob != base
    finally:
        engine.unload()
