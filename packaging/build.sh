#!/usr/bin/env bash
# Build the installable app for this OS: dist/slmdesk/ (run dist/slmdesk/slmdesk, slmdesk.exe on Windows;
# on macOS also dist/slmdesk.app) and an archive dist/slmdesk-<version>-<os>-<arch>[-variant].{tar.xz,zip}.
#   packaging/build.sh [--no-model] [--dist DIR] [--no-archive] [--variant NAME]
#   packaging/build.sh --trainer [--dist DIR] [--no-archive]   the trainer add-on instead:
#     dist/slmdesk-trainer/ (torch, transformers, peft, llama.cpp's LoRA converter) and
#     dist/slmdesk-trainer-<version>-<os>-<arch>.{tar.xz,zip}, unpacked next to the app.
# Environment: PYTHON (default .venv/bin/python), SLMDESK_BUNDLE_MODEL=0 (same as --no-model),
# SLMDESK_CPU_LIB (CPU copy of llama.cpp's libraries; build-gpu.sh sets it), XZ_OPT (default level 6),
# SLMDESK_LLAMA_LIB (llama.cpp's libraries to bundle; default on x86-64: build-cpu-variants.sh's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=macos ;;
  MINGW*|MSYS*|CYGWIN*) os=windows ;;  # Git Bash on Windows
  *) os=$(uname -s | tr '[:upper:]' '[:lower:]') ;;
esac
if [ "$os" = windows ]; then
  PYTHON=${PYTHON:-$root/.venv/Scripts/python.exe}; exe=slmdesk.exe
else
  PYTHON=${PYTHON:-$root/.venv/bin/python}; exe=slmdesk
fi
dist=$root/dist
work=$root/build/pyinstaller
archive=1
variant=
trainer=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-model) export SLMDESK_BUNDLE_MODEL=0 ;;
    --dist) dist=$(mkdir -p "$2" && cd "$2" && pwd); work=$dist/.work; shift ;;
    --no-archive) archive=0 ;;
    --variant) variant=$2; shift ;;
    --trainer) trainer=1 ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
  esac
  shift
done
"$PYTHON" -c "import PyInstaller" 2>/dev/null || { echo "build: PyInstaller is not installed (./dev setup)" >&2; exit 1; }
size() { du -sh "$1" | cut -f1; }

# pack FOLDER_NAME BASE: the archive of $dist/FOLDER_NAME as BASE.tar.xz (.zip on Windows).
pack() {
  local tarball
  case "$os" in
    windows) tarball=$2.zip; (cd "$dist" && "$PYTHON" -m zipfile -c "$tarball" "$1") ;;
    *) tarball=$2.tar.xz; tar -C "$dist" -cf - "$1" | xz -T0 > "$tarball" ;;  # XZ_OPT=-3: faster, larger
  esac
  echo "build: $tarball ($(size "$tarball"))"
}

# The trainer add-on (packaging/slmdesk-trainer.spec): its own executable, checked by running
# it (--info, kept as trainer.json: the app reads its version and architectures from there).
build_trainer() {
  local addon=$dist/slmdesk-trainer texe=slmdesk-trainer started=$(date +%s) version
  [ "$os" = windows ] && texe=slmdesk-trainer.exe
  "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$dist" --workpath "$work-trainer" packaging/slmdesk-trainer.spec
  "$addon/$texe" --info > "$addon/trainer.json.partial" || {
    echo "build: FAILED: $addon/$texe --info did not run" >&2; exit 1; }
  mv "$addon/trainer.json.partial" "$addon/trainer.json"
  version=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["slmdesk"])' < "$addon/trainer.json")
  echo "build: $addon ($(size "$addon"), built in $(( $(date +%s) - started )) s), slmdesk $version"
  echo "build: $(cat "$addon/trainer.json")"
  if [ "$archive" = 1 ]; then
    pack slmdesk-trainer "$dist/slmdesk-trainer-$version-$os-$(uname -m)"
  fi
  echo "build: done in $(( $(date +%s) - started )) s"
}
if [ "$trainer" = 1 ]; then
  build_trainer
  exit 0
fi

# llama.cpp for any CPU of this architecture: pip compiled the venv's copy for this machine's
# processor (-march=native; an AVX-512 build machine would make an app that crashes on AVX2
# CPUs), so an x86-64 app bundles llama.cpp built as its own releases are, one CPU backend per
# instruction-set level, the best picked at run time (packaging/build-cpu-variants.sh, cached).
# A GPU build (build-gpu.sh) sets SLMDESK_LLAMA_LIB to its GPU libraries instead.
if [ -z "${SLMDESK_LLAMA_LIB:-}" ]; then
  case "$(uname -m)" in
    x86_64|AMD64|amd64)
      SLMDESK_LLAMA_LIB=$(PYTHON=$PYTHON "$root/packaging/build-cpu-variants.sh")
      export SLMDESK_LLAMA_LIB ;;
  esac
fi
echo "build: llama.cpp libraries from ${SLMDESK_LLAMA_LIB:-the venv}"

started=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$dist" --workpath "$work" packaging/slmdesk.spec
app=$dist/slmdesk
[ "$os" = linux ] && cp packaging/install-desktop-entry.sh "$app/"

# Refuse a bundle that could not run: the native llama.cpp libraries must be inside.
has_llama() { for f in "$1"/libllama.* "$1"/llama.dll; do [ -e "$f" ] && return 0; done; return 1; }
lib=$app/_internal/llama_cpp
has_llama "$lib/lib" || {
  echo "build: FAILED: llama_cpp/lib/libllama.* (llama.dll) is missing from the bundle" >&2; exit 1; }
# ... and the trainer's libraries must not: they are the add-on's (--trainer).
for heavy in torch transformers peft; do
  [ ! -e "$app/_internal/$heavy" ] || {
    echo "build: FAILED: _internal/$heavy is in the bundle; it belongs to the trainer add-on" >&2; exit 1; }
done
if [ -n "${SLMDESK_CPU_LIB:-}" ]; then
  has_llama "$lib/lib-cpu" || {
    echo "build: FAILED: SLMDESK_CPU_LIB is set but llama_cpp/lib-cpu/ has no libllama" >&2; exit 1; }
fi

version=$("$app/$exe" --version | awk '{print $2}' | tr -d '\r')
echo "build: $app ($(size "$app"), built in $(( $(date +%s) - started )) s), slmdesk $version"
# Which llama.cpp backend the bundle runs on this machine (a GPU build on a machine without
# the GPU runtime says so and runs on its CPU copy).
probe_home=$(mktemp -d)
SLMDESK_HOME=$probe_home "$app/$exe" doctor 2>/dev/null | grep -E '^backend:|^  (note|problem):' \
  | sed 's/^/build: /' || true
rm -rf "$probe_home"
[ "$os" = macos ] && echo "build: $dist/slmdesk.app ($(size "$dist/slmdesk.app"))"

if [ "$archive" = 1 ]; then
  arch=$(uname -m)
  suffix=${variant:+-$variant}$([ "${SLMDESK_BUNDLE_MODEL:-1}" = 0 ] && echo "-nomodel" || true)
  base=$dist/slmdesk-$version-$os-$arch$suffix
  if [ "$os" = macos ]; then
    # ditto keeps the bundle's symlinks and signatures; notarytool accepts the zip.
    ditto -c -k --sequesterRsrc --keepParent "$dist/slmdesk.app" "$base.zip"
    echo "build: $base.zip ($(size "$base.zip"))"
  else
    pack slmdesk "$base"
  fi
fi
echo "build: done in $(( $(date +%s) - started )) s"
