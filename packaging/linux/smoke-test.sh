#!/usr/bin/env bash
# Smoke test of the Linux bundle (issue #15): unpack the tarball into a fresh folder and, with empty caches and
# a minimal environment (no venv, no checkout on any path), check that
#   1. the bundled Python, its libpython and the installed wheel are what runs (not the build machine's);
#   2. `rsmt-studio generate` writes a transition of the default scene, from the shipped compiled models
#      (nothing compiled);
#   3. the studio starts headless (it re-runs itself under Xvfb) and writes its screenshot.
# Prints the unpack / generate / studio times. Usage: packaging/linux/smoke-test.sh [TARBALL]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TARBALL=${1:-$REPO/build/bundle/rsmt-studio-linux-x86_64.tar.zst}
T=$(mktemp -d /tmp/rsmt-bundle-smoke.XXXXXX)
trap 'rm -rf "$T"' EXIT
now() { date +%s.%N; }
secs() { printf '%.1f' "$(echo "$2 - $1" | bc)"; }

t=$(now); tar -I zstd -xf "$TARBALL" -C "$T"; t_unpack=$(secs "$t" "$(now)")
APP="$T/rsmt-studio"
mkdir -p "$T/home" "$T/work"
CACHE=1  # each step starts on its own empty caches (rsmt-studio's MEFs and clips, MAX's kernel caches)
run() { (cd "$T/work" && env -i HOME="$T/home" PATH=/usr/bin:/bin LANG=C.UTF-8 XDG_CACHE_HOME="$T/cache$CACHE" \
          MODULAR_CACHE_DIR="$T/modular$CACHE" "$@"); }

echo "== 1. the bundle's own python, libpython and app"
run env LD_LIBRARY_PATH="$APP/python/lib:$APP/lib" "$APP/python/bin/python3" -c "
import sys, rsmt_studio.inference.engine as e, max.engine as me, PySide6
maps = open('/proc/self/maps').read()
assert '$APP/python/lib/libpython' in maps, 'libpython not from the bundle'
assert sys.prefix.startswith('$APP/'), sys.prefix
for m in (e, me, PySide6):
    assert m.__file__.startswith('$APP/'), m.__file__
print('prefix', sys.prefix, 'app', e.__file__)"

echo "== 2. generate a transition (empty caches)"
SCENE=$(ls -d "$APP"/python/lib/python3*/site-packages/rsmt_studio/assets/default_scene)
t=$(now)
run "$APP/rsmt-studio" generate --source "$SCENE/generated_walk_proud.bvh" --source-frame 60 \
    --target "$SCENE/generated_walk_tired.bvh" --target-frame 40 --style tired --frames 40 --device cpu --seed 0 \
    --out "$T/work/transition.bvh" 2> "$T/generate.err" | tee "$T/generate.out"
t_generate=$(secs "$t" "$(now)")
cat "$T/generate.err"
grep -q "shipped compiled model installed" "$T/generate.err"
! grep -q "compiling" "$T/generate.err"
test -s "$T/work/transition.bvh"

echo "== 3. the studio, headless (Xvfb), default scene -> screenshot (empty caches again)"
CACHE=3
t=$(now)
run "$APP/rsmt-studio" --screenshot "$T/work/studio.png" --export "$T/work/stitched.bvh"
t_studio=$(secs "$t" "$(now)")
test -s "$T/work/studio.png" && test -s "$T/work/stitched.bvh"

echo "bundle smoke test passed: tarball $(du -h "$TARBALL" | cut -f1), unpacked $(du -sh "$APP" | cut -f1);" \
     "unpack ${t_unpack} s, generate ${t_generate} s, studio to screenshot ${t_studio} s (both on empty caches)"
