"""Rig mapping in the studio (issue 13): the properties dock's one-line status, the Mapping dialog on real files
of other rigs (roles as the report says, corrections saved per rig and reused, bad choices shown inline), and
the transition panel saying why a clip that cannot be mapped is not generated."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox

pytestmark = pytest.mark.gui

MIXAMO = "bvh-python/test_freebvh.bvh"
CMU = "pybvh/cmu_12_01_walk.bvh"

# Five joints in a line: no joint branches into a spine and two legs, so no rig mapping can exist.
CHAIN_BVH = """HIERARCHY
ROOT Base
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT A
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT B
    {
      OFFSET 0 10 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 10 0
      }
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 90 0 0 0 0 0 0 0 0 0 0
0 90 1 0 0 0 0 0 0 0 0 0
0 90 2 0 0 0 0 0 0 0 0 0
"""


def _external(root: Path, rel: str) -> Path:
    """One file of ../shared/data/external: skipped where absent, a failure under CI=true (like the folder)."""
    path = root / rel
    if not path.is_file():
        msg = f"external file {path} not found"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _open(window, qtbot, paths) -> None:
    """As test_studio_window: open and wait until every job it started has ended."""
    window.open_paths([Path(p) for p in paths])
    qtbot.waitUntil(lambda: not window.jobs, timeout=30000)


@pytest.fixture()
def mappings(isolated_qsettings):
    """A MappingModel on the test's own settings folder (as the studio makes it)."""
    from rsmt_studio.app.models.mapping import MappingModel
    from rsmt_studio.app.qt.settings import corrections_path

    assert str(corrections_path()).startswith(str(isolated_qsettings))
    return MappingModel(corrections_path())


def _dialog(qtbot, clip, mappings):
    from rsmt_studio.app.qt.mapping_dialog import MappingDialog

    dlg = MappingDialog(clip, mappings)
    qtbot.addWidget(dlg)
    return dlg


def test_model_rig_predicate_on_names_and_parents():
    from rsmt_studio.app.models.mapping import is_model_rig
    from rsmt_studio.inference.rigs import load_model_rig
    from rsmt_studio.motion.skeleton import Skeleton

    rig = load_model_rig(None)
    MODEL_RIG = [("joint_Root", None)] + [(n, "joint_Root" if p < 0 else rig.names[p])
                                          for n, p in zip(rig.names, rig.parents)]

    def sk(rig):
        names = [n for n, _ in rig]
        parents = [-1 if p is None else names.index(p) for _, p in rig]
        return Skeleton(names=names, parents=parents, offsets=[[0.0, 1.0, 0.0]] * len(names),
                        channels=[()] * len(names), rotation_orders=["ZXY"] * len(names))

    assert is_model_rig(sk(MODEL_RIG))
    assert is_model_rig(sk([(n, None if p == "joint_Root" else p) for n, p in MODEL_RIG[1:]]))  # no joint_Root
    renamed_root = [("root", None)] + [(n, "root" if p == "joint_Root" else p) for n, p in MODEL_RIG[1:]]
    assert is_model_rig(sk(renamed_root))
    moved = [(n, "Spine" if n == "Neck" else p) for n, p in MODEL_RIG]  # same names, another parent
    assert not is_model_rig(sk(moved))
    assert not is_model_rig(sk(MODEL_RIG[:-1]))


@pytest.mark.parametrize("rel", [MIXAMO, CMU])
def test_dialog_shows_the_reports_roles_leftovers_and_notes(qtbot, mappings, external_root, rel):
    from rsmt_studio.app.qt.mapping_dialog import NONE_TEXT
    from rsmt_studio.motion import read_bvh
    from rsmt_studio.motion.retarget import mapping_report
    from rsmt_studio.motion.retarget.roles import ALL_ROLES, REQUIRED

    clip = read_bvh(_external(external_root, rel))
    report, _ = mapping_report(clip)
    assert report.ok, report.error
    dlg = _dialog(qtbot, clip, mappings)
    shown = dlg.shown_roles()
    assert list(shown) == list(ALL_ROLES)
    assert shown == {r.role: (r.joint, r.confidence) for r in report.roles}
    roles = sum(1 for r in report.roles if r.joint)
    left = sum(len(v) for v in report.leftover.values())
    assert dlg.status_label.text() == f"mapped: {roles} roles, {left} joints not driven"
    assert mappings.of(clip).status == dlg.status_label.text()
    # leftover joints grouped, each group with what happens to it
    groups = {dlg.leftover.topLevelItem(i).text(0): dlg.leftover.topLevelItem(i)
              for i in range(dlg.leftover.topLevelItemCount())}
    assert set(groups) == {f"{k} ({len(v)})" for k, v in report.leftover.items() if v}
    for kind, joints in report.leftover.items():
        if joints:
            top = groups[f"{kind} ({len(joints)})"]
            assert [top.child(i).text(0) for i in range(top.childCount())] == joints
            assert top.text(1)  # what happens to them
    assert all(n in dlg.notes_label.text() for n in report.notes)
    assert "Spine chain: " + " > ".join(report.spine) in dlg.chains_label.text()
    # the joint combos offer the rig's joints; a required role cannot be emptied
    combo: QComboBox = dlg._combos["hand.L"]
    assert [combo.itemText(i) for i in range(combo.count())] == list(clip.skeleton.names)
    assert "hand.L" in REQUIRED and combo.findText(NONE_TEXT) < 0
    assert dlg._combos["toe.L"].findText(NONE_TEXT) == 0
    assert dlg.error_text() == ""


