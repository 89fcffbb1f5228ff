"""A GPU build whose native libraries cannot load falls back to a CPU copy and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import llama_cpp
import pytest

REAL_LIB = Path(llama_cpp.__file__).parent / "lib"
PROBE = (
    "import json; from slmdesk.engine.backend import backend_info; "
    "print(json.dumps(backend_info().to_json()))"
)


def _broken_gpu_libs(tmp_path: Path) -> Path:
    """A lib dir like a GPU build's on a machine without its runtime: dlopen fails."""
    d = tmp_path / "gpu-lib"
    d.mkdir()
    for name in ("libllama.so", "libggml.so", "llama.dll", "libllama.dylib"):
        (d / name).write_bytes(b"\x7fELF not really a library: its runtime is missing")
    return d


def _probe(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.skipif(not REAL_LIB.is_dir(), reason="llama-cpp-python keeps no lib dir here")
def test_unloadable_gpu_build_falls_back_to_the_cpu_copy(tmp_path: Path) -> None:
    env = dict(os.environ, LLAMA_CPP_LIB_PATH=str(_broken_gpu_libs(tmp_path)),
               SLMDESK_CPU_LIB_PATH=str(REAL_LIB))
    info = _probe(env)
    assert info["available"] is True
    assert info["backend"] == "CPU"
    reason = str(info["fallback_reason"])
    assert "GPU build of llama.cpp could not start" in reason and "runs on the CPU" in reason


def test_without_a_cpu_copy_the_failure_is_reported_not_raised(tmp_path: Path) -> None:
    env = dict(os.environ, LLAMA_CPP_LIB_PATH=str(_broken_gpu_libs(tmp_path)),
               SLMDESK_CPU_LIB_PATH=str(tmp_path / "absent"))
    info = _probe(env)
    assert info["available"] is False
    assert "llama-cpp-python could not be imported" in str(info["error"])
    assert info["fallback_reason"] is None


def test_doctor_prints_the_fallback_note(tmp_path: Path) -> None:
    env = dict(os.environ, LLAMA_CPP_LIB_PATH=str(_broken_gpu_libs(tmp_path)),
               SLMDESK_CPU_LIB_PATH=str(REAL_LIB), SLMDESK_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-m", "slmdesk", "doctor"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "backend: CPU" in out.stdout
    assert "note: The GPU build of llama.cpp could not start" in out.stdout
