"""Viewer benchmark: 3 characters of 23 joints at 1280x720 through the studio's own render path.

Runs under the current X display, or starts a private Xvfb (Mesa llvmpipe, software OpenGL) when there is
none. Reports, per configuration:
- render path: ``ViewerWidget.paintGL`` (our instance maths + GL calls) then ``glFinish`` so llvmpipe's
  rasterisation is included -> frames per second it can sustain;
- CPU time per frame of our render path on the GUI thread (``time.thread_time`` around paintGL, without the
  glFinish wait; llvmpipe's own raster threads are not ours) and the wall time of paintGL;
- end to end: frames actually presented per second when the widget is redrawn as fast as Qt allows
  (``update()`` on every ``frameSwapped``), composition into the window included.
Configurations take turns (batches of 10 frames, 0.5 s slices) so load from other processes on a shared
machine hits them alike and their ratios stay meaningful.
Targets (issue 3): >= 60 fps and <= 4 ms CPU per frame. Prints a table and writes JSON.

    .venv/bin/python bench/viewer.py [--frames 300] [--json bench/results/viewer.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZE = (1280, 720)
TARGET_FPS, TARGET_CPU_MS = 60.0, 4.0

# A 23-joint humanoid (Bandai-like naming, cm): parents and rest offsets.
JOINTS = [
    ("Root", -1, (0, 0, 0)), ("Hips", 0, (0, 94, 0)), ("Spine", 1, (0, 12, 0)), ("Chest", 2, (0, 14, 0)),
    ("Neck", 3, (0, 20, 0)), ("Head", 4, (0, 10, 0)), ("HeadTop", 5, (0, 14, 0)),
    ("Shoulder_L", 3, (8, 16, 0)), ("UpperArm_L", 7, (12, 0, 0)), ("LowerArm_L", 8, (27, 0, 0)),
    ("Hand_L", 9, (24, 0, 0)),
    ("Shoulder_R", 3, (-8, 16, 0)), ("UpperArm_R", 11, (-12, 0, 0)), ("LowerArm_R", 12, (-27, 0, 0)),
    ("Hand_R", 13, (-24, 0, 0)),
    ("UpperLeg_L", 1, (9, -4, 0)), ("LowerLeg_L", 15, (0, -42, 0)), ("Foot_L", 16, (0, -40, 0)),
    ("Toes_L", 17, (0, -6, 12)),
    ("UpperLeg_R", 1, (-9, -4, 0)), ("LowerLeg_R", 19, (0, -42, 0)), ("Foot_R", 20, (0, -40, 0)),
    ("Toes_R", 21, (0, -6, 12)),
]
PARENTS = np.array([p for _, p, _ in JOINTS])
OFFSETS = np.array([o for _, _, o in JOINTS], float)


def walking_poses(frames: int, phase: float, x0: float) -> np.ndarray:
    """(T,23,3) global positions of a procedural walk: swinging limbs, bobbing hips, moving forward."""
    t = np.arange(frames) / 30.0
    pos = np.zeros((frames, len(JOINTS), 3))
    swing = np.sin(2 * np.pi * 1.0 * t + phase)
    for j, (name, p, off) in enumerate(JOINTS):
        off = np.broadcast_to(np.asarray(off, float), (frames, 3)).copy()
        if "Leg" in name or "Arm" in name and "Upper" not in name:
            side = 1 if name.endswith("_L") else -1
            a = 0.45 * swing * side * (-1 if "Arm" in name else 1)
            y, z = off[:, 1].copy(), off[:, 2].copy()
            off[:, 1] = y * np.cos(a) - z * np.sin(a)
            off[:, 2] = y * np.sin(a) + z * np.cos(a)
        pos[:, j] = off if p < 0 else pos[:, p] + off
    pos[:, :, 2] += (t * 120.0)[:, None]
    pos[:, 1:, 1] += 2.0 * np.abs(swing)[:, None]
    pos[:, :, 0] += x0
    return pos


def run_bench(frames: int, out_json: Path | None) -> dict:
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication(sys.argv[:1])
    load_before = os.getloadavg()
    from OpenGL import GL
    from rsmt_studio.viewer.renderer import CharacterFrame
    from rsmt_studio.viewer.widget import ViewerWidget

    colours = [(0.95, 0.55, 0.18), (0.25, 0.60, 0.95), (0.40, 0.80, 0.45)]
    clips = [walking_poses(frames, k * 1.3, (k - 1) * 90.0) for k in range(3)]
    radius = 170 * 0.018

    paths = [np.ascontiguousarray(c[:, 1]) for c in clips]  # one array per clip, as the scene keeps them

    def characters(i: int) -> list[CharacterFrame]:
        return [CharacterFrame(c[i % len(c)], PARENTS, colours[k], radius=radius, trajectory=paths[k],
                               contacts=c[i % len(c), [18, 22]]) for k, c in enumerate(clips)]

    configs = ((0, True), (4, True), (0, False))
    widgets = []
    for samples, shadows in configs:
        w = ViewerWidget(samples=samples)
        w.resize(*SIZE)
        w.prefs.show_shadows = shadows
        w.show()
        widgets.append(w)
    t_end = time.monotonic() + 10
    while not all(w.renderer.initialized for w in widgets) and time.monotonic() < t_end:
        QCoreApplication.processEvents()
        time.sleep(0.01)
    for w in widgets:
        w.set_characters(characters(0))
        w.frame_all()

    # 1) our render path, synchronously, with glFinish (llvmpipe rasterisation included). Configurations take
    #    turns in batches of 10 frames so a change in the shared machine's load hits them all alike.
    wall = [[] for _ in widgets]
    cpu = [[] for _ in widgets]
    finish = [[] for _ in widgets]
    batch = 10
    for b in range(frames // batch + 1):
        for k, w in enumerate(widgets):
            w.makeCurrent()
            for i in range(b * batch, (b + 1) * batch):
                w.characters = characters(i)
                t0, c0 = time.perf_counter(), time.thread_time()
                w.paintGL()
                t1, c1 = time.perf_counter(), time.thread_time()
                GL.glFinish()
                t2 = time.perf_counter()
                if b > 0:  # warm-up batch: llvmpipe compiles shader variants on first use
                    wall[k].append(t1 - t0)
                    cpu[k].append(c1 - c0)
                    finish[k].append(t2 - t0)
            w.doneCurrent()
    stats = [w.last_stats for w in widgets]

    # 2) end to end: redraw on every frameSwapped, count presented frames; configurations take turns (0.5 s each).
    presented = [0 for _ in widgets]
    spent = [0.0 for _ in widgets]
    for _round in range(4):
        for k, w in enumerate(widgets):
            def again(w=w, k=k) -> None:
                presented[k] += 1
                w.set_characters(characters(presented[k]))

            w.frameSwapped.connect(again)
            w.update()
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 0.5:
                QCoreApplication.processEvents()
            spent[k] += time.perf_counter() - t0
            w.frameSwapped.disconnect(again)
            QCoreApplication.processEvents()

    rows = []
    for k, (samples, shadows) in enumerate(configs):
        w = widgets[k]
        dpr = w.devicePixelRatioF()
        med = lambda xs: float(np.median(xs)) * 1000.0
        p95 = lambda xs: float(np.percentile(xs, 95)) * 1000.0
        rows.append({
            "msaa_samples": samples, "shadows": shadows, "frames": len(finish[k]),
            "viewport": [int(w.width() * dpr), int(w.height() * dpr)],
            "render_fps": 1000.0 / med(finish[k]), "render_plus_finish_ms_median": med(finish[k]),
            "render_plus_finish_ms_p95": p95(finish[k]),
            "cpu_ms_median": med(cpu[k]), "cpu_ms_p95": p95(cpu[k]), "paintgl_wall_ms_median": med(wall[k]),
            "end_to_end_fps": presented[k] / spent[k], "draw_calls": stats[k].draw_calls,
            "instances": stats[k].instances, "bytes_uploaded_per_frame": stats[k].bytes_uploaded,
        })
    w = widgets[0]

    result = {
        "benchmark": "viewer", "characters": 3, "joints": len(JOINTS), "size": list(SIZE),
        "gl_renderer": w.gl_renderer_name, "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "display": os.environ.get("DISPLAY", ""),
        "loadavg_1min_before_after": [load_before[0], os.getloadavg()[0]],
        "targets": {"fps_min": TARGET_FPS, "cpu_ms_max": TARGET_CPU_MS}, "rows": rows,
        "note": "Software OpenGL (llvmpipe) under Xvfb: a floor, not what a GPU desktop shows. CPU = GUI-thread "
                "CPU time of paintGL (instance maths + GL calls), without waiting for llvmpipe's raster threads.",
    }
    print_table(result)
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, out_json)
        print(f"wrote {out_json}")
    return result


def print_table(result: dict) -> None:
    print(f"\nViewer benchmark: {result['characters']} characters x {result['joints']} joints at "
          f"{result['size'][0]}x{result['size'][1]}, {result['gl_renderer']}")
    head = (f"{'MSAA':>4} {'shadows':>7} | {'render fps':>10} {'render+finish ms':>16} | {'CPU ms':>7} "
            f"{'CPU p95':>7} | {'end-to-end fps':>14} | {'draws':>5} {'bytes/frame':>11} | {'targets':>8}")
    print(head)
    print("-" * len(head))
    for r in result["rows"]:
        ok = r["render_fps"] >= TARGET_FPS and r["cpu_ms_median"] <= TARGET_CPU_MS
        print(f"{r['msaa_samples']:>4} {r['shadows']!s:>7} | {r['render_fps']:>10.1f} "
              f"{r['render_plus_finish_ms_median']:>16.2f} | {r['cpu_ms_median']:>7.2f} {r['cpu_ms_p95']:>7.2f} | "
              f"{r['end_to_end_fps']:>14.1f} | {r['draw_calls']:>5} {r['bytes_uploaded_per_frame']:>11} | "
              f"{'met' if ok else 'MISSED':>8}")
    print(f"targets: >= {TARGET_FPS:.0f} fps, <= {TARGET_CPU_MS:.0f} ms CPU per frame (median); "
          f"machine load (1 min) before/after: {result['loadavg_1min_before_after'][0]:.1f}/"
          f"{result['loadavg_1min_before_after'][1]:.1f} on {result['cpus']} CPUs")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--json", type=Path, default=Path("bench/results/viewer.json"))
    args = ap.parse_args()
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            print("no display and no xvfb-run: install xvfb", file=sys.stderr)
            return 2
        print("no display: running under a private Xvfb (Mesa llvmpipe)")
        return subprocess.call([xvfb, "-a", "-s", "-screen 0 1920x1080x24 +extension GLX", sys.executable,
                                *sys.argv])
    run_bench(args.frames, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
