#!/usr/bin/env bash
# Build the installable app: dist/slmdesk/ (run dist/slmdesk/slmdesk) and dist/slmdesk-<version>-<os>-<arch>.tar.xz.
#   packaging/build.sh [--no-model] [--dist DIR] [--no-archive]
# Environment: PYTHON (default .venv/bin/python), SLMDESK_BUNDLE_MODEL=0 (same as --no-model),
# XZ_OPT (xz options; default level 6).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-$root/.venv/bin/python}
dist=$root/dist
work=$root/build/pyinstaller
archive=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-model) export SLMDESK_BUNDLE_MODEL=0 ;;
    --dist) dist=$(mkdir -p "$2" && cd "$2" && pwd); work=$dist/.work; shift ;;
    --no-archive) archive=0 ;;
    *) sed -n '2,5p' "$0" >&2; exit 2 ;;
  esac
  shift
done
"$PYTHON" -c "import PyInstaller" 2>/dev/null || { echo "build: PyInstaller is not installed (./dev setup)" >&2; exit 1; }

started=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$dist" --workpath "$work" packaging/slmdesk.spec
app=$dist/slmdesk
cp packaging/install-desktop-entry.sh "$app/"

# Refuse a bundle that could not run: the native llama.cpp libraries must be inside.
ls "$app"/_internal/llama_cpp/lib/libllama.* >/dev/null 2>&1 || {
  echo "build: FAILED: llama_cpp/lib/libllama.* is missing from the bundle" >&2; exit 1; }

version=$("$app/slmdesk" --version | awk '{print $2}')
size() { du -sh "$1" | cut -f1; }
echo "build: $app ($(size "$app"), built in $(( $(date +%s) - started )) s), slmdesk $version"
if [ "$archive" = 1 ]; then
  os=$(uname -s | tr '[:upper:]' '[:lower:]'); arch=$(uname -m)
  suffix=$([ "${SLMDESK_BUNDLE_MODEL:-1}" = 0 ] && echo "-nomodel" || true)
  tarball=$dist/slmdesk-$version-$os-$arch$suffix.tar.xz
  tar -C "$dist" -cf - slmdesk | xz -T0 > "$tarball"  # XZ_OPT=-3 for a faster, larger archive
  echo "build: $tarball ($(size "$tarball"))"
fi
echo "build: done in $(( $(date +%s) - started )) s"
