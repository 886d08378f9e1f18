"""Retargeting both ways between a user's rig and the model rig: `RigBinding.to_model` / `to_user`.

Rotations go through the common canonical pose, per joint Δ = G·C⁻¹ ("how far this joint has turned from the
T-pose"): a model joint takes the Δ of the user joint in its role, G_model = Δ_user · C_model, and back.
Spine and neck chains of other lengths are sampled by normalised chain length (a joint that sits within 0.15 of
the other rig's joint is taken one to one). A role the user's rig lacks (toes, clavicles) turns rigidly with its
parent.

Positions are exact by construction: the model rig's offsets are the user's own bone vectors, scaled by
s = model leg length / user leg length and re-expressed in the model joints' frames, so every mapped user joint
sits exactly where the model joint does, divided by s. Feet the model keeps planted stay planted on the user's
rig, and the root's travel is scaled by leg length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import rotations as R
from ..clip import Clip, depth_levels, forward_kinematics
from .calibrate import Calibration, calibrate
from .model_rig import ModelRig, foot_floor, leg_length
from .roles import RoleMap

SNAP_U = 0.15  # chain joints closer than this in normalised length are mapped one to one
FLOOR_TOLERANCE_CM = 10.0  # a user floor further than this from the model's (after scaling) is moved onto it


def _sample(delta: np.ndarray, u_points: np.ndarray, u: float) -> np.ndarray:
    """Δ (T,N,4) along a chain with normalised positions u_points (N,), sampled at u (slerp between neighbours)."""
    i = int(np.clip(np.searchsorted(u_points, u, side="right") - 1, 0, len(u_points) - 2))
    span = u_points[i + 1] - u_points[i]
    if span <= 1e-9:
        return delta[:, i + 1]
    t = float(np.clip((u - u_points[i]) / span, 0.0, 1.0))
    return R.quat_slerp(delta[:, i], delta[:, i + 1], t)


def _polyline_point(points: np.ndarray, u_points: np.ndarray, u: float) -> np.ndarray:
    i = int(np.clip(np.searchsorted(u_points, u, side="right") - 1, 0, len(u_points) - 2))
    span = u_points[i + 1] - u_points[i]
    t = 0.0 if span <= 1e-9 else float(np.clip((u - u_points[i]) / span, 0.0, 1.0))
    return points[i] * (1 - t) + points[i + 1] * t


def _chain_positions(g: np.ndarray, parents: np.ndarray, offsets: np.ndarray, chain: list[int],
                     root_pos: np.ndarray) -> np.ndarray:
    """Positions (T,N,3) of a chain's joints from its first joint's position, by FK along the chain only."""
    out = np.zeros((len(root_pos), len(chain), 3))
    out[:, 0] = root_pos
    for i in range(1, len(chain)):
        out[:, i] = out[:, i - 1] + R.quat_rotate(g[:, chain[i - 1]], offsets[..., chain[i], :])
    return out


def _aim(g: np.ndarray, joint: int, bone: np.ndarray, start: np.ndarray, goal: np.ndarray) -> None:
    """Swing g[:, joint] so its bone (local vector `bone`, from `start`) points at `goal` (in place)."""
    current = R.quat_rotate(g[:, joint], bone)
    swing = R.quat_from_two_vectors(current, goal - start)
    ok = (np.linalg.norm(current, axis=-1) > 1e-9) & (np.linalg.norm(goal - start, axis=-1) > 1e-9)
    g[ok, joint] = R.quat_normalize(R.quat_mul(swing[ok], g[ok, joint]))


def _aim_chain(gm, parents, offsets, chain, goal, root_pos) -> None:
    """Model side: turn the chain's last inner joint so the chain's end lands on the user's (a chain whose
    inner joints are sampled would otherwise put the chest or head a few cm off)."""
    if len(chain) < 3:
        return
    # positions from the hips: the chain may start at the chest, whose position follows from the spine
    path = _path_from_root(parents, chain[-2])
    pos = _chain_positions(gm, parents, offsets, path, root_pos)
    _aim(gm, chain[-2], offsets[chain[-1]], pos[:, -1], goal)


def _path_from_root(parents: np.ndarray, j: int) -> list[int]:
    path = [j]
    while parents[path[-1]] >= 0:
        path.append(int(parents[path[-1]]))
    return path[::-1]


def _aim_user_chain(g, lp, parents, chain, goal_up, hips, hips_up) -> None:
    """User side: the same for the user's chain, in the up-aligned world, from the hips."""
    if len(chain) < 3:
        return
    path = _path_from_root(parents, chain[-2])
    path = path[path.index(hips):]
    pos = _chain_positions(g, parents, lp[0], path, hips_up)
    _aim(g, chain[-2], lp[:, chain[-1]], pos[:, -1], goal_up)


