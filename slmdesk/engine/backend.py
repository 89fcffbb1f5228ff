"""What the installed llama.cpp can do: CPU/CUDA/Metal/Vulkan, GPU offload, system info."""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# llama.cpp's system info names each compiled backend; the first match names ours.
_GPU_BACKENDS = (
    ("CUDA", "CUDA"),
    ("Metal", "METAL"),
    ("Vulkan", "VULKAN"),
    ("ROCm", "HIP"),
    ("SYCL", "SYCL"),
)


@dataclass(frozen=True)
class BackendInfo:
    backend: str  # "CPU", "CUDA", "Metal", "Vulkan", ...
    gpu_offload: bool
    llama_cpp_python_version: str
    system_info: str
    available: bool = True
    error: str | None = None
    # Set when the installed (GPU) build could not start and the CPU copy runs instead.
    fallback_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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
    return llama_cpp


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
    )
