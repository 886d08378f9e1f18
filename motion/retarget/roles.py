"""Find the humanoid roles of any BVH skeleton: topology and geometry first, names as evidence.

The steps (research note shared/notes/retargeting.md §1.4):

1. hips: walking down from the root, the first joint with three or more non-trivial child subtrees
   (skips Bandai's ``joint_Root``, UE's ``root``);
2. the hips subtree holding the chest (a joint with three non-trivial subtrees: neck and two arms) is the torso,
   the two longest remaining subtrees are the legs;
3. along each leg's main path (zero-length pivots, twist bones and end helpers skipped): upper leg, lower leg,
   foot, toe (optional);
4. the chest's two longest subtrees are the arms, the third the neck; the head is the last joint of the neck's
   main path; each arm's hand is where it branches into fingers (or its last joint), then forearm and upper
   arm before it, and the upper arm's parent (if it is not the chest) is the clavicle;
5. left and right from geometry: the body's up (hips to head) and forward (heel to toe, else travel), so that
   mislabelled or unlabelled sides still come out right; names only confirm;
6. sanity checks with a one-line error naming the role and the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..clip import Clip
from ..skeleton import Skeleton
from . import names as N

SIDES = ("L", "R")
LIMB_ROLES = ("clavicle", "upper_arm", "forearm", "hand", "upper_leg", "lower_leg", "foot", "toe")
REQUIRED = ("hips", "chest", "head", "upper_arm.L", "forearm.L", "hand.L", "upper_arm.R", "forearm.R", "hand.R",
            "upper_leg.L", "lower_leg.L", "foot.L", "upper_leg.R", "lower_leg.R", "foot.R")
ALL_ROLES = ("hips", "chest", "head") + tuple(f"{r}.{s}" for s in SIDES for r in LIMB_ROLES)


class MappingError(ValueError):
    """A skeleton that cannot be mapped onto the model's roles; the message names the file and the role."""


@dataclass
class RoleMap:
    """Role name -> joint index, plus the spine (hips..chest) and neck (chest..head) chain interiors.

    `evidence[role]` says how the role was found: "topology+name", "topology" (the name says nothing or is
    ambiguous), "name disagrees" (topology won over a name that suggests something else) or "user" (a
    correction). `notes` hold whole-skeleton findings (sides from geometry vs names, up axis).
    """

    skeleton: Skeleton
    roles: dict[str, int]
    spine: list[int]
    neck: list[int]
    evidence: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))

    def joint(self, role: str) -> int | None:
        return self.roles.get(role)

    def name(self, role: str) -> str | None:
        j = self.roles.get(role)
        return None if j is None else self.skeleton.names[j]

    def mapped_joints(self) -> set[int]:
        return set(self.roles.values()) | set(self.spine) | set(self.neck)

    def role_of(self, joint: int) -> str | None:
        for role, j in self.roles.items():
            if j == joint:
                return role
        if joint in self.spine:
            return "spine"
        if joint in self.neck:
            return "neck"
        return None


# ---------------------------------------------------------------------------------------------- topology
class _Tree:
    def __init__(self, sk: Skeleton) -> None:
        self.sk = sk
        n = sk.num_joints
        self.children: list[list[int]] = [[] for _ in range(n)]
        for j, p in enumerate(sk.parents):
            if p >= 0:
                self.children[p].append(j)
        self.length = np.linalg.norm(sk.offsets, axis=1)
        scale = float(np.median(self.length[self.length > 0])) if (self.length > 0).any() else 1.0
        self.eps = 1e-3 * scale
        self.end = [not self.children[j] and N.is_end_helper(sk.names[j]) for j in range(n)]
        self.weight = np.zeros(n)  # total bone length of the subtree below j (end sites included)
        for j in reversed(range(n)):
            site = np.linalg.norm(sk.end_sites[j]) if j in sk.end_sites else 0.0
            self.weight[j] = site + sum(self.weight[c] + self.length[c] for c in self.children[j])

    def real_children(self, j: int) -> list[int]:
        """Children that are not end helpers and carry some length below them."""
        return [c for c in self.children[j] if not self.end[c] and (self.weight[c] + self.length[c]) > self.eps]

    def main_child(self, j: int) -> int | None:
        kids = [c for c in self.children[j] if not self.end[c]]
        if not kids:
            return None
        return max(kids, key=lambda c: self.weight[c] + self.length[c])

    def main_path(self, start: int) -> list[int]:
        path = [start]
        while (nxt := self.main_child(path[-1])) is not None:
            path.append(nxt)
        return path

    def subtree(self, j: int) -> list[int]:
        out, stack = [], [j]
        while stack:
            k = stack.pop()
            out.append(k)
            stack.extend(self.children[k])
        return out

    def is_pivot(self, j: int) -> bool:
        """Sits on its parent (zero OFFSET) or is a twist bone: never a role of its own along a limb."""
        return self.length[j] <= self.eps or N.is_twist(self.sk.names[j])


