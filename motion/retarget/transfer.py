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
from ..clip import Clip, depth_levels
from .calibrate import Calibration, calibrate
from .model_rig import ModelRig, foot_floor, leg_length
from .roles import RoleMap

SNAP_U = 0.15  # chain joints closer than this in normalised length are mapped one to one
FLOOR_TOLERANCE_CM = 10.0  # a user floor further than this from the model's (after scaling) is moved onto it


def _swing(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`rotations.quat_from_two_vectors(a, b)` for (N,3) arrays, with the two vectors' lengths (N,)."""
    na = np.sqrt(np.add.reduce(a * a, axis=-1, keepdims=True))
    nb = np.sqrt(np.add.reduce(b * b, axis=-1, keepdims=True))
    an, bn = a / np.maximum(na, 1e-12), b / np.maximum(nb, 1e-12)
    h = an + bn
    norm = np.sqrt(np.add.reduce(h * h, axis=-1, keepdims=True))
    if (norm[..., 0] < 1e-12).any():  # nearly opposite somewhere: the general routine's fallback
        return R.quat_from_two_vectors(a, b), na[..., 0], nb[..., 0]
    h = h / np.maximum(norm, 1e-300)
    q = np.concatenate([np.add.reduce(an * h, axis=-1, keepdims=True), R.cross(an, h)], axis=-1)
    return R.quat_normalize(q), na[..., 0], nb[..., 0]


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
    turn, n_current, n_goal = _swing(current, goal - start)
    ok = (n_current > 1e-9) & (n_goal > 1e-9)
    if ok.all():
        g[:, joint] = R.quat_normalize(R.quat_mul(turn, g[:, joint]))
    else:
        g[ok, joint] = R.quat_normalize(R.quat_mul(turn[ok], g[ok, joint]))


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
    def back_plan(self) -> BackPlan:
        """Index arrays for `to_user` and the seam blend, built once per binding (they depend on the rigs only)."""
        plan = self.__dict__.get("_back_plan")
        if plan is None or plan.user_plan is not self.user_plan or plan.model_plan is not self.model_plan:
            plan = self.__dict__["_back_plan"] = BackPlan.build(self)
        return plan

    def to_user(self, model_lp: np.ndarray, model_lr: np.ndarray, carry_lp: np.ndarray,
                carry_lr: np.ndarray, globals_out: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Model-rig frames (T,Jm,3)/(T,Jm,4) -> local translations and rotations on the user's rig.

        Joints the model does not drive (fingers, twist bones, pivots, a dummy root) take `carry_lr` (T,J,4)
        and every joint but the hips takes its translation from `carry_lp` (T,J,3). `globals_out`, when given,
        receives the global rotations (T,J,4) in the up-aligned world.
        """
        lp, lr, g = self._to_user(model_lp, model_lr, carry_lp, carry_lr)
        if globals_out is not None:
            globals_out.append(g)
        return lp, R.quat_normalize(lr)

    def _to_user(self, model_lp: np.ndarray, model_lr: np.ndarray, carry_lp: np.ndarray, carry_lr: np.ndarray,
                 carried: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`to_user` with the local rotations not yet normalised, and the globals. `carried` (C,4), when given,
        holds the carried joints' rotations relative to their nearest driven ancestor (`BackPlan.carried_rel` of
        `carry_lr`'s frame, which must then be the same in every frame): one product instead of one per depth."""
        cal, bp = self.calibration, self.back_plan()
        model_lp = np.asarray(model_lp, dtype=np.float64)
        gm = _global_rotations(bp.model_levels, np.asarray(model_lr, dtype=np.float64))
        t = len(model_lp)
        # model positions of the hips, chest and head only (FK along their paths, one rotation for all bones)
        bones = R.quat_rotate(gm[:, bp.end_parents], model_lp[:, bp.end_bones])
        ends = [model_lp[:, 0] + bones[:, sl].sum(axis=1) for sl in bp.end_slices]
        g = np.empty((t, bp.num_joints, 4))  # up-aligned globals
        drv = bp.driven_u
        if len(drv):  # Δ_model = G_model · C_model⁻¹ of every model joint read; G_user = Δ · C_user
            dm = R.quat_mul(gm[:, bp.delta_m], bp.delta_cm_inv)
            d = dm[:, :len(drv)]
            if len(bp.chain_t):  # spine and neck joints: Δ sampled along the model's chain (as `_sample`)
                q0, q1 = d[:, len(drv) - len(bp.chain_t):], dm[:, len(drv):]
                sampled = R.quat_slerp(q0, q1, bp.chain_t)
                d[:, len(drv) - len(bp.chain_t):] = np.where(bp.chain_snap[:, None], q1, sampled) \
                    if bp.chain_snap.any() else sampled
            g[:, drv] = R.quat_mul(d, cal.C[drv])
        if carried is not None:  # only the carried joints whose globals are read (above driven joints, aims)
            inner = bp.carried_inner
            if len(inner):
                anchors = g[:, bp.carried_anchor[inner]]
                anchors[:, bp.carried_anchor[inner] < 0] = cal.align
                g[:, bp.carried[inner]] = R.quat_mul(anchors, carried[inner])
        else:
            for js, par in bp.carry_levels:
                parent = np.broadcast_to(cal.align, (t, len(js), 4)) if par is None else g[:, par]
                g[:, js] = R.quat_mul(parent, np.asarray(carry_lr)[:, js])
        lp = np.array(carry_lp, dtype=np.float64, copy=True)
        world = ends[0] / self.scale
        world[:, 1] += self.floor_shift
        hips_world = R.quat_rotate(bp.align_inv, world)
        for (joint, end, path), end_model in zip(bp.aims, ends[1:], strict=True):
            if joint < 0:
                continue
            goal = end_model / self.scale
            goal[:, 1] += self.floor_shift
            # the chain's last inner joint turned so the chain's end lands on the model's (FK from the hips)
            offs = lp[0][path[1:]]
            start = world + R.quat_rotate(g[:, path[:-1]], offs).sum(axis=1) if len(path) > 1 else world
            _aim(g, joint, lp[:, end], start, goal)
        # local rotations: a carried joint's is its carried one (its global was made from it); the others' from
        # their parent's global, the up alignment for a root
        lr = np.empty_like(g)
        lr[:, bp.carried] = np.asarray(carry_lr)[:, bp.carried]
        parent = g[:, bp.local_parent]
        parent[:, bp.local_root] = cal.align
        lr[:, bp.local] = R.quat_mul(R.quat_conj(parent), g[:, bp.local])
        hips = bp.hips
        if not len(bp.hips_path):
            lp[:, hips] = hips_world
        else:  # a dummy root above the hips keeps its carried transform; the hips are placed under it
            gp, gr = lp[:, bp.hips_path[0]], lr[:, bp.hips_path[0]]
            for j in bp.hips_path[1:]:
                gp = gp + R.quat_rotate(gr, lp[:, j])
                gr = R.quat_mul(gr, lr[:, j])
            lp[:, hips] = R.quat_rotate(R.quat_conj(gr), hips_world - gp)
        return lp, lr, g

    @property
    def _one_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(user joints, model joints) mapped one to one."""
        pairs = [(j, k) for j, (kind, k) in enumerate(self.user_plan) if kind == "one"]
        return np.array([j for j, _ in pairs], dtype=np.int64), np.array([k for _, k in pairs], dtype=np.int64)

    def driven_joints(self) -> np.ndarray:
        """(J,) bool: user joints whose rotation comes from the model (roles and chains)."""
        return np.array([kind != "carry" for kind, _ in self.user_plan])


def _global_rotations(levels: list[tuple[np.ndarray, np.ndarray | None]], local_rot: np.ndarray) -> np.ndarray:
    """Global rotations (T,J,4) from local ones, one depth level at a time (forward kinematics without positions)."""
    g = np.empty_like(local_rot)
    for idx, par in levels:
        g[:, idx] = local_rot[:, idx] if par is None else R.quat_mul(g[:, par], local_rot[:, idx])
    return g


@dataclass
class BackPlan:
    """What `to_user` and the seam blend do per joint, as index arrays (built once per binding).

    `driven_u` are the user joints whose rotation comes from the model: one-to-one joints first, then chain
    joints. `delta_m` are the model joints read: one per driven joint (its own, or the chain segment's first
    joint), then each chain joint's segment end; a chain joint's Δ is slerped between the two at `chain_t` (the
    end's own Δ where `chain_snap`: a zero-length segment). `carry_levels` are the carried joints by depth with
    their parents; `carried`/`carried_anchor` the same joints with their nearest driven ancestor. `aims`: (last
    inner joint, chain end, path from the hips to the inner joint) of the spine and neck chains (joint -1 when
    the chain has no inner joint); `end_*` select the bones from the model's hips to its chest and head.
    `hips_path`: the joints above the user's hips, root first (empty when the hips are the root).
    """

    user_plan: list
    model_plan: list
    num_joints: int
    model_levels: list
    driven_u: np.ndarray
    delta_m: np.ndarray
    delta_cm_inv: np.ndarray  # (N,4) C_model⁻¹ of those model joints
    chain_t: np.ndarray
    chain_snap: np.ndarray
    carry_levels: list
    carried: np.ndarray  # every carried joint, by depth
    carried_anchor: np.ndarray  # its nearest driven ancestor (-1: none, the up alignment)
    carried_inner: np.ndarray  # positions in `carried` of those whose globals are read (a driven joint below, aims)
    aims: list
    end_parents: np.ndarray
    end_bones: np.ndarray
    end_slices: list
    align_inv: np.ndarray
    roots: np.ndarray
    nonroots: np.ndarray
    nonroot_parents: np.ndarray
    hips: int
    hips_path: np.ndarray
    parent_of: np.ndarray
    local: np.ndarray  # the joints whose local rotation comes from globals (all but the carried ones)
    local_parent: np.ndarray  # their parents (a root stands for itself)
    local_root: np.ndarray  # (bool) which of them are roots
    # seam blend: joints whose residual is blended, and the depth levels that recompute globals below them
    fix: np.ndarray
    relink: list

    @staticmethod
    def build(b: RigBinding) -> BackPlan:
        m, cal = b.model, b.calibration
        sk = b.roles.skeleton
        parents = np.asarray(sk.parents)
        n = sk.num_joints
        one = [(j, k) for j, (kind, k) in enumerate(b.user_plan) if kind == "one"]
        chain_u, chain_m0, chain_m1, chain_t, chain_snap = [], [], [], [], []
        for j, (kind, data) in enumerate(b.user_plan):
            if kind != "chain":
                continue
            which, u = data
            mj, mu = b._model_chain(which)
            i = int(np.clip(np.searchsorted(mu, u, side="right") - 1, 0, len(mu) - 2))  # as `_sample`
            span = mu[i + 1] - mu[i]
            chain_u.append(j)
            chain_m0.append(mj[i])
            chain_m1.append(mj[i + 1])
            chain_snap.append(span <= 1e-9)
            chain_t.append(0.0 if span <= 1e-9 else float(np.clip((u - mu[i]) / span, 0.0, 1.0)))
        driven_u = np.array([j for j, _ in one] + chain_u, dtype=np.int64)
        delta_m = np.array([k for _, k in one] + chain_m0 + chain_m1, dtype=np.int64)
        carry = np.array([kind == "carry" for kind, _ in b.user_plan])
        carry_levels = []
        for idx, par in depth_levels(tuple(int(p) for p in parents)):
            sel = carry[idx]
            if sel.any():
                carry_levels.append((idx[sel], None if par is None else par[sel]))
        carried = np.array([j for js, _ in carry_levels for j in js], dtype=np.int64)
        anchor = []
        for j in carried:
            a = int(parents[j])
            while a >= 0 and carry[a]:
                a = int(parents[a])
            anchor.append(a)
        ro = b.roles.roles
        aims = []
        for which in ("spine", "neck"):
            uj, _ = b._user_chain(which)
            if len(uj) < 3:
                aims.append((-1, -1, np.zeros(0, np.int64)))
                continue
            path = _path_from_root(parents, uj[-2])
            aims.append((uj[-2], uj[-1], np.array(path[path.index(ro["hips"]):], dtype=np.int64)))
        end_parents, end_bones, end_slices = [], [], []
        for end in (0, m.role_index("chest"), m.role_index("head")):
            path = _path_from_root(m.parents, end)
            start = len(end_bones)
            end_bones += path[1:]
            end_parents += path[:-1]
            end_slices.append(slice(start, len(end_bones)))
        roots = parents < 0
        hips = ro["hips"]
        hips_path = _path_from_root(parents, int(parents[hips]))[:] if parents[hips] >= 0 else []
        driven = ~carry
        chain = np.array([kind == "chain" for kind, _ in b.user_plan])
        above = np.zeros(n, dtype=bool)
        above[hips_path] = True
        fix = (~driven | chain) & ~above
        below = np.zeros(n, dtype=bool)  # a driven joint somewhere below
        for idx, _ in reversed(depth_levels(tuple(int(p) for p in parents))):
            for j in idx:
                if parents[j] >= 0 and (not carry[j] or below[j]):
                    below[parents[j]] = True
        on_path = {int(j) for _, _, path in aims for j in path}
        inner = [i for i, j in enumerate(carried) if below[j] or int(j) in on_path]
        local = np.flatnonzero(~carry)
        return BackPlan(b.user_plan, b.model_plan, n, depth_levels(tuple(int(p) for p in m.parents)),
                        driven_u, delta_m, R.quat_conj(np.asarray(m.C)[delta_m]), np.array(chain_t),
                        np.array(chain_snap, dtype=bool), carry_levels, carried, np.array(anchor, dtype=np.int64),
                        np.array(inner, dtype=np.int64), aims,
                        np.array(end_parents, dtype=np.int64), np.array(end_bones, dtype=np.int64), end_slices,
                        R.quat_conj(cal.align), np.flatnonzero(roots), np.flatnonzero(~roots),
                        parents[~roots], hips, np.array(hips_path, dtype=np.int64), parents,
                        local, np.where(roots[local], local, parents[local]), roots[local], np.flatnonzero(fix),
                        _relink_levels(parents, fix, driven & ~chain))

    def carried_rel(self, carry_lr: np.ndarray) -> np.ndarray:
        """(C,4) each carried joint's rotation relative to its anchor, from one frame of local rotations (J,4)."""
        rel = np.empty((len(self.carried), 4))
        at = {}
        for i, j in enumerate(self.carried):
            p = int(self.parent_of[j])
            rel[i] = carry_lr[j] if p not in at else R.quat_mul(rel[at[p]], carry_lr[j])
            at[int(j)] = i
        return rel


def _relink_levels(parents: np.ndarray, fix: np.ndarray, keep: np.ndarray) -> list:
    """The seam blend's pass over the user's tree, reduced to the joints it changes, by depth.

    The blend turns the `fix` joints by their residuals, then keeps the `keep` joints' globals exact. A joint's
    global changes when it is fixed, or free (not kept) under a changed parent; a kept joint's local rotation
    changes under a changed parent (it absorbs the change). Only the changed globals that such a kept joint
    reads are recomputed. Each level: (free joints to re-chain, their parents, kept joints to re-derive, their
    parents); roots re-chain from the up alignment (parent None)."""
    n = len(parents)
    levels = depth_levels(tuple(int(p) for p in parents))
    changed = np.zeros(n, dtype=bool)
    for idx, par in levels:
        under = np.zeros(len(idx), dtype=bool) if par is None else changed[par]
        changed[idx] = ~keep[idx] & (fix[idx] | under)
    relink = keep & np.array([p >= 0 and changed[p] for p in parents], dtype=bool)
    needed = np.zeros(n, dtype=bool)  # changed joints on the way to a re-derived kept joint
    for idx, _ in reversed(levels):
        for j in idx:
            if changed[j] and any(relink[c] or needed[c] for c in np.flatnonzero(parents == j)):
                needed[j] = True
    out = []
    for idx, par in levels:
        free, rel = needed[idx], relink[idx]
        if free.any() or rel.any():
            out.append((idx[free], None if par is None else par[free],
                        idx[rel], idx[:0] if par is None else par[rel]))
    return out