def test_a_correction_is_saved_per_rig_and_reused_for_another_clip_of_that_rig(qtbot, mappings, external_root,
                                                                                tmp_path):
    from rsmt_studio.app.models.mapping import MappingModel
    from rsmt_studio.app.qt.settings import corrections_path
    from rsmt_studio.motion import read_bvh, write_bvh
    from rsmt_studio.motion.retarget import skeleton_signature

    clip = read_bvh(_external(external_root, CMU))
    sig = skeleton_signature(clip.skeleton)
    saved = []
    mappings.mapping_changed.connect(saved.append)
    dlg = _dialog(qtbot, clip, mappings)
    assert not dlg.apply_button.isEnabled() and not dlg.reset_button.isEnabled()
    dlg.set_joint("toe.L", None)  # optional role emptied: the toe turns with the foot
    dlg.set_joint("hand.L", "LeftFingerBase")  # another joint
    assert dlg.shown_roles()["hand.L"][1] == "changed: press Apply" and dlg.apply_button.isEnabled()
    with qtbot.waitSignal(dlg.corrections_saved, timeout=1000) as sigs:
        dlg.apply_button.click()
    assert sigs.args == [sig] and saved == [sig]
    assert dlg.error_text() == ""
    assert dlg.shown_roles()["hand.L"] == ("LeftFingerBase", "set by you")
    assert dlg.shown_roles()["toe.L"] == (None, "missing: turns with its parent")
    assert dlg.status_label.text().endswith(", 2 corrected by you")
    assert json.loads(corrections_path().read_text()) == {sig: {"hand.L": "LeftFingerBase", "toe.L": ""}}

    # another clip of the same rig (a part of the take, its own file), in a new model as after a restart
    other_path = tmp_path / "cmu_walk_part.bvh"
    write_bvh(clip.slice(100, 200), other_path)
    other = read_bvh(other_path)
    assert skeleton_signature(other.skeleton) == sig
    again = MappingModel(corrections_path())
    dlg2 = _dialog(qtbot, other, again)
    assert dlg2.shown_roles()["hand.L"] == ("LeftFingerBase", "set by you")
    assert dlg2.shown_roles()["toe.L"][0] is None
    assert again.of(other).corrections == {"hand.L": "LeftFingerBase", "toe.L": ""}
    assert dlg2.reset_button.isEnabled()

    # Reset forgets them for the rig
    dlg2.reset_button.click()
    assert dlg2.shown_roles()["hand.L"] == ("LeftHand", "high")
    assert json.loads(corrections_path().read_text()) == {}
    assert again.of(clip).corrections == {}


def test_an_invalid_correction_is_shown_inline_and_nothing_is_saved(qtbot, mappings, external_root):
    from rsmt_studio.app.qt.settings import corrections_path
    from rsmt_studio.motion import read_bvh

    clip = read_bvh(_external(external_root, MIXAMO))
    dlg = _dialog(qtbot, clip, mappings)
    before = dlg.status_label.text()
    dlg.set_joint("upper_arm.L", "mixamorig:RightArm")  # already the right upper arm
    assert dlg.apply() is False
    err = dlg.error_text()
    assert err.startswith("Cannot apply: ") and "mixamorig:RightArm" in err and "upper_arm.L" in err
    assert "\n" not in err
    assert dlg.shown_roles()["upper_arm.L"][0] == "mixamorig:RightArm"  # the choice stays, to be fixed
    assert dlg.apply_button.isEnabled() and dlg.status_label.text() == before
    assert not corrections_path().exists()
    # fixing it (and swapping a hand for its middle finger) applies and clears the error
    dlg.set_joint("upper_arm.L", "mixamorig:LeftArm")
    dlg.set_joint("hand.R", "mixamorig:RightHandMiddle1")
    assert dlg.apply() is True
    assert dlg.error_text() == ""
    assert dlg.shown_roles()["hand.R"] == ("mixamorig:RightHandMiddle1", "set by you")
    assert list(json.loads(corrections_path().read_text()).values()) == [{"hand.R": "mixamorig:RightHandMiddle1"}]


