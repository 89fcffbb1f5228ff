#!/bin/sh
# Add slmdesk to the desktop's application menu (for this user), pointing at this folder.
# Run it from the unpacked bundle: ./install-desktop-entry.sh   (undo: --remove)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/_internal" ] && res="$here/_internal/share" || res="$here/share"
apps=${XDG_DATA_HOME:-$HOME/.local/share}/applications
icons=${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor
if [ "${1:-}" = --remove ]; then
  rm -f "$apps/slmdesk.desktop" "$icons/256x256/apps/slmdesk.png" "$icons/scalable/apps/slmdesk.svg"
  exit 0
fi
mkdir -p "$apps" "$icons/256x256/apps" "$icons/scalable/apps"
cp "$res/icons/slmdesk.png" "$icons/256x256/apps/slmdesk.png"
cp "$res/icons/slmdesk.svg" "$icons/scalable/apps/slmdesk.svg"
sed "s|^Exec=.*|Exec=\"$here/slmdesk\"|" "$res/applications/slmdesk.desktop" > "$apps/slmdesk.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$apps" || true
echo "installed $apps/slmdesk.desktop"
