"""The installable app: build the PyInstaller bundle and run it as a user would.

Builds packaging/slmdesk.spec into a temporary folder (about a minute on two cores, plus the
first run of PyInstaller's analysis), then runs the frozen `slmdesk --self-test`,
`slmdesk --version`, the GUI (offscreen, for a few seconds) and the desktop-entry installer.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_model

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HARMLESS = ("This plugin does not support propagateSizeHints()",)
ERROR = re.compile(r"Traceback|Error|(?i:cannot|not found|failed to|segmentation fault)")


def _unexpected(output: str) -> list[str]:
    return [
        line for line in output.splitlines()
        if ERROR.search(line) and not any(h in line for h in HARMLESS)
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
        cwd=ROOT, env={**os.environ, "PYTHON": sys.executable},
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    print(f"bundle built in {time.perf_counter() - started:.0f} s")
    yield dist / "slmdesk"


def test_bundle_layout(bundle: Path) -> None:
    internal = bundle / "_internal"
    assert os.access(bundle / "slmdesk", os.X_OK)
    assert list((internal / "llama_cpp" / "lib").glob("libllama.so*"))
    assert (internal / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()
    assert (internal / "licences" / "SmolLM2-135M-Instruct.txt").is_file()
    assert (internal / "share" / "applications" / "slmdesk.desktop").is_file()
    assert (internal / "share" / "icons" / "slmdesk.png").is_file()
    assert os.access(bundle / "install-desktop-entry.sh", os.X_OK)
    qt = internal / "PySide6"
    for used in ("QtCore", "QtGui", "QtWidgets"):
        assert list(qt.glob(f"{used}.*")), used
    for unused in ("QtNetwork", "QtQml", "QtQuick", "QtSql", "QtPdf", "QtMultimedia"):
        assert not list(qt.glob(f"{unused}.*")), unused
    assert (qt / "Qt" / "plugins" / "platforms" / "libqoffscreen.so").is_file()
    assert (qt / "Qt" / "plugins" / "platforms" / "libqxcb.so").is_file()


def test_frozen_self_test(bundle: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(bundle / "slmdesk"), "--self-test"], env=_env(tmp_path),
        capture_output=True, text=True, timeout=180,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "self-test passed" in proc.stdout, out
    for name in ("backend", "code highlighting", "starter model", "generation",
                 "classification"):
        assert f"ok   {name}:" in proc.stdout, out
    assert not _unexpected(out), out


def test_frozen_version(bundle: Path, tmp_path: Path) -> None:
    from slmdesk import __version__

    proc = subprocess.run(
        [str(bundle / "slmdesk"), "--version"], env=_env(tmp_path),
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"slmdesk {__version__}"


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