def test_properties_dock_shows_model_rig_and_mapping_and_opens_the_dialog(window, qtbot, bandai_clip,
                                                                           external_root):
    _open(window, qtbot, [bandai_clip, _external(external_root, CMU)])
    props = window.properties_widget
    assert props.value(0, "Mapping") == "model rig (no retargeting)"
    cmu_status = props.value(1, "Mapping")
    assert cmu_status.startswith("mapped: 19 roles, ") and cmu_status.endswith(" joints not driven")

    qtbot.waitUntil(lambda: props.mapping_button(0) is not None and props.mapping_button(1) is not None)
    with qtbot.waitSignal(props.mapping_dialog_opened, timeout=2000) as opened:
        props.mapping_button(0).click()
    dlg = opened.args[0]
    assert dlg.status_label.text() == "model rig (no retargeting)"
    assert dlg.table.isHidden()

    with qtbot.waitSignal(props.mapping_dialog_opened, timeout=2000) as opened:
        qtbot.waitUntil(lambda: props.mapping_button(1) is not None)
        props.mapping_button(1).click()
    dlg = opened.args[0]
    assert dlg.isVisible() and dlg.status_label.text() == cmu_status
    dlg.set_joint("clavicle.R", None)
    assert dlg.apply()
    qtbot.waitUntil(lambda: (props.value(1, "Mapping") or "").endswith("1 corrected by you"), timeout=2000)
    dlg.close()


class _NoEngine:
    """A worker pool that must not be reached: clips that cannot be mapped stop before the engine."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, device: str):
        self.calls += 1
        raise AssertionError("the engine was asked for a clip that cannot be mapped")

    def close(self) -> None:
        pass


def test_transition_panel_says_why_a_clip_cannot_be_mapped(make_window, qtbot, bandai_clip, tmp_path):
    from rsmt_studio.app.models.session import Autosaver
    from rsmt_studio.app.qt.transition_panel import install
    chain = tmp_path / "chain.bvh"
    chain.write_text(CHAIN_BVH)
    window = make_window()
    pool = _NoEngine()
    studio = install(window, pool=pool, autosave=Autosaver(tmp_path / "autosave.json"))
    try:
        _open(window, qtbot, [chain, bandai_clip])
        panel = studio.panel
        qtbot.waitUntil(lambda: panel.status.text().startswith("Could not generate:"), timeout=10000)
        text = panel.status.text()
        assert text.startswith("Could not generate: source clip chain cannot be mapped: no hips")
        assert "MappingError" not in text and "\n" not in text  # one line, the message alone
        assert pool.calls == 0
        assert (panel.source_rig.text(), panel.target_rig.text()) == ("unmappable", "model rig")
        assert panel.source_rig.toolTip().startswith("cannot be mapped: no hips")
        assert panel.target_rig.toolTip().startswith("model rig (no retargeting)")
        assert window.properties_widget.value(0, "Mapping").startswith("cannot be mapped: no hips")
    finally:
        studio.shutdown()


def test_authoring_shows_a_mapping_error_from_the_engine_like_a_transition_error(bandai_root):
    """After the engine maps clips itself, its MappingError reaches the panel as the message alone."""
    from rsmt_studio.app.models.authoring import AuthoringModel
    from rsmt_studio.motion import read_bvh
    from rsmt_studio.motion.retarget import MappingError

    class Engine:
        styles = ()

        def stream(self, *a, **k):
            raise MappingError("target.bvh: no joint found for the required role head")

    path = bandai_root / "Bandai-Namco-Research-Motiondataset-1" / "data" / "dataset-1_walk_normal_001.bvh"
    clip = read_bvh(path)
    model = AuthoringModel(lambda device: Engine(), debounce_s=0.0)
    try:
        failed = []
        model.generation_failed.connect(lambda gen, msg: failed.append(msg))
        key = model.add_clip(clip)
        model.set_params(source=key, target=key, source_frame=10, target_frame=20, regenerate=False)
        model.request(immediate=True)
        deadline = time.monotonic() + 10
        while not failed and time.monotonic() < deadline:
            model.poll()
            time.sleep(0.005)
        assert failed == ["target.bvh: no joint found for the required role head"]
    finally:
        model.close()
