"""Retargeting any humanoid rig: roles, the disguise suite (exact ground truth), real files, seams, corrections."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.motion import features as F
from rsmt_studio.motion.bvh_reader import parse_bvh, read_bvh
from rsmt_studio.motion.bvh_writer import format_bvh
from rsmt_studio.motion.clip import Clip, forward_kinematics
from rsmt_studio.motion.retarget import (
    CorrectionStore,
    MappingError,
    ModelRig,
    RigBinding,
    build_model_rig,
    find_roles,
    mapping_report,
    skeleton_signature,
)
from rsmt_studio.motion.retarget.model_rig import is_model_rig
from rsmt_studio.motion.retarget.seam import round_trip, seam_blend

sys.path.insert(0, str(Path(__file__).parent))
from disguise import Disguise, disguise, world_to_original

REPO = Path(__file__).resolve().parents[2]
RIG_FILE = REPO / "assets" / "model_rig.json"
RIG_SOURCE = "Bandai-Namco-Research-Motiondataset-2/data/dataset-2_walk_normal_001.bvh"
TAKE = "Bandai-Namco-Research-Motiondataset-2/data/dataset-2_run_active_002.bvh"


@pytest.fixture(scope="module")
def rig() -> ModelRig:
    return ModelRig.load(RIG_FILE)


@pytest.fixture(scope="module")
def take(bandai_root) -> Clip:
    clip, _ = F.model_clip(read_bvh(bandai_root / TAKE))
    return clip


def test_shipped_model_rig_is_the_calibration_of_its_source_take(bandai_root, rig):
    """assets/model_rig.json is what `python -m rsmt_studio.motion.retarget.model_rig` makes of its take."""
    fresh = build_model_rig(F.model_clip(read_bvh(bandai_root / RIG_SOURCE))[0])
    assert fresh.source == rig.source
    np.testing.assert_allclose(np.abs((fresh.C * rig.C).sum(-1)), 1.0, atol=1e-7)
    np.testing.assert_allclose(fresh.bones, rig.bones, atol=1e-5)
    assert fresh.roles == rig.roles and fresh.spine == rig.spine == ("Spine",) and fresh.neck == ("Neck",)


def test_bandai_rig_is_recognised_with_and_without_its_dummy_root(bandai_root, rig):
    clip = read_bvh(bandai_root / TAKE)
    assert is_model_rig(clip.skeleton, rig)
    assert is_model_rig(F.model_clip(clip)[0].skeleton, rig)
    renamed = clip.skeleton.copy()
    renamed.names[3] = "Chest2"
    assert not is_model_rig(renamed, rig)


# ------------------------------------------------------------------------------------------ disguise suite
DISGUISES = [
    Disguise("mixamo", "random", seed=1),
    Disguise("cmu_max", "T", z_up=True, unit=1 / 2.54, extra=("fingers", "twist", "spine", "pivot"), orders="random",
             seed=2),
    Disguise("unreal", "A", unit=0.01, fps=60, extra=("twist",), seed=3),
    Disguise("smpl", "down", z_up=True, unit=0.01, seed=4),
    Disguise("anonymous", "up", fps=120, extra=("spine", "fingers"), seed=5),
    Disguise("mixamo", "T", unit=1 / 5.644, extra=("pivot",), orders="random", seed=6),
]


def _ids(d: Disguise) -> str:
    return f"{d.naming}-{d.zero_pose}{'-zup' if d.z_up else ''}-u{d.unit:.3g}-{d.fps:g}fps-{'+'.join(d.extra) or 'plain'}"


def _written_and_read(clip: Clip, tmp_path: Path) -> Clip:
    path = tmp_path / "disguised.bvh"
    path.write_text(format_bvh(clip, decimals=9))
    return read_bvh(path)


@pytest.mark.parametrize("d", DISGUISES, ids=_ids)
def test_disguised_rig_maps_every_role_and_gives_back_the_original_motion(take, rig, d, tmp_path):
    clip = _written_and_read(disguise(take, rig, d), tmp_path)
    roles = find_roles(clip)
    by_disguise = {v: k for k, v in d.names.items()}
    for role, model_name in rig.roles.items():
        assert by_disguise.get(roles.name(role)) == model_name, f"{role}: {roles.name(role)}"
    b = RigBinding.bind(clip, roles, rig)
    assert all(kind == "one" for kind, _ in b.model_plan)  # every model joint has its own joint
    on_model = b.to_model(clip)
    if d.fps != take.fps:
        on_model = on_model.resample(take.fps)
    got, _ = on_model.fk()
    want, _ = take.fk()
    scale = b.scale * d.unit  # the model leg length over the take's own (1.0 for an actor of the rig's size)
    assert abs(scale - rig.leg_length / _leg(take)) < 1e-6
    err = np.linalg.norm(got - want * scale, axis=-1)
    assert err.max() < 0.05, f"max joint position error {err.max():.4f} cm (0.5 mm allowed)"


def _leg(clip: Clip) -> float:
    from rsmt_studio.motion.retarget.calibrate import calibrate
    from rsmt_studio.motion.retarget.model_rig import leg_length

    rm = find_roles(clip)
    return leg_length(calibrate(clip, rm).pose_pos, rm.roles)


@pytest.mark.parametrize("d", DISGUISES[:2], ids=_ids)
def test_round_trip_model_to_user_keeps_every_mapped_joint(take, rig, d, tmp_path):
    clip = _written_and_read(disguise(take, rig, d), tmp_path)
    b = RigBinding.bind(clip, find_roles(clip), rig)
    on_model = b.to_model(clip)
    lp, lr = b.to_user(on_model.local_pos, on_model.local_rot, clip.local_pos, clip.local_rot)
    back, _ = forward_kinematics(clip.skeleton.parents, lp, lr)
    orig, _ = clip.fk()
    one = [j for j, (kind, _) in enumerate(b.user_plan) if kind == "one"]
    err = np.linalg.norm(back[:, one] - orig[:, one], axis=-1) / d.unit
    assert err.max() < 0.05, f"{err.max():.4f} cm"
    assert np.abs(world_to_original(back[:, one], d)).max() > 10  # compared in real units, not at the origin


# ------------------------------------------------------------------------------------------ real files
EXPECTED = {
    "pybvh/cmu_12_01_walk.bvh": {"hips": "Hips", "chest": "Spine1", "head": "Head", "clavicle.L": "LeftShoulder",
                                 "upper_arm.L": "LeftArm", "hand.R": "RightHand", "upper_leg.L": "LeftUpLeg",
                                 "foot.R": "RightFoot", "toe.L": "LeftToeBase"},
    "bvh-python/test_mocapbank.bvh": {"chest": "Chest2", "clavicle.L": "LeftCollar", "upper_arm.L": "LeftShoulder",
                                      "forearm.L": "LeftElbow", "hand.L": "LeftWrist", "upper_leg.R": "RightHip",
                                      "foot.R": "RightAnkle"},
    "bvh-python/test_freebvh.bvh": {"hips": "mixamorig:Hips", "chest": "mixamorig:Spine2", "head": "mixamorig:Head",
                                    "clavicle.R": "mixamorig:RightShoulder", "upper_arm.R": "mixamorig:RightArm",
                                    "toe.L": "mixamorig:LeftToeBase"},
    "lafan1-resolved/Geno_bind.bvh": {"chest": "Spine3", "head": "Head", "upper_arm.L": "LeftArm",
                                      "hand.L": "LeftHand", "toe.R": "RightToeBase"},
    "pybvh/bvh_example.bvh": {"chest": "Spine3", "head": "Head", "upper_leg.L": "LeftUpLeg", "toe.L": "LeftToeBase"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_files_on_other_rigs_map_as_the_note_expects(external_root, name):
    clip = read_bvh(external_root / name)
    rm = find_roles(clip)
    for role, joint in EXPECTED[name].items():
        assert rm.name(role) == joint, f"{name}: {role} is {rm.name(role)}, want {joint}"
    report, _ = mapping_report(clip)
    assert report.ok and "hand.L" in report.text()


def test_real_file_details(external_root):
    mocapbank = find_roles(read_bvh(external_root / "bvh-python/test_mocapbank.bvh"))
    assert "toe.L" not in mocapbank.roles  # this rig has no toes: the model's turn with the feet
    zup = find_roles(read_bvh(external_root / "pybvh/bvh_example.bvh"))
    np.testing.assert_array_equal(zup.up, [0, 0, 1])
    mixamo, _ = mapping_report(read_bvh(external_root / "bvh-python/test_freebvh.bvh"))
    assert "mixamorig:HeadTop_End" in mixamo.leftover["end helpers"]
    assert len(mixamo.leftover["fingers and other branches"]) == 32  # 30 finger joints and two eyes
    cmu, _ = mapping_report(read_bvh(external_root / "pybvh/cmu_12_01_walk.bvh"))
    assert cmu.spine == ["LowerBack", "Spine"] and cmu.neck == ["Neck", "Neck1"]
    assert {"LHipJoint", "RHipJoint"} <= set(cmu.leftover["twist and pivot joints"])


def test_geno_bind_pose_with_arms_up_still_calibrates_to_a_t_pose(external_root, rig):
    """Geno's zero pose has the arms straight up; the calibration frame puts them out to the sides."""
    clip = read_bvh(external_root / "lafan1-resolved/Geno_bind.bvh")
    rm = find_roles(clip)
    b = RigBinding.bind(clip, rm, rig)
    on_model = b.to_model(clip)
    gpos, _ = on_model.fk()
    hand, shoulder = rig.index("Hand_L"), rig.index("UpperArm_L")
    head, hips = rig.index("Head"), rig.index("Hips")
    assert gpos[0, head, 1] - gpos[0, hips, 1] > 40  # upright
    assert abs(gpos[0, hand, 1] - gpos[0, shoulder, 1]) < 60