def _find_hips(t: _Tree) -> int:
    for root in t.sk.roots:
        j = root
        while True:
            if len(t.real_children(j)) >= 3:
                return j
            kids = t.real_children(j)
            if len(kids) != 1:
                break
            j = kids[0]
    raise MappingError("no hips: no joint below the root branches into a spine and two legs")


def _find_chest(t: _Tree, start: int) -> int | None:
    """First joint on the torso's main path with three non-trivial subtrees (neck + two arms)."""
    for j in t.main_path(start):
        if len(t.real_children(j)) >= 3:
            return j
    return None


# ---------------------------------------------------------------------------------------------- geometry
def _pose_positions(clip: Clip) -> np.ndarray:
    """(K,J,3) global positions of a few frames spread over the clip (K <= 16), for geometric votes."""
    idx = np.unique(np.linspace(0, clip.num_frames - 1, min(16, clip.num_frames)).round().astype(int))
    gpos, _ = clip.slice(0, clip.num_frames).fk()
    return gpos[idx]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _axis_name(v: np.ndarray) -> str:
    k = int(np.argmax(np.abs(v)))
    return ("+" if v[k] > 0 else "-") + "XYZ"[k]


def snap_axis(v: np.ndarray, degrees: float = 25.0) -> np.ndarray:
    """The nearest signed world axis when `v` is within `degrees` of it, else `v` normalised."""
    v = _unit(v)
    k = int(np.argmax(np.abs(v)))
    axis = np.zeros(3)
    axis[k] = np.sign(v[k])
    return axis if float(v @ axis) >= np.cos(np.deg2rad(degrees)) else v


# ---------------------------------------------------------------------------------------------- main
def find_roles(clip: Clip, overrides: dict[str, str] | None = None) -> RoleMap:
    """Roles of `clip.skeleton`, found from its topology and the geometry of its frames.

    `overrides` maps role -> joint name (a user's correction); they replace what was found and are checked
    like everything else. Raises `MappingError` naming the file and the missing role.
    """
    where = str(clip.source_path) if clip.source_path else (clip.name or "clip")
    try:
        rm = _find(clip)
    except MappingError as exc:
        raise MappingError(f"{where}: {exc}") from None
    if overrides:
        _apply_overrides(rm, overrides, where)
    missing = [r for r in REQUIRED if r not in rm.roles]
    if missing:
        raise MappingError(f"{where}: no joint found for the required role {missing[0]}")
    _sanity(rm, where)
    return rm


def _find(clip: Clip) -> RoleMap:
    sk = clip.skeleton
    t = _Tree(sk)
    hips = _find_hips(t)
    kids = t.real_children(hips)
    chests = {c: _find_chest(t, c) for c in kids}
    torso_kids = [c for c in kids if chests[c] is not None]
    if not torso_kids:
        raise MappingError(f"no chest: nothing above the hips {sk.names[hips]!r} branches into a neck and two arms")
    torso = max(torso_kids, key=lambda c: t.weight[c])
    chest = chests[torso]
    legs = sorted((c for c in kids if c != torso), key=lambda c: -(t.weight[c] + t.length[c]))[:2]
    if len(legs) < 2:
        raise MappingError(f"hips {sk.names[hips]!r} have fewer than two legs")
    spine_path = t.main_path(torso)
    spine = spine_path[: spine_path.index(chest)]
    ckids = sorted(t.real_children(chest), key=lambda c: -(t.weight[c] + t.length[c]))
    arms, neck_root = ckids[:2], ckids[2]
    neck_path = [neck_root]
    while len(t.children[neck_path[-1]]) == 1 and (nxt := t.main_child(neck_path[-1])) is not None:
        neck_path.append(nxt)  # the head is where the path branches (eyes, jaw, HeadTop_End) or ends
    head = neck_path[-1]
    neck = neck_path[:-1]

    rm = RoleMap(sk, {"hips": hips, "chest": chest, "head": head}, spine, neck)
    pos = _pose_positions(clip)  # (K,J,3)
    up = _unit((pos[:, head] - pos[:, hips]).mean(0))
    rm.up = snap_axis(up, 90.0)
    tilt = float(np.degrees(np.arccos(np.clip(up @ rm.up, -1, 1))))
    rm.notes.append(f"up axis {_axis_name(rm.up)} (the body leans {tilt:.0f} deg from it on average)")

    leg_roles = {c: _leg_roles(t, c) for c in legs}
    arm_roles = {c: _arm_roles(t, c, chest) for c in arms}
    forward = _forward(pos, leg_roles, rm.up, hips)
    left = np.cross(rm.up, forward) if forward is not None else None
    _assign_sides(rm, t, pos, left, leg_roles, "upper_leg")
    _assign_sides(rm, t, pos, left, arm_roles, "upper_arm")
    for role, j in rm.roles.items():
        base = role.split(".")[0]
        agrees = N.name_agrees(sk.names[j], base)
        other = next((r for r in N.ambiguous_roles(sk.names[j]) if r != base), None)
        if other is None:
            rm.evidence[role] = "topology+name" if agrees else "topology"
        else:
            rm.evidence[role] = f"topology+name, also read as {other}" if agrees else \
                f"topology; the name suggests {other}"
    return rm


