"""What the installed llama.cpp can do: CPU/CUDA/Metal/Vulkan, GPU offload, system info."""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=1)
def backend_info() -> BackendInfo:
    """Describe the installed llama.cpp build; never raises."""
    try:
        import llama_cpp
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
