"""What the installed llama.cpp can do: CPU/CUDA/Metal/Vulkan, GPU offload, system info."""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.json_data import JsonFields

# llama.cpp's system info names each compiled backend; the first match names ours.
_GPU_BACKENDS = (
    ("CUDA", "CUDA"),
    ("Metal", "METAL"),
    ("Vulkan", "VULKAN"),
    ("ROCm", "HIP"),
    ("SYCL", "SYCL"),
)


@dataclass(frozen=True)
class BackendInfo(JsonFields):
    backend: str  # "CPU", "CUDA", "Metal", "Vulkan", ...
    gpu_offload: bool
    llama_cpp_python_version: str
    system_info: str
    available: bool = True
    error: str | None = None
    # Set when the installed (GPU) build could not start and the CPU copy runs instead.
    fallback_reason: str | None = None
    # A build with one CPU backend per instruction-set level (GGML_BACKEND_DL with
    # GGML_CPU_ALL_VARIANTS, as the packaged app has): the one picked for this processor,
    # e.g. "haswell" (AVX2) or "x64" (the x86-64 baseline). None: a single built-in CPU backend.
    cpu_variant: str | None = None
    cpu_variants: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """One line for the status bar and ``doctor``: "CPU", "CPU: haswell (AVX2)"."""
        text = self.backend + (" (GPU offload)" if self.gpu_offload else "")
        if self.cpu_variant:
            isa = CPU_VARIANT_ISA.get(self.cpu_variant)
            text += f", CPU build {self.cpu_variant}" + (f" ({isa})" if isa else "")
        return text


# ggml's x86 CPU variants (ggml/src/CMakeLists.txt, GGML_CPU_ALL_VARIANTS) and the
# instruction sets each is compiled for, in words a person can check against their CPU.
CPU_VARIANT_ISA = {
    "x64": "x86-64 baseline, SSE2",
    "sse42": "SSE4.2",
    "sandybridge": "AVX",
    "ivybridge": "AVX, F16C",
    "piledriver": "AVX, F16C, FMA",
    "haswell": "AVX2, FMA",
    "skylakex": "AVX-512",
    "cannonlake": "AVX-512 VBMI",
    "cascadelake": "AVX-512 VNNI",
    "icelake": "AVX-512 VBMI, VNNI",
    "cooperlake": "AVX-512 VNNI, BF16",
    "zen4": "AVX-512 VBMI, VNNI, BF16",
    "alderlake": "AVX2, AVX-VNNI",
    "sapphirerapids": "AVX-512, AMX",
}


_llama_log = logging.getLogger("slmdesk.llama_cpp")
# ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5. (llama-cpp-python 0.3.36's own
# table is off by one and prints warnings as errors.)
_GGML_LOG_LEVEL_ERROR = 4
_log_callback: Any = None


