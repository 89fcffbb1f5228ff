"""Finding the trainer a LoRA job runs in: the add-on next to a packaged app (a fake add-on
folder with a stub executable), this Python's packages, and the messages when neither is
there."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from slmdesk import __version__
from slmdesk.errors import TrainerMissingError, TrainingError
from slmdesk.training.lora import addon, layout, preflight
from slmdesk.training.lora.job import LoraJob
from tests.trainer_addon import make_addon

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the stub is a shell script")

@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A packaged app's folder (where its executable is), unpacked under tmp_path/apps."""
    folder = tmp_path / "apps" / "slmdesk"
    folder.mkdir(parents=True)
    return folder


def test_the_addon_unpacked_beside_the_app_is_found(app_dir: Path) -> None:
    folder = make_addon(app_dir.parent / "slmdesk-trainer")
    trainer = addon.locate_trainer(app_dir, env={}, frozen=True)
    assert trainer.addon == folder
    assert trainer.argv(Path("/jobs/1")) == [str(folder / "slmdesk-trainer"), "/jobs/1"]
    assert trainer.architectures == {"llama", "gemma3"}
    assert str(folder) in trainer.describe()


def test_the_addon_inside_the_app_folder_comes_first(app_dir: Path) -> None:
    make_addon(app_dir.parent / "slmdesk-trainer")
    inside = make_addon(app_dir / "slmdesk-trainer")
    assert addon.locate_trainer(app_dir, env={}, frozen=True).addon == inside


def test_on_macos_the_addon_beside_the_app_bundle_is_found(tmp_path: Path) -> None:
    macos = tmp_path / "Applications" / "slmdesk.app" / "Contents" / "MacOS"
    assert tmp_path / "Applications" / "slmdesk-trainer" in addon.addon_folders(macos)


def test_a_half_unpacked_addon_is_not_used(app_dir: Path) -> None:
    folder = make_addon(app_dir.parent / "slmdesk-trainer")
    (folder / addon.MANIFEST).unlink()  # the executable came out of the archive, not yet this
    with pytest.raises(TrainerMissingError):
        addon.locate_trainer(app_dir, env={}, frozen=True)


def test_without_the_addon_the_packaged_app_says_how_to_get_it(app_dir: Path) -> None:
    with pytest.raises(TrainerMissingError) as caught:
        addon.locate_trainer(app_dir, env={}, frozen=True)
    message = caught.value.message
    assert addon.archive_name() in message
    assert f"slmdesk-trainer-{__version__}-" in message
    assert str(app_dir.parent / "slmdesk-trainer") in message  # where to unpack it
    assert "pip install 'slmdesk[train]'" in message  # the source install's way
    assert "prompt and head" in message  # what still works
    assert "\n" not in message  # one line: the CLI prints it as its one error line


def test_an_addon_for_another_version_is_refused(app_dir: Path) -> None:
    make_addon(app_dir.parent / "slmdesk-trainer", version="0.0.1")
    with pytest.raises(TrainerMissingError, match=r"is for slmdesk 0\.0\.1.*Replace it"):
        addon.locate_trainer(app_dir, env={}, frozen=True)


def test_the_environment_names_the_addon(tmp_path: Path, app_dir: Path) -> None:
    folder = make_addon(tmp_path / "elsewhere")
    trainer = addon.locate_trainer(app_dir, env={addon.ADDON_ENV: str(folder)}, frozen=False)
    assert trainer.addon == folder  # a source install uses it too when it is named
    with pytest.raises(TrainerMissingError, match=r"SLMDESK_TRAINER names .*holds no trainer"):
        addon.locate_trainer(app_dir, env={addon.ADDON_ENV: str(tmp_path)}, frozen=True)


def test_a_source_install_uses_this_python(app_dir: Path) -> None:
    if addon.missing_trainer_packages():
        pytest.skip("the trainer packages are not installed")
    trainer = addon.locate_trainer(app_dir, env={}, frozen=False)
    assert trainer.addon is None and trainer.architectures is None
    assert trainer.argv(Path("j")) == [sys.executable, "-m", addon.WORKER_MODULE, "j"]


def test_a_source_install_without_the_packages_says_how_to_install(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(TrainerMissingError, match=r"(?s)needs torch.*whl/cpu.*slmdesk\[train\]"):
        addon.locate_trainer(app_dir, env={}, frozen=False)


def test_the_architecture_check_uses_the_addons_list() -> None:
    trainer = addon.Trainer(command=("x",), addon=Path("x"), architectures=frozenset({"llama"}))
    preflight.require_architecture("llama", "m.gguf", trainer)
    with pytest.raises(TrainingError, match=r"cannot load gemma3 models.*It can load: llama"):
        preflight.require_architecture("gemma3", "m.gguf", trainer)


def test_a_job_runs_in_the_addons_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    folder = make_addon(tmp_path / "addon")
    monkeypatch.setenv(addon.ADDON_ENV, str(folder))
    job_folder = tmp_path / "job"
    job_folder.mkdir()
    (job_folder / layout.JOB).write_text(json.dumps({"name": "stub"}), encoding="utf-8")
    process = LoraJob(job_folder).start()
    events = list(process.events())
    assert process.wait() == 0
    assert [e["event"] for e in events] == ["loading", "finished"]
    assert process.outcome() == {"adapter": "stub.gguf", "steps": 1}
    assert (job_folder / "stub-argv.txt").read_text().split() == [str(job_folder)]


def test_the_packaged_app_gives_its_children_the_users_library_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"LD_LIBRARY_PATH": "/app/_internal", "LD_LIBRARY_PATH_ORIG": "/usr/local/lib",
           "HOME": "/home/u"}
    assert addon.child_environment(env) == env  # a source install: untouched
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert addon.child_environment(env) == {"LD_LIBRARY_PATH": "/usr/local/lib",
                                            "HOME": "/home/u"}
    assert addon.child_environment({"LD_LIBRARY_PATH": "/app/_internal"}) == {}
