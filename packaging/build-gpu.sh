#!/usr/bin/env bash
# GPU build of the installable app: llama-cpp-python rebuilt for CUDA, Vulkan or Metal, plus a
# CPU-only copy of llama.cpp's libraries (bundled as llama_cpp/lib-cpu) that the app falls back to,
# with a message, when the GPU runtime is missing on the user's machine.
#   packaging/build-gpu.sh cuda|vulkan|metal [--cpu-copy-only] [build.sh args: --no-model --dist DIR --no-archive]
#     --cpu-copy-only  keep the installed llama-cpp-python as it is; only build the CPU copy and the bundle
# Environment: PYTHON (default .venv/bin/python), GPU_CMAKE_ARGS (extra flags for the GPU build, e.g.
# "-DCMAKE_CUDA_ARCHITECTURES=75;86;89" for fewer CUDA architectures), CPU_CMAKE_ARGS (flags for a
# single CPU copy; default: the one-backend-per-instruction-set build of build-cpu-variants.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
usage() { sed -n '2,8p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
backend=$1; shift
case "$backend" in
  cuda) flags="-DGGML_CUDA=on" ;;
  vulkan) flags="-DGGML_VULKAN=on" ;;
  metal) flags="-DGGML_METAL=on" ;;
  *) usage ;;
esac
gpu_install=1
build_args=()
for a in "$@"; do
  if [ "$a" = --cpu-copy-only ]; then gpu_install=0; else build_args+=("$a"); fi
done
case "$(uname -s)" in
  MINGW*|MSYS*|CYGWIN*) PYTHON=${PYTHON:-$root/.venv/Scripts/python.exe} ;;
  *) PYTHON=${PYTHON:-$root/.venv/bin/python} ;;
esac
say() { echo "build-gpu: $*"; }
die() { echo "build-gpu: $*" >&2; exit 1; }

version=$(grep -iE '^llama[-_]cpp[-_]python==' requirements/constraints.txt | cut -d= -f3)
[ -n "$version" ] || die "no llama_cpp_python==VERSION line in requirements/constraints.txt"
pkg=$("$PYTHON" -c 'import importlib.util as u; print(u.find_spec("llama_cpp").submodule_search_locations[0])') \
  || die "llama-cpp-python is not installed in $PYTHON's environment (./dev setup)"
# The GPU library each build must contain (found without importing: a build machine often has
# the toolkit but no GPU driver, and then the import itself fails).
marker=ggml-$backend

# 1. The GPU build of llama-cpp-python, into the venv. ---------------------------------------
if [ "$gpu_install" = 1 ]; then
  case "$backend" in
    cuda)
      command -v nvcc >/dev/null || [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ] \
        || die "nvcc not found: install the CUDA toolkit (12.x) and put its bin/ on PATH"
      # PyInstaller bundles the CUDA runtime (cudart, cuBLAS) only if the loader finds it.
      for d in "${CUDA_HOME:-}" /usr/local/cuda; do
        [ -n "$d" ] && [ -d "$d/lib64" ] && export LD_LIBRARY_PATH="$d/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      done ;;
    vulkan)
      command -v glslc >/dev/null || die "glslc not found: install the Vulkan SDK (or libvulkan-dev and glslc)" ;;
    metal)
      [ "$(uname -s)" = Darwin ] || die "Metal builds need macOS" ;;
  esac
  say "rebuilding llama-cpp-python $version with CMAKE_ARGS=\"$flags ${GPU_CMAKE_ARGS:-}\" (many minutes)"
  CMAKE_ARGS="$flags ${GPU_CMAKE_ARGS:-}" "$PYTHON" -m pip install --force-reinstall --no-cache-dir \
    --no-deps "llama-cpp-python==$version"
fi
if ! ls "$pkg"/lib/*"$marker"* >/dev/null 2>&1; then
  [ "$gpu_install" = 0 ] || die "the rebuilt llama-cpp-python has no $marker library: see pip's output above"
  # A rehearsal of the CPU copy and the bundle on a machine without the GPU toolkit.
  say "WARNING: the installed llama-cpp-python has no $marker library; this bundle is CPU-only"
fi

# 2. A CPU-only copy of the same version's libraries. -----------------------------------------
# By default the build with one CPU backend per instruction-set level (build-cpu-variants.sh,
# cached), which runs on every x86-64 CPU. With CPU_CMAKE_ARGS (and on macOS) one build with
# those flags, kept in build/lib-cpu and rebuilt only when the version or the flags change;
# GGML_NATIVE=OFF there means AVX2/FMA/F16C on x86-64, i.e. CPUs from 2013 on.
cpu_args=${CPU_CMAKE_ARGS:--DGGML_NATIVE=OFF}
[ "$(uname -s)" = Darwin ] && cpu_args="$cpu_args -DGGML_METAL=OFF"  # Metal is on by default there
cpu_lib=$root/build/lib-cpu
stamp="llama-cpp-python $version $cpu_args"
if [ -z "${CPU_CMAKE_ARGS:-}" ] && [ "$(uname -s)" != Darwin ]; then
  cpu_lib=$(PYTHON=$PYTHON "$root/packaging/build-cpu-variants.sh")
  say "CPU copy: $cpu_lib (one CPU backend per instruction set)"
elif [ "$(cat "$cpu_lib/.built-from" 2>/dev/null)" = "$stamp" ]; then
  say "CPU copy: $cpu_lib is up to date ($stamp)"
else
  say "CPU copy: compiling llama-cpp-python $version with CMAKE_ARGS=\"$cpu_args\" (minutes)"
  wheels=$root/build/cpu-wheel
  rm -rf "$wheels" "$cpu_lib"
  CMAKE_ARGS="$cpu_args" "$PYTHON" -m pip wheel --no-deps --no-cache-dir \
    --no-binary llama-cpp-python -w "$wheels" "llama-cpp-python==$version"
  # Only the native libraries: the Python package itself comes from the GPU install.
  "$PYTHON" - "$wheels" "$cpu_lib" <<'EOF'
import sys, zipfile
from pathlib import Path

wheels, out = Path(sys.argv[1]), Path(sys.argv[2])
[wheel] = wheels.glob("llama_cpp_python-*.whl")
out.mkdir(parents=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("llama_cpp/lib/") and not name.endswith("/"):
            (out / Path(name).name).write_bytes(z.read(name))
EOF
  for gpu in cuda vulkan metal hip sycl; do
    if ls "$cpu_lib"/*ggml-$gpu* >/dev/null 2>&1; then
      die "the CPU copy contains ggml-$gpu: check CPU_CMAKE_ARGS"
    fi
  done
  echo "$stamp" > "$cpu_lib/.built-from"
fi
say "CPU copy: $(ls "$cpu_lib" | tr '\n' ' ')"

# 3. The bundle: same spec, with the CPU copy as llama_cpp/lib-cpu. ---------------------------
SLMDESK_LLAMA_LIB=$pkg/lib SLMDESK_CPU_LIB=$cpu_lib PYTHON=$PYTHON exec "$root/packaging/build.sh" --variant "$backend" \
  ${build_args[@]+"${build_args[@]}"}
