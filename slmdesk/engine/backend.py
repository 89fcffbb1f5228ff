"""What the installed llama.cpp can do: CPU/CUDA/Metal/Vulkan, GPU offload, system info."""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
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


def import_llama_cpp() -> Any:
    """Import llama_cpp with its logging routed; raises ImportError/OSError as import does."""
    import llama_cpp

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
    )