# ------------------------------------------------------------------------------------------ errors
def _chain_clip(n_joints: int) -> Clip:
    lines = ["HIERARCHY", "ROOT Hips", "{", "  OFFSET 0 0 0", ("  CHANNELS 6 Xposition Yposition Zposition "
             "Zrotation Xrotation Yrotation")]
    for i in range(1, n_joints):
        lines += [f"JOINT J{i}", "{", "  OFFSET 0 10 0", "  CHANNELS 3 Zrotation Xrotation Yrotation"]
    lines += ["End Site", "{", "  OFFSET 0 5 0", "}"] + ["}"] * n_joints
    cols = 6 + 3 * (n_joints - 1)
    lines += ["MOTION", "Frames: 2", "Frame Time: 0.0333333", " ".join(["0"] * cols), " ".join(["0"] * cols)]
    return parse_bvh("\n".join(lines), "chain.bvh")


def test_unmappable_rig_gets_a_one_line_error_naming_the_file(take, rig, tmp_path):
    with pytest.raises(MappingError, match=r"^chain\.bvh: no hips"):
        find_roles(_chain_clip(3))
    # a rig whose legs stop at the knee: the error names the leg and what it lacks
    d = Disguise("mixamo", "T")
    clip = disguise(take, rig, d)
    keep = [j for j, n in enumerate(clip.skeleton.names) if not n.endswith(("Foot", "ToeBase"))]
    sk = clip.skeleton
    remap = {old: new for new, old in enumerate(keep)}
    from rsmt_studio.motion.skeleton import Skeleton

    cut = Clip(Skeleton([sk.names[j] for j in keep], [remap.get(int(sk.parents[j]), -1) for j in keep],
                        sk.offsets[keep], [sk.channels[j] for j in keep], [sk.rotation_orders[j] for j in keep]),
               clip.fps, clip.local_pos[:, keep], clip.local_rot[:, keep], source_path=tmp_path / "nofeet.bvh")
    with pytest.raises(MappingError, match=r"nofeet\.bvh: leg 'mixamorig:(Left|Right)UpLeg': needs upper leg"):
        find_roles(cut)


