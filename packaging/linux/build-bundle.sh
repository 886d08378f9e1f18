#!/usr/bin/env bash
# Build the relocatable Linux desktop bundle of rsmt-studio (issue #15): a tarball holding
#   rsmt-studio/python/       a copy of the CPython 3.11 the project's .venv was made from (stdlib + libpython;
#                             no site-packages, no test suite) with the UNMODIFIED wheels pip-installed into it
#                             (the app's wheel, with its weights, style bank, default scene and shipped compiled
#                             models, plus MAX, PySide6, numpy, ... as published)
#   rsmt-studio/lib/          the Qt xcb helper libraries that desktops often lack (libxcb-cursor0, xcb-util-*)
#   rsmt-studio/rsmt-studio   the launcher (finds its own folder; wherever the bundle was unpacked)
#   rsmt-studio/share/        a .desktop entry and the icon; install-desktop-entry.sh registers them for a user
# Nothing is frozen: MAX's wheel layout (max/, mojo/, modular/ side by side) must stay as installed
# (../shared/notes/max-compile-and-packaging.md §3.1).
#
# Usage: packaging/linux/build-bundle.sh [OUT_DIR]      (default build/bundle; `make bundle` runs it)
# Needs: network access to PyPI for the dependency wheels (cached in build/wheelhouse), the Debian xcb packages
# of the Makefile's DEB_PKGS, zstd.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mkdir -p "${1:-$REPO/build/bundle}" && cd "${1:-$REPO/build/bundle}" && pwd)
VPY="$REPO/.venv/bin/python"
PREFIX=${PYTHON_PREFIX:-$("$VPY" -c 'import sys; print(sys.base_prefix)')}
PYVER=$("$VPY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
APP="$OUT/rsmt-studio"
WHEELS="$REPO/build/wheelhouse"
t0=$(date +%s)

echo "== python $PYVER from $PREFIX"
rm -rf "$APP"
mkdir -p "$APP/python/bin" "$APP/python/lib" "$APP/lib" "$APP/share/applications" \
         "$APP/share/icons/hicolor/256x256/apps"
cp -a "$PREFIX/bin/python$PYVER" "$APP/python/bin/"
ln -s "python$PYVER" "$APP/python/bin/python3"
cp -a "$PREFIX"/lib/libpython"$PYVER".so* "$APP/python/lib/"
# The standard library only: its site-packages (whatever was installed there) and its test suite stay behind.
tar -C "$PREFIX/lib" --exclude="python$PYVER/site-packages/*" --exclude="python$PYVER/test" \
    --exclude="python$PYVER/idlelib" --exclude="python$PYVER/tkinter" --exclude="python$PYVER/turtledemo" \
    --exclude='__pycache__' -cf - "python$PYVER" | tar -C "$APP/python/lib" -xf -

echo "== wheels"
mkdir -p "$WHEELS"
rm -f "$WHEELS"/rsmt_studio-*.whl
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
# Build from a copy so the checkout gets no build/lib; only what a wheel is made of.
tar -C "$REPO" --exclude=./.venv --exclude=./.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude='__pycache__' --exclude=./tests --exclude=./bench/results --exclude=./out -cf - . | tar -C "$src" -xf -
"$VPY" -m pip wheel -q --no-deps --no-build-isolation --no-index -w "$WHEELS" "$src"
app_wheel=$(ls "$WHEELS"/rsmt_studio-*.whl)
# The dependencies as published on PyPI (cached; a second build is offline).
"$VPY" -m pip download -q --only-binary=:all: -d "$WHEELS" "$app_wheel" 2>&1 | grep -v "is ignored" || true
"$VPY" -m pip --python "$APP/python/bin/python$PYVER" install -q --no-index --find-links "$WHEELS" \
    --no-warn-script-location "$app_wheel"

echo "== Qt xcb libraries"
for lib in libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-image.so.0 libxcb-keysyms.so.1 libxcb-randr.so.0 \
           libxcb-render-util.so.0 libxcb-shape.so.0 libxcb-xinerama.so.0 libxcb-xkb.so.1 libxkbcommon-x11.so.0 \
           libxcb-util.so.1; do
  path=/usr/lib/x86_64-linux-gnu/$lib
  [ -e "$path" ] || { echo "missing $path (install the Makefile's DEB_PKGS)" >&2; exit 1; }
  cp -L "$path" "$APP/lib/$lib"
done

echo "== launcher, desktop entry, icon"
cat > "$APP/rsmt-studio" <<'EOF'
#!/bin/sh
# rsmt-studio launcher: runs the bundled Python from wherever this folder was unpacked.
HERE=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$HERE/python/lib:$HERE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PYTHONNOUSERSITE=1
export LD_LIBRARY_PATH PYTHONNOUSERSITE
unset PYTHONHOME PYTHONPATH
exec "$HERE/python/bin/python3" -m rsmt_studio.app.cli "$@"
EOF
chmod +x "$APP/rsmt-studio"
cp "$REPO/packaging/linux/rsmt-studio.desktop" "$APP/share/applications/"
cp "$REPO/packaging/linux/rsmt-studio.png" "$APP/share/icons/hicolor/256x256/apps/"
cp "$REPO/packaging/linux/install-desktop-entry.sh" "$APP/"
cp "$REPO/LICENSE" "$APP/LICENSE"
cp "$REPO/assets/LICENSE-ASSETS.md" "$APP/LICENSE-ASSETS.md"
# pip's console scripts hold this build's absolute path: the launcher above is the way in.
rm -f "$APP"/python/bin/rsmt-studio

echo "== tarball"
tarball="$OUT/rsmt-studio-linux-x86_64.tar.zst"
tar -C "$OUT" -I 'zstd -q -T0 -8' -cf "$tarball.tmp" rsmt-studio
mv -f "$tarball.tmp" "$tarball"
echo "bundle: $APP ($(du -sh "$APP" | cut -f1) unpacked), $tarball ($(du -h "$tarball" | cut -f1)), built in $(( $(date +%s) - t0 )) s"
