"""The model's own rig (Bandai's 21 joints without the static ``joint_Root``), calibrated like any user rig.

Built once from a Bandai clip (`build_model_rig`) and shipped as JSON (`assets/model_rig.json`), so a user's
clip can be retargeted without the dataset. Its canonical pose comes from the same `calibrate` every user rig
goes through, which is what makes G_model = G_user · C_user⁻¹ · C_model meaningful.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import rotations as R
from ..atomic import atomic_write_text
from ..clip import Clip
from ..skeleton import Skeleton
from .calibrate import calibrate
from .roles import find_roles

FORMAT = "rsmt-studio model rig 1"


@dataclass(frozen=True, eq=False)
class ModelRig:
    """Names, parents, role of each joint, canonical rotations C (J,4), canonical bone vectors (J,3) (child
    minus parent in the canonical pose, cm), leg length (cm), chain positions of Spine and Neck, and the lowest
    foot joint's usual height above the floor (cm)."""

    names: tuple[str, ...]
    parents: np.ndarray
    roles: dict[str, str]
    spine: tuple[str, ...]
    neck: tuple[str, ...]
    C: np.ndarray
    bones: np.ndarray
    leg_length: float
    spine_u: np.ndarray
    neck_u: np.ndarray
    foot_floor: float
    source: str = ""

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def role_index(self, role: str) -> int | None:
        name = self.roles.get(role)
        return None if name is None else self.names.index(name)

    def skeleton_like(self, offsets: np.ndarray) -> Skeleton:
        """A BVH skeleton of the model rig with the given offsets (root: 6 channels, others: 3, ZXY)."""
        rot = ("Zrotation", "Xrotation", "Yrotation")
        channels = [("Xposition", "Yposition", "Zposition", *rot)] + [rot] * (self.num_joints - 1)
        return Skeleton(list(self.names), self.parents, offsets, channels, ["ZXY"] * self.num_joints)

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "source": self.source, "names": list(self.names),
            "parents": self.parents.tolist(), "roles": self.roles, "spine": list(self.spine),
            "neck": list(self.neck), "C": np.round(self.C, 9).tolist(), "bones": np.round(self.bones, 6).tolist(),
            "leg_length": round(self.leg_length, 6), "spine_u": np.round(self.spine_u, 9).tolist(),
            "neck_u": np.round(self.neck_u, 9).tolist(), "foot_floor": round(self.foot_floor, 6),
        }, indent=1)

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(path, self.to_json() + "\n")

    @staticmethod
    def load(path: str | Path) -> ModelRig:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the model rig: {exc}") from None
        if d.get("format") != FORMAT:
            raise ValueError(f"{path}: not a model rig file (format {d.get('format')!r}, want {FORMAT!r})")
        return ModelRig(
            names=tuple(d["names"]), parents=np.asarray(d["parents"], dtype=np.int64), roles=dict(d["roles"]),
            spine=tuple(d["spine"]), neck=tuple(d["neck"]), C=R.quat_normalize(np.asarray(d["C"])),
            bones=np.asarray(d["bones"], dtype=np.float64), leg_length=float(d["leg_length"]),
            spine_u=np.asarray(d["spine_u"]), neck_u=np.asarray(d["neck_u"]), foot_floor=float(d["foot_floor"]),
            source=d.get("source", ""),
        )


def leg_length(pos: np.ndarray, roles: dict[str, int]) -> float:
    """Mean over both legs of hip-to-knee plus knee-to-ankle distance in one pose (J,3)."""
    out = []
    for s in ("L", "R"):
        a, b, c = (pos[roles[f"{k}.{s}"]] for k in ("upper_leg", "lower_leg", "foot"))
        out.append(np.linalg.norm(b - a) + np.linalg.norm(c - b))
    return float(np.mean(out))


def foot_floor(gpos_up: np.ndarray, roles: dict[str, int]) -> float:
    """5th percentile over frames of the lowest foot joint's height (up-aligned positions, y up)."""
    feet = [roles[k] for k in roles if k.split(".")[0] in ("foot", "toe")]
    return float(np.percentile(gpos_up[:, feet, 1].min(axis=1), 5))


def build_model_rig(model_clip: Clip) -> ModelRig:
    """Calibrate the model rig from a clip already on it (21 joints, hips as root)."""
    rm = find_roles(model_clip)
    cal = calibrate(model_clip, rm)
    sk = model_clip.skeleton
    pos = cal.pose_pos
    bones = np.zeros((sk.num_joints, 3))
    for k, p in enumerate(sk.parents):
        if p >= 0:
            bones[k] = R.quat_rotate(R.quat_conj(cal.delta[p]), pos[k] - pos[p])
    gpos, _ = model_clip.fk()
    up = R.quat_rotate(cal.align, gpos)
    return ModelRig(
        names=tuple(sk.names), parents=sk.parents.copy(), roles={r: sk.names[j] for r, j in rm.roles.items()},
        spine=tuple(sk.names[j] for j in rm.spine), neck=tuple(sk.names[j] for j in rm.neck), C=cal.C,
        bones=bones, leg_length=leg_length(pos, rm.roles), spine_u=cal.spine_u, neck_u=cal.neck_u,
        foot_floor=foot_floor(up, rm.roles),
        source=f"{model_clip.name} frame {cal.frame}",
    )


def is_model_rig(skeleton: Skeleton, rig: ModelRig) -> bool:
    """True for the model's own rig (with or without a static dummy root above the hips): no retargeting."""
    names, parents = list(skeleton.names), skeleton.parents
    if len(names) == rig.num_joints + 1 and len(skeleton.children(0)) == 1:
        names, parents = names[1:], np.where(parents[1:] > 0, parents[1:] - 1, -1)
    return names == list(rig.names) and np.array_equal(parents, rig.parents)


def main(argv: list[str] | None = None) -> int:
    """Rebuild assets/model_rig.json from a Bandai take (the model's rig): python -m ...model_rig IN.bvh OUT.json"""
    import argparse

    from ..bvh_reader import read_bvh
    from ..features import model_clip

    ap = argparse.ArgumentParser(prog="python -m rsmt_studio.motion.retarget.model_rig", description=main.__doc__)
    ap.add_argument("bvh", type=Path, help="a Bandai take (the model's training rig)")
    ap.add_argument("out", type=Path, help="where to write the rig JSON")
    args = ap.parse_args(argv)
    clip, _ = model_clip(read_bvh(args.bvh))
    rig = build_model_rig(clip)
    rig.save(args.out)
    print(f"wrote {args.out}: {rig.num_joints} joints, calibrated on {rig.source}, leg {rig.leg_length:.2f} cm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