def _route_llama_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's own log lines to Python logging instead of raw stderr.

    llama-cpp-python prints them to stderr depending on a logger level that each ``Llama``
    resets; routing them here keeps the CLI's stderr to our own one-line messages.
    """
    global _log_callback
    if _log_callback is not None:
        return

    def callback(level: int, text: bytes, _user_data: Any) -> None:
        try:
            line = text.decode("utf-8", errors="replace").rstrip()
            if line:
                # llama.cpp's "errors" include the expected notices after an aborted
                # decode; real failures reach the person as UserFacingErrors instead.
                is_error = level == _GGML_LOG_LEVEL_ERROR
                _llama_log.log(logging.INFO if is_error else logging.DEBUG, "%s", line)
        except Exception:  # noqa: BLE001 - a log line must never raise into C
            pass

    _log_callback = llama_cpp.llama_log_callback(callback)
    llama_cpp.llama_log_set(_log_callback, None)


# Where a GPU build of the app keeps a CPU-only copy of llama.cpp's libraries
# (packaging/build-gpu.sh bundles it as <_MEIPASS>/llama_cpp/lib-cpu, next to
# llama_cpp/lib); the environment variable points a development install at one.
CPU_FALLBACK_ENV = "SLMDESK_CPU_LIB_PATH"
_fallback_reason: str | None = None


def cpu_fallback_dir() -> Path | None:
    override = os.environ.get(CPU_FALLBACK_ENV)
    if override:
        return Path(override) if Path(override).is_dir() else None
    for base in (getattr(sys, "_MEIPASS", None), *sys.path):
        if base:
            candidate = Path(base) / "llama_cpp" / "lib-cpu"
            if candidate.is_dir():
                return candidate
    return None


# PyInstaller's loader appends its own guess to a failed dlopen; in a GPU build whose runtime
# is missing that guess ("not found when the application was frozen") is misleading.
_FROZEN_HINT = "Most likely this dynlib/dll was not found when the application was frozen."


def _first_line(exc: BaseException) -> str:
    text = [line for line in str(exc).replace(_FROZEN_HINT, "").strip().splitlines()
            if line.strip()]
    return text[-1].strip() if text else type(exc).__name__


def import_llama_cpp() -> Any:
    """Import llama_cpp with its logging routed; raises ImportError/OSError as import does.

    A GPU build whose runtime is missing (no CUDA driver, no Vulkan loader) fails while
    loading its native libraries. When a CPU-only copy of those libraries is present, load
    that instead and remember why, so the person is told that slmdesk runs on the CPU.
    """
    global _fallback_reason
    try:
        import llama_cpp
    except (OSError, RuntimeError) as exc:
        fallback = cpu_fallback_dir()
        if fallback is None:
            raise
        # The failed import leaves half-initialised modules behind.
        for name in [n for n in sys.modules if n == "llama_cpp" or n.startswith("llama_cpp.")]:
            del sys.modules[name]
        os.environ["LLAMA_CPP_LIB_PATH"] = str(fallback)
        import llama_cpp

        _fallback_reason = (
            f"The GPU build of llama.cpp could not start ({_first_line(exc)}); slmdesk runs "
            "on the CPU instead. Install or update the GPU driver/runtime to use the GPU."
        )
        logging.getLogger(__name__).warning("%s", _fallback_reason)
    _route_llama_logs(llama_cpp)
    _load_dynamic_backends(llama_cpp)
    return llama_cpp


# Force one CPU variant of a GGML_BACKEND_DL build by name (tests and the benchmark compare
# variants on one machine); one this processor cannot run is refused and the best one is used.
CPU_VARIANT_ENV = "SLMDESK_CPU_VARIANT"
_cpu_variant: str | None = None
_cpu_variants: tuple[str, ...] = ()
# Set when a GGML_BACKEND_DL build has CPU variants but none this processor can run.
_cpu_problem: str | None = None
_dynamic_loaded = False


def _library_dir(llama_cpp: Any) -> Path:
    """Where llama-cpp-python loaded its native libraries from (as llama_cpp.py decides)."""
    override = os.environ.get("LLAMA_CPP_LIB_PATH")
    if override:
        return Path(override)
    return Path(llama_cpp.llama_cpp.__file__).resolve().parent / "lib"


def _backend_files(lib_dir: Path, name: str) -> list[Path]:
    """``[lib]ggml-<name>-*.so|.dll``: the files ggml's own loader would consider."""
    ext = ".dll" if sys.platform == "win32" else ".so"
    prefix = ("ggml-" if sys.platform == "win32" else "libggml-") + name
    return sorted(
        p for p in lib_dir.glob(f"*{ext}")
        if p.name.startswith(prefix) and p.name.endswith(ext) and p.is_file()
    )


def _variant_name(path: Path) -> str:
    stem = path.name[: -len(path.suffix)]
    return stem.split("ggml-cpu-", 1)[1] if "ggml-cpu-" in stem else stem


def _score(path: Path) -> int:
    """The variant's own ``ggml_backend_score()``: 0 when this processor cannot run it."""
    import ctypes

    try:
        handle = ctypes.CDLL(str(path))
    except OSError as exc:
        logging.getLogger(__name__).info("cannot open %s: %s", path.name, exc)
        return 0
    try:
        fn = handle.ggml_backend_score
        fn.restype = ctypes.c_int
        return int(fn())
    except AttributeError:
        return 0
    finally:
        if sys.platform != "win32":
            import _ctypes

            _ctypes.dlclose(handle._handle)


