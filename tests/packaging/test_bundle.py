"""The installable app: build the PyInstaller bundle and run it as a user would.

Builds packaging/slmdesk.spec once into a temporary folder (about a minute on two cores, plus
the first run of PyInstaller's analysis; the first build on a machine also compiles llama.cpp
with one CPU backend per instruction set, packaging/build-cpu-variants.sh, about 10 minutes,
then cached), as a GPU build would be built: with a CPU copy of llama.cpp's libraries as
llama_cpp/lib-cpu (here the installed CPU libraries). Then runs the frozen `slmdesk
--self-test` (also on a copy that keeps only the x86-64 baseline CPU backend), `--version`,
`doctor` (against the development run, and with a GPU runtime that cannot load), `models
catalog`, the GUI (offscreen, for a few seconds) and the desktop-entry installer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import pytest

from tests.conftest import require_model

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The installed (CPU) libraries stand in for a GPU build's CPU copy: the spec bundles them as
# llama_cpp/lib-cpu exactly as packaging/build-gpu.sh's compiled copy.
CPU_LIB = Path(llama_cpp.__file__).parent / "lib"
FALLBACK_NOTE = "The GPU build of llama.cpp could not start"
HARMLESS = ("This plugin does not support propagateSizeHints()",)
ERROR = re.compile(r"Traceback|Error|(?i:cannot|not found|failed to|segmentation fault)")


def _unexpected(output: str, *harmless: str) -> list[str]:
    return [
        line for line in output.splitlines()
        if ERROR.search(line) and not any(h in line for h in HARMLESS + harmless)
    ]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """A bare user's environment: fresh HOME and SLMDESK_HOME, nothing from the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "SLMDESK_", "QT_"))}
    (tmp / "home").mkdir(exist_ok=True)
    env.update(HOME=str(tmp / "home"), SLMDESK_HOME=str(tmp / "slmdesk"), **extra)
    return env


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_model()
    if importlib.util.find_spec("PyInstaller") is None:
        message = "PyInstaller is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    dist = tmp_path_factory.mktemp("dist")
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "packaging" / "build.sh"), "--dist", str(dist), "--no-archive"],
        cwd=ROOT, env={**os.environ, "PYTHON": sys.executable, "SLMDESK_CPU_LIB": str(CPU_LIB)},
        capture_output=True, text=True, timeout=2400,  # the first build compiles llama.cpp 14 times
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    print(f"bundle built in {time.perf_counter() - started:.0f} s")
    print("\n".join(line for line in proc.stdout.splitlines() if line.startswith("build: ")))
    yield dist / "slmdesk"


