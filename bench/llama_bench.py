"""Build and run llama.cpp's own `llama-bench` and `llama-server` from llama-cpp-python's source.

The source package of the installed llama-cpp-python version carries the exact llama.cpp
commit the engine was compiled from (vendor/llama.cpp). We build only the tool's target
(`llama-bench` for the benchmark, `llama-server` as the real remote engine of the remote-engine
tests) with llama.cpp's defaults on this machine, which is how the wheel was built
(llama-cpp-python's CMakeLists leaves GGML_NATIVE and GGML_OPENMP at their defaults on
x86-64 Linux), and then run it with the wheel's own shared libraries first on the library
path, so both sides of every ratio execute the very same ggml/llama machine code.

`python -m bench.llama_bench [llama-server]` builds (if needed) and prints the binary's path.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BIN_DIR = BENCH_DIR / "bin"
BUILD_DIR = BENCH_DIR / "build"

# The same switches llama-cpp-python's CMakeLists forces for a CPU build (curl off), plus
# "no tests, no examples". GGML_NATIVE/OPENMP keep their defaults, as in the wheel. The server
# target is configured too (only the asked-for target is built).
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
]
BENCH_TOOL = "llama-bench"
SERVER_TOOL = "llama-server"


class LlamaBenchUnavailable(RuntimeError):
    """llama-bench could not be built or found (no compiler, no source package, …)."""


def llama_cpp_python_version() -> str:
    """Return the installed llama-cpp-python version."""
    return importlib.metadata.version("llama_cpp_python")


def wheel_lib_dir() -> Path:
    """Return the folder holding the installed wheel's libllama/libggml shared libraries."""
    dist = importlib.metadata.distribution("llama_cpp_python")
    return Path(str(dist.locate_file("llama_cpp"))) / "lib"


def binary_path(version: str | None = None, tool: str = BENCH_TOOL) -> Path:
    """Return where the cached binary of `tool` for `version` lives."""
    return BIN_DIR / f"{tool}-{version or llama_cpp_python_version()}"


def _sdist(version: str) -> Path:
    """Find the llama-cpp-python source archive in a few known places, or download it."""
    name = f"llama_cpp_python-{version}.tar.gz"
    candidates = [BUILD_DIR / name, Path("/tmp/dl") / name]
    for path in candidates:
        if path.is_file():
            return path
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    # pip serves it from its cache when it has it; otherwise this reaches the registry.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"llama-cpp-python=={version}", "-d", str(BUILD_DIR)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not (BUILD_DIR / name).is_file():
        raise LlamaBenchUnavailable(
            f"could not get the llama-cpp-python {version} source package: {result.stderr[-500:]}")
    return BUILD_DIR / name


def source_dir(version: str) -> Path:
    """Return vendor/llama.cpp of the extracted source package, extracting it if needed."""
    root = BUILD_DIR / f"llama_cpp_python-{version}"
    src = root / "vendor" / "llama.cpp"
    if not (src / "tools" / "llama-bench").is_dir():
        archive = _sdist(version)
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(BUILD_DIR, filter="data")
    if not (src / "tools" / "llama-bench").is_dir():
        raise LlamaBenchUnavailable(f"{src} has no tools/llama-bench")
    return src


def llama_cpp_commit(version: str | None = None) -> str:
    """Return the llama.cpp commit vendored by the source package (or 'unknown')."""
    version = version or llama_cpp_python_version()
    for tool in (BENCH_TOOL, SERVER_TOOL):
        stamp = BIN_DIR / f"{tool}-{version}.json"
        if stamp.is_file():
            return str(json.loads(stamp.read_text()).get("commit", "unknown"))
    src = BUILD_DIR / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    return _git_head(src) if src.is_dir() else "unknown"


def _git_head(src: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def ensure_built(jobs: int = 2, log: bool = True, tool: str = BENCH_TOOL) -> Path:
    """Build `tool` (llama-bench, llama-server) for the installed llama-cpp-python once.

    Returns the cached binary; run it with `tool_environment()`.
    """
    version = llama_cpp_python_version()
    target = binary_path(version, tool)
    if target.is_file():
        return target
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        raise LlamaBenchUnavailable(f"{tool} needs cmake and a C++ compiler")
    src = source_dir(version)
    build = BUILD_DIR / f"llama.cpp-{version}"
    out = None if log else subprocess.DEVNULL
    if log:
        print(f"bench: building {tool} from {src} (minutes, once)", file=sys.stderr)
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), *CMAKE_FLAGS],
                   check=True, stdout=out)
    subprocess.run(["cmake", "--build", str(build), "--target", tool, "-j", str(jobs)],
                   check=True, stdout=out)
    built = build / "bin" / tool
    if not built.is_file():
        raise LlamaBenchUnavailable(f"the build finished without {built}")
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    # The binary finds its own libllama-common etc. through its build-tree RUNPATH; copy
    # those next to it so bench/build can be deleted without breaking the cached binary.
    libdir = BIN_DIR / f"lib-{version}"
    libdir.mkdir(exist_ok=True)
    for lib in (build / "bin").glob("lib*.so*"):
        shutil.copy2(lib, libdir / lib.name, follow_symlinks=True)
    shutil.copy2(built, target)
    (BIN_DIR / f"{tool}-{version}.json").write_text(
        json.dumps({"commit": _git_head(src), "cmake_flags": CMAKE_FLAGS}))
    return target


def tool_environment() -> dict[str, str]:
    """Return os.environ with the wheel's libraries first, then the built tools' own ones.

    A tool run with it executes the engine's exact libllama/libggml.
    """
    env = dict(os.environ)
    paths = [str(wheel_lib_dir()), str(BIN_DIR / f"lib-{llama_cpp_python_version()}")]
    if env.get("LD_LIBRARY_PATH"):
        paths.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(paths)
    return env


@dataclass(frozen=True)
class LlamaBenchResult:
    """One llama-bench measurement: tokens per second for pp<n_prompt> or tg<n_gen>."""

    test: str
    tokens_per_s: float


def run(model: Path, threads: int, n_prompt: int = 512, n_gen: int = 256,
        repetitions: int = 1, binary: Path | None = None,
        flash_attn: int | None = None) -> dict[str, float]:
    """Run llama-bench once for pp and tg; return {'pp': t/s, 'tg': t/s}.

    ``flash_attn`` None keeps llama.cpp's default (auto: on for the CPU backend); 0 matches
    llama-cpp-python, whose ``Llama`` turns flash attention off unless asked.
    """
    exe = binary or ensure_built()
    env = tool_environment()
    cmd = [str(exe), "-m", str(model), "-t", str(threads), "-p", str(n_prompt),
           "-n", str(n_gen), "-r", str(repetitions), "-o", "json", "-ngl", "0"]
    if flash_attn is not None:
        cmd += ["-fa", str(flash_attn)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0:
        raise LlamaBenchUnavailable(f"llama-bench failed: {result.stderr[-800:]}")
    return parse_json_output(result.stdout)


def parse_json_output(text: str) -> dict[str, float]:
    """Turn llama-bench's `-o json` output into {'pp': t/s, 'tg': t/s}."""
    rows = json.loads(text)
    out: dict[str, float] = {}
    for row in rows:
        key = "pp" if int(row.get("n_gen", 0)) == 0 else "tg"
        out[key] = float(row["avg_ts"])
    return out


if __name__ == "__main__":
    print(ensure_built(tool=sys.argv[1] if len(sys.argv) > 1 else BENCH_TOOL))