def _load_dynamic_backends(llama_cpp: Any) -> None:
    """Register the backends of a GGML_BACKEND_DL build before llama.cpp first needs them.

    Such a build keeps each backend in its own library and llama.cpp looks for them next to
    the executable (python, or the frozen app) and in the working directory, not where
    llama-cpp-python keeps its libraries, so nothing would load. Here each CPU variant's
    ``ggml_backend_score()`` says whether this processor can run it and how well (ggml's own
    rule), and the best one is registered; GPU backends are registered when their runtime
    loads (a missing CUDA driver just leaves the CPU).
    """
    global _cpu_variant, _cpu_variants, _cpu_problem, _dynamic_loaded
    if _dynamic_loaded:
        return
    _dynamic_loaded = True
    lib_dir = _library_dir(llama_cpp)
    cpu_files = _backend_files(lib_dir, "cpu-")
    if not cpu_files:
        return  # one built-in CPU backend: nothing to pick
    import ctypes

    lib = llama_cpp.llama_cpp._lib
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    if lib.ggml_backend_reg_count():
        return  # backends built in: not a GGML_BACKEND_DL build after all
    lib.ggml_backend_load.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_load.restype = ctypes.c_void_p
    log = logging.getLogger(__name__)
    scores = {path: _score(path) for path in cpu_files}
    _cpu_variants = tuple(_variant_name(p) for p in cpu_files if scores[p] > 0)
    best = max(cpu_files, key=lambda p: scores[p])
    wanted = os.environ.get(CPU_VARIANT_ENV)
    if wanted:
        forced = [p for p in cpu_files if _variant_name(p) == wanted]
        if forced and scores[forced[0]] > 0:
            best = forced[0]
        else:
            log.warning("%s=%s: no such CPU variant this processor can run; using %s",
                        CPU_VARIANT_ENV, wanted, _variant_name(best))
    if scores[best] > 0 and lib.ggml_backend_load(str(best).encode()):
        _cpu_variant = _variant_name(best)
        log.info("llama.cpp CPU backend: %s (%s)", _cpu_variant, best.name)
    else:
        _cpu_problem = ("This processor cannot run any of the CPU builds of llama.cpp in this "
                        "app (it lacks the instructions of even the most basic x86-64 one).")
    for path in _backend_files(lib_dir, ""):
        if path in scores or path.stem in ("libggml-base", "ggml-base"):
            continue
        # A GPU backend whose runtime is missing fails to load and is skipped.
        if not lib.ggml_backend_load(str(path).encode()):
            log.info("llama.cpp backend %s did not load", path.name)


@functools.lru_cache(maxsize=1)
def backend_info() -> BackendInfo:
    """Describe the installed llama.cpp build; never raises."""
    try:
        llama_cpp = import_llama_cpp()
    except Exception as exc:  # noqa: BLE001 - a missing or broken native library
        return BackendInfo(
            backend="none",
            gpu_offload=False,
            llama_cpp_python_version="not installed",
            system_info="",
            available=False,
            error=f"llama-cpp-python could not be imported: {exc}",
        )
    if _cpu_problem is not None:
        return BackendInfo(
            backend="none",
            gpu_offload=False,
            llama_cpp_python_version=str(getattr(llama_cpp, "__version__", "unknown")),
            system_info="",
            available=False,
            error=_cpu_problem,
        )
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip()
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    upper = info.upper()
    backend = "CPU"
    for name, marker in _GPU_BACKENDS:
        if marker in upper:
            backend = name
            break
    return BackendInfo(
        backend=backend,
        gpu_offload=offload,
        llama_cpp_python_version=str(getattr(llama_cpp, "__version__", "unknown")),
        system_info=info,
        fallback_reason=_fallback_reason,
        cpu_variant=_cpu_variant,
        cpu_variants=_cpu_variants,
    )
