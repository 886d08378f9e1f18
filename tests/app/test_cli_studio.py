"""`rsmt-studio FILE --screenshot OUT.png` through real subprocesses, with a display and without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from rsmt_studio.viewer.pixels import hue_mask, image_to_rgb

pytestmark = pytest.mark.gui
ORANGE = (0.95, 0.55, 0.18)  # first palette colour


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", *args], env=env, capture_output=True, check=False,
                          text=True, timeout=timeout)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, RSMT_STUDIO_CACHE_DIR=str(tmp_path / "cache"), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               RSMT_STUDIO_SETTINGS_DIR=str(tmp_path / "settings"))
    env.update(extra)
    return env


def test_screenshot_of_a_bandai_clip(tmp_path, bandai_clip):
    out = tmp_path / "shot.png"
    proc = _run([str(bandai_clip), "--screenshot", str(out)], _env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1280, 720)
    assert hue_mask(image_to_rgb(img), ORANGE).sum() > 500  # the skeleton is in the picture


def test_viewport_screenshot_and_broken_file_exit_code(tmp_path, bandai_clip):
    bad = tmp_path / "bad.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n")
    out = tmp_path / "view.png"
    proc = _run([str(bandai_clip), str(bad), "--screenshot", str(out), "--screenshot-what", "viewport"],
                _env(tmp_path))
    assert proc.returncode == 1
    assert "bad.bvh" in proc.stderr  # the problem, naming the file, on stderr
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1280, 720)
    assert hue_mask(image_to_rgb(img), ORANGE).sum() > 2000


def test_without_a_display_it_runs_headless_and_says_where_the_output_is(tmp_path, bandai_clip):
    env = _env(tmp_path)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = _run([str(bandai_clip)], env)
    assert proc.returncode == 0, proc.stderr
    assert "no display found" in proc.stdout
    expected = tmp_path / "xdg" / "rsmt-studio" / "studio-screenshot.png"
    assert str(expected) in proc.stdout and expected.is_file()
    assert QImage(str(expected)).width() == 1280


def test_variants_screenshot_shows_four_styles_beside_the_transition(tmp_path):
    from rsmt_studio.app.qt.variants_panel import VARIANT_COLOURS

    out = tmp_path / "variants.png"
    proc = _run(["--screenshot", str(out), "--screenshot-what", "variants"], _env(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if " variants: " in ln)
    assert line.startswith("rsmt-studio: 4 variants: target's style · seed 0, ")
    assert "8 clip(s)" in proc.stdout  # the default scene's four and the four variants
    rgb = image_to_rgb(QImage(str(out)))
    for colour in VARIANT_COLOURS[:4]:  # each variant's skeleton is drawn in its swatch colour
        assert hue_mask(rgb, colour).sum() > 1000, colour  # the scene without variants: under 400 each