@dataclass
class RigBinding:
    """One user rig bound to the model rig: roles, calibration, scale, and what each joint takes from where."""

    roles: RoleMap
    calibration: Calibration
    model: ModelRig
    scale: float  # model cm per user unit
    floor_shift: float  # user units subtracted from the up coordinate before scaling
    model_offsets: np.ndarray  # (Jm,3)
    model_plan: list[tuple[str, object]] = field(default_factory=list)
    user_plan: list[tuple[str, object]] = field(default_factory=list)
    report_notes: list[str] = field(default_factory=list)

    # --- construction ------------------------------------------------------------------------------------
    @staticmethod
    def bind(clip: Clip, roles: RoleMap, model: ModelRig, frame: int | None = None) -> RigBinding:
        """Calibrate `clip`'s rig (from `frame`, default its most neutral one) and plan both directions."""
        cal = calibrate(clip, roles, frame)
        ro = roles.roles
        s = model.leg_length / max(leg_length(cal.pose_pos, ro), 1e-9)
        gpos, _ = clip.fk()
        f_user = foot_floor(R.quat_rotate(cal.align, gpos), ro)
        shift = 0.0
        notes = [f"scale {s:.4g} model cm per file unit (leg length {model.leg_length / s:.4g} units)"]
        if abs(f_user * s - model.foot_floor) > FLOOR_TOLERANCE_CM:
            shift = f_user - model.foot_floor / s
            notes.append(f"floor moved by {-shift:.4g} units: the feet rest at {f_user:.4g}, not near 0")
        b = RigBinding(roles, cal, model, float(s), float(shift), np.zeros((model.num_joints, 3)), report_notes=notes)
        b._plan()
        return b

    def _user_chain(self, which: str) -> tuple[list[int], np.ndarray]:
        ro = self.roles.roles
        if which == "spine":
            return [ro["hips"], *self.roles.spine, ro["chest"]], self.calibration.spine_u
        return [ro["chest"], *self.roles.neck, ro["head"]], self.calibration.neck_u

    def _model_chain(self, which: str) -> tuple[list[int], np.ndarray]:
        m = self.model
        ends = ("hips", "chest") if which == "spine" else ("chest", "head")
        inner = m.spine if which == "spine" else m.neck
        idx = [m.role_index(ends[0]), *(m.index(n) for n in inner), m.role_index(ends[1])]
        return idx, (m.spine_u if which == "spine" else m.neck_u)

    def _plan(self) -> None:
        m, ro, cal = self.model, self.roles.roles, self.calibration
        jm = m.num_joints
        plan: list[tuple[str, object] | None] = [None] * jm
        snapped: dict[int, int] = {}  # user chain joint -> model chain joint
        for role, name in m.roles.items():
            k = m.index(name)
            if role in ro:
                plan[k] = ("one", ro[role])
        for which in ("spine", "neck"):
            uj, uu = self._user_chain(which)
            mj, mu = self._model_chain(which)
            for i in range(1, len(mj) - 1):
                inner_u = uu[1:-1]
                best = int(np.argmin(np.abs(inner_u - mu[i]))) if len(inner_u) else -1
                if best >= 0 and abs(inner_u[best] - mu[i]) < SNAP_U and uj[1 + best] not in snapped:
                    plan[mj[i]] = ("one", uj[1 + best])
                    snapped[uj[1 + best]] = mj[i]
                else:
                    plan[mj[i]] = ("chain", (which, float(mu[i])))
        for k in range(jm):
            if plan[k] is None:  # a role the user's rig lacks: turn with the model parent
                plan[k] = ("rigid", int(m.parents[k]))
                self.report_notes.append(f"model {m.names[k]}: no joint in your rig; turns with "
                                         f"{m.names[m.parents[k]]}")
        self.model_plan = plan  # type: ignore[assignment]

        # Calibration-pose point and Δ of every model joint, then the model offsets.
        pose = cal.pose_pos
        pts = np.zeros((jm, 3))
        dP = np.zeros((jm, 4))
        for k in range(jm):
            kind, data = plan[k]
            if kind == "one":
                pts[k], dP[k] = pose[data], cal.delta[data]
            elif kind == "chain":
                which, u = data
                uj, uu = self._user_chain(which)
                pts[k] = _polyline_point(pose[uj], uu, u)
                dP[k] = _sample(cal.delta[None, uj], uu, u)[0]
            else:
                p = data
                dP[k] = dP[p]
                pts[k] = pts[p] + R.quat_rotate(dP[p], m.bones[k]) / self.scale
        # A missing clavicle sits on the chest; move it so the upper arm stays where the user's is.
        for k in range(jm):
            if plan[k][0] == "rigid":
                for c in np.flatnonzero(m.parents == k):
                    if plan[c][0] == "one":
                        pts[k] = pts[c] - R.quat_rotate(dP[k], m.bones[c]) / self.scale
        offs = np.zeros((jm, 3))
        for k in range(1, jm):
            p = int(m.parents[k])
            local = R.quat_rotate(R.quat_conj(R.quat_mul(dP[p], m.C[p])), pts[k] - pts[p])
            offs[k] = local * self.scale
        self.model_offsets = offs

        # User side: which joints come back from the model and how.
        uplan: list[tuple[str, object]] = []
        role_of_model = {v: k for k, v in ((k, data) for k, (kind, data) in enumerate(plan) if kind == "one")}
        spine_set, neck_set = set(self.roles.spine), set(self.roles.neck)
        for j in range(self.roles.skeleton.num_joints):
            if j in role_of_model:
                uplan.append(("one", role_of_model[j]))
            elif j in spine_set or j in neck_set:
                which = "spine" if j in spine_set else "neck"
                uj, uu = self._user_chain(which)
                uplan.append(("chain", (which, float(uu[uj.index(j)]))))
            else:
                uplan.append(("carry", None))
        self.user_plan = uplan

    # --- user -> model ------------------------------------------------------------------------------------
    def to_model(self, clip: Clip) -> Clip:
        """`clip` (on this binding's rig) as a clip on the model rig, same frames and fps, model units (cm)."""
        m, cal = self.model, self.calibration
        gpos, grot = clip.fk()
        al = cal.align
        g = R.quat_mul(al, grot)
        delta_u = R.quat_mul(g, R.quat_conj(cal.C))
        t = clip.num_frames
        delta_m = np.zeros((t, m.num_joints, 4))
        for k, (kind, data) in enumerate(self.model_plan):
            if kind == "one":
                delta_m[:, k] = delta_u[:, data]
            elif kind == "chain":
                which, u = data
                uj, uu = self._user_chain(which)
                delta_m[:, k] = _sample(delta_u[:, uj], uu, u)
            else:
                delta_m[:, k] = delta_m[:, data]
        gm = R.quat_mul(delta_m, m.C)
        ro = self.roles.roles
        target = R.quat_rotate(al, gpos)
        target[..., 1] -= self.floor_shift
        target *= self.scale
        for which, end in (("spine", "chest"), ("neck", "head")):
            mj, _ = self._model_chain(which)
            _aim_chain(gm, m.parents, self.model_offsets, mj, target[:, ro[end]], root_pos=target[:, ro["hips"]])
        lr = gm.copy()
        par = m.parents
        lr[:, 1:] = R.quat_mul(R.quat_conj(gm[:, par[1:]]), gm[:, 1:])
        lp = np.broadcast_to(self.model_offsets, (t, m.num_joints, 3)).copy()
        lp[:, 0] = target[:, ro["hips"]]
        sk = m.skeleton_like(self.model_offsets)
        return Clip(sk, clip.fps, lp, R.quat_normalize(lr), name=clip.name, style=clip.style, content=clip.content,
                    source_path=clip.source_path, frame_range=clip.frame_range)

    # --- model -> user ------------------------------------------------------------------------------------
    def to_user(self, model_lp: np.ndarray, model_lr: np.ndarray, carry_lp: np.ndarray,
                carry_lr: np.ndarray, globals_out: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Model-rig frames (T,Jm,3)/(T,Jm,4) -> local translations and rotations on the user's rig.

        Joints the model does not drive (fingers, twist bones, pivots, a dummy root) take `carry_lr` (T,J,4)
        and every joint but the hips takes its translation from `carry_lp` (T,J,3). `globals_out`, when given,
        receives the global rotations (T,J,4) in the up-aligned world.
        """
        m, cal, ro = self.model, self.calibration, self.roles.roles
        gpos_m, gm = forward_kinematics(m.parents, model_lp, model_lr)
        delta_m = R.quat_mul(gm, R.quat_conj(m.C))
        t = len(model_lp)
        sk = self.roles.skeleton
        al_inv = R.quat_conj(cal.align)
        g = np.zeros((t, sk.num_joints, 4))  # up-aligned globals
        one_u, one_m = self._one_pairs
        g[:, one_u] = R.quat_mul(delta_m[:, one_m], cal.C[one_u])
        for j, (kind, data) in enumerate(self.user_plan):
            if kind == "chain":
                which, u = data
                mj, mu = self._model_chain(which)
                g[:, j] = R.quat_mul(_sample(delta_m[:, mj], mu, u), cal.C[j])
        carry = np.array([kind == "carry" for kind, _ in self.user_plan])
        for idx, par in depth_levels(tuple(int(p) for p in sk.parents)):
            sel = carry[idx]
            if not sel.any():
                continue
            js = idx[sel]
            parent = np.broadcast_to(cal.align, (t, len(js), 4)) if par is None else g[:, par[sel]]
            g[:, js] = R.quat_mul(parent, carry_lr[:, js])
        lp = np.array(carry_lp, dtype=np.float64, copy=True)
        hips = ro["hips"]
        world = gpos_m[:, 0] / self.scale
        world[:, 1] += self.floor_shift
        hips_world = R.quat_rotate(al_inv, world)
        for which in ("spine", "neck"):
            uj, _ = self._user_chain(which)
            end_model = self.model.role_index("chest" if which == "spine" else "head")
            tgt = gpos_m[:, end_model] / self.scale
            tgt[:, 1] += self.floor_shift
            _aim_user_chain(g, lp, sk.parents, uj, tgt, hips, world)
        if globals_out is not None:
            globals_out.append(g)
        lr = np.empty_like(g)
        roots = sk.parents < 0
        lr[:, roots] = R.quat_mul(al_inv, g[:, roots])
        nr = np.flatnonzero(~roots)
        lr[:, nr] = R.quat_mul(R.quat_conj(g[:, sk.parents[nr]]), g[:, nr])
        world = hips_world
        p = int(sk.parents[hips])
        if p < 0:
            lp[:, hips] = world
        else:  # a dummy root above the hips keeps its carried transform; the hips are placed under it
            gp, gr = forward_kinematics(sk.parents, lp, lr)
            lp[:, hips] = R.quat_rotate(R.quat_conj(gr[:, p]), world - gp[:, p])
        return lp, R.quat_normalize(lr)

    @property
    def _one_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(user joints, model joints) mapped one to one."""
        pairs = [(j, k) for j, (kind, k) in enumerate(self.user_plan) if kind == "one"]
        return np.array([j for j, _ in pairs], dtype=np.int64), np.array([k for _, k in pairs], dtype=np.int64)

    def driven_joints(self) -> np.ndarray:
        """(J,) bool: user joints whose rotation comes from the model (roles and chains)."""
        return np.array([kind != "carry" for kind, _ in self.user_plan])
