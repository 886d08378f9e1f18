"""`rsmt-studio [FILE.bvh ...] [--screenshot OUT.png]`: the studio window.

Without a display (no DISPLAY / WAYLAND_DISPLAY) the same job runs under a private Xvfb: the window is
rendered off-screen with real OpenGL (Mesa llvmpipe) and a screenshot is written, with a message saying
where. ``--screenshot`` renders the first frame at 1280x720, writes the PNG and exits (tests, docs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IN_XVFB_ENV = "RSMT_STUDIO_IN_XVFB"
SCREENSHOT_SIZE = (1280, 720)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rsmt-studio", description="Open the rsmt-studio window.")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE.bvh", help="clips (or folders) to open")
    p.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="render the first frame at 1280x720, write it as PNG and exit")
    p.add_argument("--screenshot-what", choices=("window", "viewport", "latency", "profile", "phases", "variants"),
                   default="window",
                   help="capture the whole window (default), only the 3D viewport, the latency panel (`profile`: "
                        "after its Profile step), the phase panel, or the window with four style variants of the "
                        "transition beside it")
    p.add_argument("--export", type=Path, metavar="OUT.bvh",
                   help="with --screenshot: also write the stitched source->transition->target BVH")
    p.add_argument("--frame", type=int, default=0, help="frame to show in the screenshot (default 0)")
    return p


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def default_headless_output() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("rsmt-studio")) / "studio-screenshot.png"


def run_under_xvfb(argv: list[str]) -> int:
    """Re-run this command inside a private X server (xvfb-run) so OpenGL works without a screen."""
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        print("rsmt-studio: no display and no xvfb-run; install the 'xvfb' package "
              "(make setup does, as root) or run on a desktop.", file=sys.stderr)
        return 2
    w, h = 1920, 1080
    cmd = [xvfb_run, "-a", "-s", f"-screen 0 {w}x{h}x24 +extension GLX",
           sys.executable, "-m", "rsmt_studio.app.cli.studio", *argv]
    env = dict(os.environ, **{IN_XVFB_ENV: "1"})
    return subprocess.call(cmd, env=env)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if not has_display() and os.environ.get(IN_XVFB_ENV) != "1":
        if args.screenshot is None:
            out = default_headless_output()
            print("rsmt-studio: no display found (DISPLAY and WAYLAND_DISPLAY are unset), so no window can open.\n"
                  "Rendering the studio headless under a private Xvfb instead (real OpenGL, software Mesa);\n"
                  f"the screenshot will be written to {out}")
            argv += ["--screenshot", str(out)]
            if not args.files and args.export is None:  # the default scene's transition, as BVH too
                bvh = out.with_name("default-transition.bvh")
                print(f"and the default scene's stitched transition to {bvh}")
                argv += ["--export", str(bvh)]
        return run_under_xvfb(argv)
    return _run_gui(args)


def _run_gui(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("rsmt-studio")
    QCoreApplication.setApplicationName("rsmt-studio")
    app = QApplication.instance() or QApplication(sys.argv[:1])

    from PySide6.QtCore import QSize
    from rsmt_studio.app.qt.dialogs import ErrorReporter
    from rsmt_studio.app.qt.main_window import VIEWPORT_SHOT_SIZE, MainWindow
    from rsmt_studio.app.qt.transition_panel import install as install_authoring

    if args.screenshot is None:
        window = MainWindow()
        install_authoring(window)
        _open_initial(window, args.files)
        window.show()
        return app.exec()

    # Screenshot mode: reproducible layout (fresh settings in a temp dir), errors printed, no dialogs.
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rsmt-studio-shot-") as tmp:
        settings = QSettings(str(Path(tmp) / "studio.ini"), QSettings.Format.IniFormat)
        reporter = ErrorReporter(show_dialogs=False, sink=lambda e: errors.append(e.message))
        window = MainWindow(settings=settings, error_reporter=reporter)
        from rsmt_studio.app.models.session import Autosaver
        from rsmt_studio.inference.runtime.compiler import print_progress

        studio = install_authoring(window, autosave=Autosaver(Path(tmp) / "autosave.json"))
        studio.recover_on_start = False  # a picture of what was asked for, not of a recovered session
        studio.model.progress.connect(lambda ev: ev.get("event") != "phases_failed" and print_progress(ev))
        window.resize(*SCREENSHOT_SIZE)
        window.show()
        shown = time.perf_counter()
        _open_initial(window, args.files)
        if not window.wait_idle(120.0):
            print("rsmt-studio: loading did not finish within 120 s", file=sys.stderr)
        frame = args.frame
        if studio.model.ready:
            result = studio.wait_transition(600.0)
            if result is None:
                print(f"rsmt-studio: no transition: {studio.model.last_error or 'timed out'}", file=sys.stderr)
            else:
                print(f"rsmt-studio: first transition ready {time.perf_counter() - shown:.1f} s after the window "
                      "opened (engine start included)")
                if args.frame == 0:  # show the middle of the transition
                    frame = (result.regions[1][0] + result.regions[1][1]) // 2
                if args.export is not None:
                    studio.export(args.export, "stitched", confirm=lambda _p: True)
                    print(f"rsmt-studio: wrote {args.export} (source -> transition -> target, "
                          f"{result.stitched().num_frames} frames)")
        if args.screenshot_what == "variants" and studio.model.result is not None:
            shown_variants = _show_variants(app, studio)
            print(f"rsmt-studio: {len(shown_variants)} variants: " + ", ".join(v.label for v in shown_variants))
        window.playback.seek(frame)
        if window.scene.characters and window.scene.characters[0].clip is not None:
            window.library_widget.reveal(window.scene.characters[0].clip.source_path)
        window.refresh_view()
        window.viewer.frame_characters()
        app.processEvents()
        if args.screenshot_what in ("latency", "profile", "phases"):
            from rsmt_studio.app.qt.screenshots import save_image_atomic

            if args.screenshot_what in ("latency", "profile"):
                for seed in range(1, 9):  # a few more transitions so the rolling plot has a history
                    studio.undo.edit(seed=seed)
                    studio.wait_transition(120.0)
                if args.screenshot_what == "profile" and studio.model.ready:
                    _show_profile(app, studio)
                dock = studio.latency_dock
            else:
                dock = studio.phase_dock
                studio.phase_view.set_frame(frame)
            dock.setFloating(True)  # undocked at a readable size for the picture
            dock.resize(900, 900 if args.screenshot_what == "profile" else 560)
            dock.show()
            studio.latency.refresh()
            for _ in range(5):
                app.processEvents()
            out = Path(args.screenshot)
            save_image_atomic(dock.grab().toImage(), out)
            size = dock.size()
        else:
            what = "window" if args.screenshot_what == "variants" else args.screenshot_what
            out = window.save_screenshot(args.screenshot, what)
            size = window.size() if what == "window" else QSize(*VIEWPORT_SHOT_SIZE)
        window.close()
        studio.shutdown()
    for msg in errors:
        print(f"rsmt-studio: {msg}", file=sys.stderr)
    if not window.scene.characters:
        print("rsmt-studio: the scene is empty; give clips to show, e.g. rsmt-studio FILE.bvh --screenshot OUT.png")
    print(f"rsmt-studio: wrote {out} ({size.width()}x{size.height()}, frame {window.playback.frame}, "
          f"{len(window.scene.characters)} clip(s))")
    return _exit_now(1 if errors else 0)


def _show_variants(app, studio, count: int = 4, timeout_s: float = 300.0) -> list:
    """The Variants panel's "styles" mode for `count` styles, and wait (events flowing) until they are in the scene:
    the picture shows what the style choice does, side by side."""
    panel = studio.variants_panel
    panel.mode.setCurrentIndex(panel.mode.findData("styles"))
    panel.count.setValue(count)
    shown: list = []
    failed: list = []
    panel.variants_shown.connect(shown.extend)
    panel.model.variants_failed.connect(failed.append)
    studio.variants_button.click()
    end = time.perf_counter() + timeout_s
    while not shown and not failed and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)
    for msg in failed:
        print(f"rsmt-studio: variants failed: {msg}", file=sys.stderr)
    return shown


def _show_profile(app, studio, timeout_s: float = 1800.0) -> None:
    """Click the latency panel's "Profile step" and wait (events flowing) until the breakdown is shown, or the run
    ends without one (its message stays in the panel); the first time it compiles the profiling graph."""
    panel = studio.latency
    done: list = []
    for event in (panel.profiler.profile_ready, panel.profiler.profile_failed, panel.profiler.profile_unavailable,
                  panel.profiler.profile_cancelled):
        event.connect(lambda *a: done.append(a))
    panel.profile_button.click()
    end = time.perf_counter() + timeout_s
    while not done and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)
    print(f"rsmt-studio: step profile: {panel.profile_status.text() or 'shown'}")


def _exit_now(code: int) -> int:
    """Leave without interpreter teardown once every output is written (atomically) and the engine worker has
    quit: MAX's own atexit hook otherwise prints "Unbalanced Context enter/exit" on the way out."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _open_initial(window, files: list[Path]) -> None:
    if files:
        window.open_paths([Path(f) for f in files], replace=True)
    else:
        window.open_default_scene()


if __name__ == "__main__":
    sys.exit(main())
