"""Sessions (atomic save, bad files, SIGKILL during autosave), undo/redo, BVH export and re-import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.app.models.authoring import AuthoringModel, AuthoringParams
from rsmt_studio.app.models.export import export_bvh
from rsmt_studio.app.models.session import Autosaver, Session, SessionError, load_session, save_session
from rsmt_studio.motion import read_bvh


def test_session_round_trip(tmp_path):
    s = Session(AuthoringParams(source="/a.bvh", source_frame=20, target="/b.bvh", target_frame=5, style="@source",
                                length=33, seed=7), ["/a.bvh", "/b.bvh"])
    path = save_session(s, tmp_path / "s.json")
    back = load_session(path)
    assert back.params == s.params and back.clips == s.clips
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_bad_session_files_name_the_file_line_and_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "rsmt-studio-session/1",\n "params": {,}}')
    with pytest.raises(SessionError, match=r"bad\.json:2: invalid JSON"):
        load_session(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SessionError, match="not an rsmt-studio session"):
        load_session(other)
    with pytest.raises(SessionError, match="cannot read"):
        load_session(tmp_path / "missing.json")


AUTOSAVE_LOOP = r"""
import sys
from rsmt_studio.app.models.authoring import AuthoringParams
from rsmt_studio.app.models.session import Autosaver, Session
saver = Autosaver(sys.argv[1])
clips = [f"/data/clip_{i:04d}.bvh" for i in range(2000)]  # a big session: each write takes a while
i = 0
print("ready", flush=True)
while True:
    i += 1
    saver.save(Session(AuthoringParams(source=clips[0], target=clips[1], source_frame=9 + i % 50, seed=i), clips))
"""


def test_killing_the_app_during_autosave_leaves_a_valid_session(tmp_path):
    """SIGKILL a real process that autosaves in a loop, at many moments; the file is always whole."""
    path = tmp_path / "autosave.json"
    seen = set()
    for k in range(12):
        proc = subprocess.Popen([sys.executable, "-c", AUTOSAVE_LOOP, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.037 * k)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        if not path.exists():  # killed before the first write finished: nothing half-written either
            assert not list(tmp_path.glob("autosave.json"))
            continue
        s = load_session(path)  # raises on a torn file
        assert len(s.clips) == 2000
        seen.add(s.params.seed)
    assert len(seen) >= 3, "the loop should have been killed at different points"


def test_undo_redo_of_parameter_edits(qtbot, worker_pool, scene_clips):
    from rsmt_studio.app.models.session import make_undo_stack

    m = AuthoringModel(worker_pool, debounce_s=10.0)  # no generation needed here
    try:
        a, b = scene_clips
        m.add_clip(a, "a")
        m.add_clip(b, "b")
        m.set_params(source="a", target="b", source_frame=50, length=40, regenerate=False)
        stack = make_undo_stack(m)
        stack.edit(length=30)
        stack.edit(length=25)  # same field: merges into one step
        stack.edit(seed=5)
        assert (m.params.length, m.params.seed) == (25, 5)
        assert stack.count() == 2
        stack.undo()
        assert m.params.seed == 0 and m.params.length == 25
        stack.undo()
        assert m.params.length == 40
        stack.redo()
        stack.redo()
        assert (m.params.length, m.params.seed) == (25, 5)
    finally:
        m.close()


@pytest.fixture(scope="module")
def result(worker_pool, scene_clips):
    m = AuthoringModel(worker_pool, debounce_s=0.0)
    a, b = scene_clips
    m.add_clip(a, str(a.source_path))
    m.add_clip(b, str(b.source_path))
    m.set_params(source=str(a.source_path), target=str(b.source_path), source_frame=60, target_frame=40, length=40)
    r = m.wait(timeout_s=120)
    m.close()
    assert r is not None, m.last_error
    return r


@pytest.mark.parametrize("what", ["transition", "stitched"])
def test_exported_bvh_reimports_to_the_same_joint_positions(result, tmp_path, what):
    path = export_bvh(result, tmp_path / f"{what}.bvh", what)
    back = read_bvh(path)
    clip = result.transition if what == "transition" else result.stitched()
    assert back.skeleton.names == result.source.skeleton.names  # on the source skeleton
    assert back.num_frames == clip.num_frames and back.fps == clip.fps
    err = np.abs(back.fk()[0] - clip.fk()[0]).max()
    assert err < 1e-4, f"re-imported joint positions differ by {err} cm"


def test_export_confirms_before_overwriting(result, tmp_path):
    path = tmp_path / "t.bvh"
    path.write_text("keep me")
    with pytest.raises(FileExistsError):
        export_bvh(result, path)
    asked = []
    assert export_bvh(result, path, confirm=lambda p: asked.append(p) or False) is None
    assert asked == [path] and path.read_text() == "keep me"
    assert export_bvh(result, path, confirm=lambda p: True) == path
    assert read_bvh(path).num_frames == 40


def test_autosaver_discard(tmp_path):
    saver = Autosaver(tmp_path / "a.json")
    saver.save(Session(AuthoringParams(source="x"), ["x"]))
    assert Path(saver.path).is_file()
    saver.discard()
    saver.discard()
    assert not Path(saver.path).exists()