def _leg_roles(t: _Tree, start: int) -> dict[str, int]:
    path = [j for j in t.main_path(start) if not t.is_pivot(j)]
    if len(path) < 3:
        raise MappingError(f"leg {t.sk.names[start]!r}: needs upper leg, lower leg and foot, found "
                           f"{[t.sk.names[j] for j in path]}")
    roles = {"upper_leg": path[0], "lower_leg": path[1], "foot": path[2]}
    if len(path) >= 4:
        roles["toe"] = path[3]
    return roles


def _arm_roles(t: _Tree, start: int, chest: int) -> dict[str, int]:
    path = t.main_path(start)
    hand_at = len(path) - 1
    for i, j in enumerate(path):
        if len([c for c in t.real_children(j) if not N.is_twist(t.sk.names[c])]) >= 2:
            hand_at = i
            break
    hand = path[hand_at]
    before = [j for j in path[:hand_at] if not t.is_pivot(j)]
    if len(before) < 2:
        raise MappingError(f"arm {t.sk.names[start]!r}: needs upper arm, forearm and hand, found "
                           f"{[t.sk.names[j] for j in path[:hand_at + 1]]}")
    forearm, upper = before[-1], before[-2]
    roles = {"upper_arm": upper, "forearm": forearm, "hand": hand}
    parent = int(t.sk.parents[upper])
    if parent != chest:
        roles["clavicle"] = parent
    return roles


def _forward(pos: np.ndarray, leg_roles: dict[int, dict[str, int]], up: np.ndarray, hips: int) -> np.ndarray | None:
    """Body forward (unit, horizontal): heel to toe where there are toes, else the direction of travel."""
    votes = []
    for roles in leg_roles.values():
        if "toe" in roles:
            votes.append((pos[:, roles["toe"]] - pos[:, roles["foot"]]).mean(0))
    if not votes:
        travel = pos[-1, hips] - pos[0, hips]
        votes.append(travel)
        for roles in leg_roles.values():  # knees bend forward: knee ahead of the hip-ankle line
            hip, knee, ankle = (pos[:, roles[k]] for k in ("upper_leg", "lower_leg", "foot"))
            mid = 0.5 * (hip + ankle)
            votes.append(0.2 * (knee - mid).mean(0))
    f = np.sum(votes, axis=0)
    f = f - (f @ up) * up
    n = np.linalg.norm(f)
    return None if n < 1e-6 else f / n


def _assign_sides(rm: RoleMap, t: _Tree, pos: np.ndarray, left: np.ndarray | None,
                  limbs: dict[int, dict[str, int]], anchor: str) -> None:
    sk = rm.skeleton
    (_a, ra), (_b, rb) = limbs.items()
    geo = None
    if left is not None:
        d = float(((pos[:, ra[anchor]] - pos[:, rb[anchor]]) @ left).mean())
        spread = float(np.linalg.norm(pos[:, ra[anchor]] - pos[:, rb[anchor]], axis=-1).mean())
        if abs(d) > 0.2 * spread:
            geo = 1 if d > 0 else -1  # +1: limb a is the left one
    name_a, name_b = N.side_of(sk.names[ra[anchor]]), N.side_of(sk.names[rb[anchor]])
    by_name = name_a if name_a and name_a == -name_b else 0
    side = geo or by_name
    if not side:
        raise MappingError(f"cannot tell left from right between {sk.names[ra[anchor]]!r} and "
                           f"{sk.names[rb[anchor]]!r} (no toes, no travel, no side in the names)")
    if geo and by_name and geo != by_name:
        rm.notes.append(f"{sk.names[ra[anchor]]} / {sk.names[rb[anchor]]}: sides taken from geometry; "
                        "the names say the opposite")
    lft, rgt = (ra, rb) if side > 0 else (rb, ra)
    for s, roles in (("L", lft), ("R", rgt)):
        for role, j in roles.items():
            rm.roles[f"{role}.{s}"] = j


