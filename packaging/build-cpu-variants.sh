#!/usr/bin/env bash
# llama.cpp's native libraries built the way llama.cpp's own releases are: the CPU backend once per
# instruction-set level (GGML_BACKEND_DL=ON, GGML_CPU_ALL_VARIANTS=ON, GGML_NATIVE=OFF: x64, sse42,
# sandybridge … haswell (AVX2) … skylakex/icelake/zen4 (AVX-512) …), each a libggml-cpu-<name>.so;
# slmdesk picks the best one for the processor at run time (slmdesk/engine/backend.py).
#   packaging/build-cpu-variants.sh     prints the directory that holds the libraries
# Used by packaging/build.sh (the app bundles these instead of the venv's -march=native build) and by
# `./dev test --llama-variant` (the model tests on other instruction sets of this machine).
# Same llama-cpp-python version as the venv (requirements/constraints.txt). Cached by version and
# flags in $SLMDESK_BUILD_CACHE (default ~/.cache/slmdesk-build): the first build takes long
# (the CPU backend is compiled 14 times), later ones nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case "$(uname -s)" in
  MINGW*|MSYS*|CYGWIN*) PYTHON=${PYTHON:-$root/.venv/Scripts/python.exe} ;;
  *) PYTHON=${PYTHON:-$root/.venv/bin/python} ;;
esac
die() { echo "build-cpu-variants: $*" >&2; exit 1; }
version=$(grep -iE '^llama[-_]cpp[-_]python==' "$root/requirements/constraints.txt" | cut -d= -f3)
[ -n "$version" ] || die "no llama_cpp_python==VERSION line in requirements/constraints.txt"
# LLAVA_BUILD=OFF: the multimodal library (mtmd) is loaded only for image models, which slmdesk
# does not run; it would add minutes to the build.
flags="-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
[ "$(uname -s)" = Darwin ] && flags="$flags -DGGML_METAL=OFF"
cache=${SLMDESK_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slmdesk-build}
out=$cache/llama-cpp-python-$version-cpu-variants
stamp="llama-cpp-python $version $flags"
if [ "$(cat "$out/.built-from" 2>/dev/null)" != "$stamp" ]; then
  echo "build-cpu-variants: compiling llama-cpp-python $version with $flags (long, once)" >&2
  # The wheel is kept beside the result until the libraries are out of it.
  work=$cache/wheel-$version
  if ! ls "$work"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    rm -rf "$work"
    # --no-cache-dir: pip's wheel cache is keyed by version, not CMAKE_ARGS, and would hand
    # back the venv's native build.
    CMAKE_ARGS="$flags" "$PYTHON" -m pip wheel -q --no-deps --no-cache-dir \
      --no-binary llama-cpp-python -w "$work" "llama-cpp-python==$version" >&2
  fi
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp/lib"
  # llama-cpp-python installs its known targets into llama_cpp/lib; ggml installs each
  # dynamically loaded backend (libggml-cpu-<variant>) into the wheel's bin folder instead.
  "$PYTHON" - "$work" "$out.tmp/lib" <<'EOF'
import sys, zipfile
from pathlib import Path

wheels, lib = Path(sys.argv[1]), Path(sys.argv[2])
[wheel] = wheels.glob("llama_cpp_python-*.whl")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = Path(name).name
        backend = base.startswith(("libggml-", "ggml-")) and (".so" in base or base.endswith(
            (".dll", ".dylib")))
        if (name.startswith("llama_cpp/lib/") or backend) and not name.endswith("/"):
            print(f"  {name}", file=sys.stderr)
            (lib / base).write_bytes(z.read(name))
EOF
  ls "$out.tmp/lib"/*ggml-cpu-x64* >/dev/null 2>&1 || die "the build has no x64 CPU variant"
  echo "$stamp" > "$out.tmp/.built-from"
  rm -rf "$out"
  mv "$out.tmp" "$out"
  rm -rf "$work"
fi
echo "$out/lib"
