#!/bin/sh
# Register this unpacked bundle with the desktop for the current user: a .desktop entry whose Exec is this
# folder's launcher (absolute: desktop entries need it), and the icon. Run again after moving the folder.
set -eu
HERE=$(dirname "$(readlink -f "$0")")
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$DATA/applications" "$DATA/icons/hicolor/256x256/apps"
cp "$HERE/share/icons/hicolor/256x256/apps/rsmt-studio.png" "$DATA/icons/hicolor/256x256/apps/"
sed "s|^Exec=rsmt-studio|Exec=\"$HERE/rsmt-studio\"|" "$HERE/share/applications/rsmt-studio.desktop" \
  > "$DATA/applications/rsmt-studio.desktop"
echo "installed $DATA/applications/rsmt-studio.desktop"