def _apply_overrides(rm: RoleMap, overrides: dict[str, str], where: str) -> None:
    sk = rm.skeleton
    for role, name in overrides.items():
        if role not in ALL_ROLES:
            raise MappingError(f"{where}: correction names an unknown role {role!r}")
        if name in ("", None):
            if role in REQUIRED:
                raise MappingError(f"{where}: the required role {role} cannot be left empty")
            rm.roles.pop(role, None)
        else:
            try:
                rm.roles[role] = sk.index(name)
            except KeyError:
                raise MappingError(f"{where}: correction for {role}: no joint named {name!r}") from None
        rm.evidence[role] = "user"


def _sanity(rm: RoleMap, where: str) -> None:
    sk = rm.skeleton
    t = _Tree(sk)
    used = {}
    for role, j in rm.roles.items():
        if j in used:
            raise MappingError(f"{where}: joint {sk.names[j]!r} fills two roles ({used[j]} and {role})")
        used[j] = role
    anc = {j: _ancestors(sk, j) for j in range(sk.num_joints)}
    chains = [("hips", "chest"), ("chest", "head")]
    for s in SIDES:
        chains += [("chest", f"upper_arm.{s}"), (f"upper_arm.{s}", f"forearm.{s}"), (f"forearm.{s}", f"hand.{s}"),
                   ("hips", f"upper_leg.{s}"), (f"upper_leg.{s}", f"lower_leg.{s}"), (f"lower_leg.{s}", f"foot.{s}")]
        if f"toe.{s}" in rm.roles:
            chains.append((f"foot.{s}", f"toe.{s}"))
        if f"clavicle.{s}" in rm.roles:
            chains += [("chest", f"clavicle.{s}"), (f"clavicle.{s}", f"upper_arm.{s}")]
    for up_role, down_role in chains:
        if rm.roles[up_role] not in anc[rm.roles[down_role]]:
            raise MappingError(f"{where}: {down_role} ({rm.name(down_role)}) is not below {up_role} "
                               f"({rm.name(up_role)})")
    rest = _rest_lengths(t, rm)
    for s in SIDES:
        ua, fa = rest[f"upper_arm.{s}"], rest[f"forearm.{s}"]
        th, sh = rest[f"upper_leg.{s}"], rest[f"lower_leg.{s}"]
        if not 0.4 <= ua / max(fa, 1e-9) <= 2.5:
            raise MappingError(f"{where}: upper_arm.{s} / forearm.{s} length ratio {ua / max(fa, 1e-9):.2f} is not "
                               "humanoid (0.4-2.5): check the arm roles")
        if not 0.4 <= th / max(sh, 1e-9) <= 2.5:
            raise MappingError(f"{where}: upper_leg.{s} / lower_leg.{s} length ratio {th / max(sh, 1e-9):.2f} is "
                               "not humanoid (0.4-2.5): check the leg roles")


def _ancestors(sk: Skeleton, j: int) -> set[int]:
    out = set()
    p = int(sk.parents[j])
    while p >= 0:
        out.add(p)
        p = int(sk.parents[p])
    return out


def _rest_lengths(t: _Tree, rm: RoleMap) -> dict[str, float]:
    """Rest length of each limb bone: the straight distance from the joint to the next role joint (zero pose)."""
    sk = rm.skeleton
    rest = np.zeros((sk.num_joints, 3))
    for j, p in enumerate(sk.parents):
        rest[j] = sk.offsets[j] + (rest[p] if p >= 0 else 0.0)
    out = {}
    for s in SIDES:
        for a, b in (("upper_arm", "forearm"), ("forearm", "hand"), ("upper_leg", "lower_leg"),
                     ("lower_leg", "foot")):
            out[f"{a}.{s}"] = float(np.linalg.norm(rest[rm.roles[f"{b}.{s}"]] - rest[rm.roles[f"{a}.{s}"]]))
    return out