def test_corrections_replace_roles_are_checked_and_saved_per_rig(take, rig, tmp_path):
    clip = disguise(take, rig, Disguise("mixamo", "T"))
    sig = skeleton_signature(clip.skeleton)
    fixed = find_roles(clip, {"toe.L": ""})
    assert "toe.L" not in fixed.roles and fixed.evidence["toe.L"] == "user"
    with pytest.raises(MappingError, match="required role hand.L cannot be left empty"):
        find_roles(clip, {"hand.L": ""})
    with pytest.raises(MappingError, match="fills two roles"):
        find_roles(clip, {"upper_arm.L": "mixamorig:RightArm"})
    store = CorrectionStore(tmp_path / "fixes.json")
    store.set(sig, {"toe.L": ""})
    assert CorrectionStore(tmp_path / "fixes.json").get(sig) == {"toe.L": ""}
    store.set(sig, {})
    assert store.get(sig) == {}


# ------------------------------------------------------------------------------------------ seams
def test_seam_blend_hits_the_users_own_frames_at_both_ends(take, rig, tmp_path):
    """Fed the real in-between frames as if generated, the blend reproduces the user's frames at both seams,
    including the finger and extra spine joints the model does not have."""
    d = Disguise("anonymous", "up", extra=("spine", "fingers", "twist"), seed=7)
    clip = _written_and_read(disguise(take, rig, d), tmp_path)
    b = RigBinding.bind(clip, find_roles(clip), rig)
    on_model = b.to_model(clip)
    n, m = 20, 45
    blend = seam_blend(b, clip, round_trip(b, clip, on_model, n), n, clip, round_trip(b, clip, on_model, m), m,
                       m - n - 1)
    _lp, lr = blend.apply(on_model.local_pos[n + 1:m + 1], on_model.local_rot[n + 1:m + 1], 0)
    # index m - n - 1 is the target keyframe itself (weight 1): every joint equals the user's own
    ang = np.degrees(2 * np.arccos(np.clip(np.abs((lr[-1] * clip.local_rot[m]).sum(-1)), 0, 1)))
    assert ang.max() < 0.05
    first = np.degrees(2 * np.arccos(np.clip(np.abs((lr[0] * clip.local_rot[n + 1]).sum(-1)), 0, 1)))
    step = np.degrees(2 * np.arccos(np.clip(np.abs((clip.local_rot[n + 1] * clip.local_rot[n]).sum(-1)), 0, 1)))
    assert first.max() <= step.max() + 1.0  # the first generated frame is no further off than one real step


def test_info_mapping_prints_the_report_and_fails_on_an_unmappable_rig(external_root, tmp_path):
    import json
    import subprocess

    mocap = external_root / "bvh-python" / "test_mocapbank.bvh"
    run = subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", "info", "--mapping", str(mocap)],
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "upper_arm.L  <- LeftShoulder" in run.stdout and "in other rigs this name means the clavicle" in run.stdout
    run = subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", "info", "--json", "--mapping", str(mocap)],
                         check=False, capture_output=True, text=True, timeout=120)
    data = json.loads(run.stdout)
    assert data["mapping"]["roles"]["clavicle.L"] == "LeftCollar" and "toe.L" not in data["mapping"]["roles"]
    chain = tmp_path / "chain.bvh"
    chain.write_text(format_bvh(_chain_clip(3)))
    run = subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", "info", "--mapping", str(chain)],
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "cannot be mapped: no hips" in run.stderr
