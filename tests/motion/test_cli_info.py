"""`rsmt-studio info` through a real subprocess: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", "info", *map(str, args)],
                          check=False, capture_output=True, text=True, timeout=120, env=env)


def test_info_on_valid_files(bvh_file, tiny_bvh):
    path = bvh_file(tiny_bvh, name="dataset-1_walk_happy_003.bvh")
    proc = _run(path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "joints     2 (root Hips, 1 End Sites)" in out
    assert "channels   9 per frame" in out
    assert "frames     2 at 30 fps = 0.033 s" in out
    assert "labels     style happy, content walk" in out
    proc = _run("--json", "--joints", path)
    info = json.loads(proc.stdout)
    assert info["frames"] == 2 and info["fps"] == 30.0 and info["joints"] == 2
    assert info["joint_list"][1] == {"name": "Spine", "parent": "Hips",
                                     "channels": ["Zrotation", "Xrotation", "Yrotation"]}


def test_info_invalid_files_exit_2_with_one_line_each(bvh_file, tiny_bvh, tmp_path):
    good = bvh_file(tiny_bvh)
    short = bvh_file(tiny_bvh.replace("Frames: 2", "Frames: 3"))
    binary = bvh_file(b"\x00\x01\x02")
    proc = _run(good, short, binary, tmp_path / "missing.bvh")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"rsmt-studio info: {short}:21: expected 3 rows of motion data (Frames: 3), found only 2 rows",
        f"rsmt-studio info: {binary}:1: expected a text BVH file, found binary data (NUL byte at offset 0)",
        f"rsmt-studio info: {tmp_path / 'missing.bvh'}: expected a readable file, found No such file or directory",
    ]
    assert str(good) in proc.stdout  # the valid file is still described


def test_info_on_a_real_bandai_file(bandai_root: Path):
    path = next(bandai_root.rglob("dataset-2_run_*.bvh"))
    proc = _run(path)
    assert proc.returncode == 0, proc.stderr
    assert "joints     22 (root joint_Root, 5 End Sites)" in proc.stdout
    assert "22x [Xposition Yposition Zposition Zrotation Xrotation Yrotation]" in proc.stdout
    assert "content run" in proc.stdout


@pytest.mark.parametrize("argv", [[], ["--bogus"]])
def test_info_usage_errors(argv):
    proc = _run(*argv)
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr


def test_info_on_a_folder(tmp_path, tiny_bvh):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bvh").write_text(tiny_bvh)
    (tmp_path / "sub" / "b.bvh").write_text(tiny_bvh.replace("Frames: 2", "Frames: 5"))
    (tmp_path / "empty").mkdir()
    proc = _run(tmp_path, tmp_path / "empty")
    assert proc.returncode == 2
    assert str(tmp_path / "a.bvh") in proc.stdout
    assert proc.stderr.strip().splitlines() == [
        (f"rsmt-studio info: {tmp_path / 'sub' / 'b.bvh'}:21: expected 5 rows of motion data (Frames: 5), "
         "found only 2 rows"),
        f"rsmt-studio info: {tmp_path / 'empty'}: expected a BVH file, found a directory",
    ]