def _run(bundle: Path, *args: str, env: dict[str, str],
         timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bundle / "slmdesk"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _dev(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The development run of the same command: ``python -m slmdesk`` from the checkout."""
    return subprocess.run([sys.executable, "-m", "slmdesk", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _broken_gpu_libs(tmp: Path) -> Path:
    """A lib dir like a GPU build's on a machine without its runtime: dlopen fails."""
    d = tmp / "gpu-lib"
    d.mkdir()
    for name in ("libllama.so", "libggml.so", "libggml-base.so"):
        (d / name).write_bytes(b"\x7fELF not really a library: its runtime is missing")
    return d


def test_bundle_layout(bundle: Path) -> None:
    internal = bundle / "_internal"
    assert os.access(bundle / "slmdesk", os.X_OK)
    assert list((internal / "llama_cpp" / "lib").glob("libllama.so*"))
    # The CPU copy, filtered like llama_cpp/lib: the names ctypes opens and the SONAMEs.
    cpu_copy = sorted(p.name for p in (internal / "llama_cpp" / "lib-cpu").iterdir())
    assert "libllama.so" in cpu_copy and "libggml-cpu.so" in cpu_copy, cpu_copy
    assert not [n for n in cpu_copy if re.search(r"\.so\.\d+\.\d+", n)], cpu_copy
    if (ROOT / "resources" / "catalog.json").is_file():
        # Where slmdesk.catalog.curated.catalog_path() looks in a frozen app.
        assert (internal / "catalog.json").read_bytes() == (
            ROOT / "resources" / "catalog.json").read_bytes()
    assert (internal / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()
    assert (internal / "licences" / "SmolLM2-135M-Instruct.txt").is_file()
    assert (internal / "share" / "applications" / "slmdesk.desktop").is_file()
    # The same icon as the development tree's (and no Windows/macOS icon files on Linux).
    assert (internal / "share" / "icons" / "slmdesk.png").read_bytes() == (
        ROOT / "resources" / "icons" / "slmdesk.png").read_bytes()
    assert not list(internal.rglob("slmdesk.ic[on]*"))
    assert os.access(bundle / "install-desktop-entry.sh", os.X_OK)
    qt = internal / "PySide6"
    for used in ("QtCore", "QtGui", "QtWidgets"):
        assert list(qt.glob(f"{used}.*")), used
    for unused in ("QtNetwork", "QtQml", "QtQuick", "QtSql", "QtPdf", "QtMultimedia"):
        assert not list(qt.glob(f"{unused}.*")), unused
    assert (qt / "Qt" / "plugins" / "platforms" / "libqoffscreen.so").is_file()
    assert (qt / "Qt" / "plugins" / "platforms" / "libqxcb.so").is_file()
    # The trainer's libraries are the add-on's (./dev package --trainer), not the app's.
    for trainer_only in ("torch", "transformers", "peft", "accelerate", "safetensors", "gguf"):
        assert not (internal / trainer_only).exists(), trainer_only


def test_frozen_app_finds_the_trainer_addon_beside_itself(bundle: Path, tmp_path: Path) -> None:
    """Without the add-on, doctor says which archive to unpack where; with one unpacked
    beside the app (a stub: tests/packaging/test_trainer_addon.py runs the real one), LoRA
    jobs would run in it."""
    from slmdesk import __version__
    from tests.trainer_addon import make_addon

    beside = bundle.parent / "slmdesk-trainer"
    missing = json.loads(_run(bundle, "doctor", "--json", env=_env(tmp_path)).stdout)["trainer"]
    assert missing["available"] is False
    assert f"slmdesk-trainer-{__version__}-linux-" in missing["problem"]
    assert str(beside) in missing["problem"]
    make_addon(beside)
    try:
        found = json.loads(_run(bundle, "doctor", "--json", env=_env(tmp_path)).stdout)
    finally:
        shutil.rmtree(beside)
    assert found["trainer"]["available"] is True
    assert found["trainer"]["addon"] == str(beside)


def test_frozen_self_test(bundle: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(bundle / "slmdesk"), "--self-test"], env=_env(tmp_path),
        capture_output=True, text=True, timeout=180,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "self-test passed" in proc.stdout, out
    for name in ("backend", "code highlighting", "starter model", "generation",
                 "fingerprint", "classification"):
        assert f"ok   {name}:" in proc.stdout, out
    # The fingerprint was compared with the starter's reference, not merely computed.
    assert "reference -2.7" in proc.stdout, out
    assert not _unexpected(out), out


def test_frozen_self_test_fails_on_a_model_with_one_damaged_block(
    bundle: Path, tmp_path: Path
) -> None:
    from tests.gguf_factory import damage_one_weight_block

    damaged = tmp_path / "damaged.gguf"
    damage_one_weight_block(require_model(), damaged)
    proc = _run(bundle, "--self-test", timeout=300,
                env=_env(tmp_path, SLMDESK_STARTER_MODEL=str(damaged)))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [line] = [ln for ln in proc.stdout.splitlines() if "fingerprint:" in ln]
    assert line.lstrip().startswith("FAIL") and "damaged" in line, line
    assert "self-test FAILED (1 checks)" in proc.stdout


def _variants(lib: Path) -> list[str]:
    return sorted(p.name[len("libggml-cpu-"):-len(".so")] for p in lib.glob("libggml-cpu-*.so"))


def test_bundle_carries_a_cpu_backend_per_instruction_set(bundle: Path, tmp_path: Path) -> None:
    lib = bundle / "_internal" / "llama_cpp" / "lib"
    variants = _variants(lib)
    # packaging/build-cpu-variants.sh: ggml's x86 list, from the baseline to AVX-512 and AMX.
    for name in ("x64", "sse42", "sandybridge", "haswell", "skylakex", "icelake", "zen4"):
        assert name in variants, variants
    # No -march=native build of the CPU code anywhere in the app.
    assert not (lib / "libggml-cpu.so").exists()
    doctor = _run(bundle, "doctor", "--json", env=_env(tmp_path))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    backend = json.loads(doctor.stdout)["backend"]
    assert backend["available"] and backend["backend"] == "CPU", backend
    # The best variant for this processor: the one ggml scores highest among those it can run.
    assert backend["cpu_variant"] in backend["cpu_variants"] and "x64" in backend[
        "cpu_variants"], backend
    text = _run(bundle, "doctor", env=_env(tmp_path)).stdout
    assert f"CPU build {backend['cpu_variant']}" in text, text


def test_a_copy_with_only_the_baseline_cpu_backend_passes_its_self_test(
    bundle: Path, tmp_path: Path
) -> None:
    # A processor with none of SSE4.2, AVX, AVX2, AVX-512 runs the x64 build: simulated by a
    # copy of the app (hard links) whose every other variant is removed.
    copy = tmp_path / "slmdesk-baseline"
    subprocess.run(["cp", "-al", str(bundle), str(copy)], check=True)
    lib = copy / "_internal" / "llama_cpp" / "lib"
    for path in lib.glob("libggml-cpu-*.so"):
        if path.name != "libggml-cpu-x64.so":
            path.unlink()
    assert _variants(lib) == ["x64"]
    proc = _run(copy, "--self-test", env=_env(tmp_path), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ok   backend: CPU, CPU build x64 (x86-64 baseline, SSE2)" in proc.stdout, out
    assert "ok   fingerprint:" in proc.stdout and "reference -2.7" in proc.stdout, out
    assert not _unexpected(out), out


def test_frozen_version(bundle: Path, tmp_path: Path) -> None:
    from slmdesk import __version__

    proc = subprocess.run(
        [str(bundle / "slmdesk"), "--version"], env=_env(tmp_path),
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"slmdesk {__version__}"


def test_frozen_and_development_runs_agree(bundle: Path, tmp_path: Path) -> None:
    """Same name, version and data directories, whichever way slmdesk is started."""
    from slmdesk import __version__

    for label, env in (
        ("SLMDESK_HOME", _env(tmp_path)),
        # No override: platformdirs under the (temporary) HOME, keyed by APP_NAME.
        ("platformdirs", {k: v for k, v in _env(tmp_path).items()
                          if k != "SLMDESK_HOME" and not k.startswith("XDG_")}),
    ):
        frozen = _run(bundle, "doctor", "--json", env=env)
        dev = _dev("doctor", "--json", env=env)
        assert frozen.returncode == 0, frozen.stdout + frozen.stderr
        assert dev.returncode == 0, dev.stdout + dev.stderr
        f, d = json.loads(frozen.stdout), json.loads(dev.stdout)
        assert f["version"] == d["version"] == __version__, label
        assert f["paths"] == d["paths"], label
        assert f["backend"]["llama_cpp_python_version"] == d["backend"][
            "llama_cpp_python_version"], label
        assert f["backend"]["fallback_reason"] is None, label
    assert f["paths"]["data"].startswith(str(tmp_path / "home")), f["paths"]
    assert Path(f["paths"]["data"]).name == "slmdesk", f["paths"]


def test_frozen_gpu_runtime_missing_falls_back_to_the_bundled_cpu_copy(
    bundle: Path, tmp_path: Path
) -> None:
    # LLAMA_CPP_LIB_PATH makes llama-cpp-python load unloadable libraries, as a CUDA build
    # does on a machine without libcudart or the driver.
    env = _env(tmp_path, LLAMA_CPP_LIB_PATH=str(_broken_gpu_libs(tmp_path)))
    doctor = _run(bundle, "doctor", env=env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "backend: CPU" in doctor.stdout, doctor.stdout
    assert f"note: {FALLBACK_NOTE}" in doctor.stdout, doctor.stdout

    self_test = _run(bundle, "--self-test", env=env, timeout=180)
    out = self_test.stdout + self_test.stderr
    assert self_test.returncode == 0, out
    assert "self-test passed" in self_test.stdout, out
    assert "ok   backend: CPU" in self_test.stdout, out
    assert "ok   generation:" in self_test.stdout, out
    assert not _unexpected(out, FALLBACK_NOTE), out

    # Every llama.cpp library the fallback starts comes from lib-cpu. (Here lib and lib-cpu
    # hold the same build, so only the dynamic loader's trace tells them apart; in a real GPU
    # build a libggml from lib would pull in the missing CUDA runtime again.)
    traced = _run(bundle, "doctor", env={**env, "LD_DEBUG": "libs"})
    started = re.findall(r"calling init: (\S*/lib(?:llama|ggml)\S*)", traced.stderr)
    assert started, traced.stderr[-3000:]
    assert all("/llama_cpp/lib-cpu/" in path for path in started), started

    # It is the bundle's own llama_cpp/lib-cpu that rescued it: without it the same start
    # reports the broken library instead.
    cpu_copy = bundle / "_internal" / "llama_cpp" / "lib-cpu"
    hidden = cpu_copy.with_name("lib-cpu.hidden")
    cpu_copy.rename(hidden)
    try:
        without = _run(bundle, "doctor", env=env)
    finally:
        hidden.rename(cpu_copy)
    assert without.returncode == 1, without.stdout + without.stderr
    assert "problem: llama-cpp-python could not be imported" in without.stdout, without.stdout
    assert FALLBACK_NOTE not in without.stdout


def test_frozen_model_catalog(bundle: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    dev = _dev("models", "catalog", "--json", env=env)
    if dev.returncode == 2 and "invalid choice" in dev.stderr:
        pytest.skip("the CLI has no `slmdesk models catalog` command yet")
    assert dev.returncode == 0, dev.stdout + dev.stderr
    frozen = _run(bundle, "models", "catalog", "--json", env=env)
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr

    def catalog(output: str) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = json.loads(output)
        for entry in entries:
            fit = entry.get("fit")
            if isinstance(fit, dict):
                fit.pop("available", None)  # free memory, measured by each run
        return entries

    assert len(catalog(frozen.stdout)) > 0
    assert catalog(frozen.stdout) == catalog(dev.stdout)


def test_frozen_gui_starts(bundle: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(bundle / "slmdesk")], env=_env(tmp_path, QT_QPA_PLATFORM="offscreen"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        time.sleep(6)
        still_running = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert still_running, f"the app exited with {proc.returncode}:\n{out}"
    assert not _unexpected(out), out
    # The first start registered the bundled starter model.
    assert (tmp_path / "slmdesk" / "data" / "slmdesk.db").is_file()


def test_desktop_entry_installer(bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "share"
    env = _env(tmp_path, XDG_DATA_HOME=str(data))
    subprocess.run([str(bundle / "install-desktop-entry.sh")], env=env, check=True,
                   capture_output=True, timeout=30)
    entry = (data / "applications" / "slmdesk.desktop").read_text()
    assert f'Exec="{bundle}/slmdesk"' in entry
    assert "Icon=slmdesk" in entry
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / "slmdesk.png").is_file()
    subprocess.run([str(bundle / "install-desktop-entry.sh"), "--remove"], env=env,
                   check=True, capture_output=True, timeout=30)
    assert not (data / "applications" / "slmdesk.desktop").exists()
