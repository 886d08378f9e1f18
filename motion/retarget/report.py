"""What the mapping found, in words a user can check: each role, the joint, how sure, and the joints left over.

`MappingReport` is plain data (the studio shows it in a dialog, `rsmt-studio info --mapping` prints it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write_text
from ..clip import Clip
from ..skeleton import Skeleton
from . import names as N
from .roles import ALL_ROLES, REQUIRED, MappingError, RoleMap, find_roles

#: How sure each kind of evidence makes us.
CONFIDENCE = {"user": "set by you", "topology+name": "high", "topology": "medium (the name does not say)"}


@dataclass
class RoleLine:
    role: str
    joint: str | None
    confidence: str
    required: bool


@dataclass
class MappingReport:
    """Roles found, chains, leftover joints grouped by kind with what happens to them, and notes."""

    file: str
    signature: str
    roles: list[RoleLine]
    spine: list[str]
    neck: list[str]
    leftover: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def text(self) -> str:
        lines = [f"Mapping of {self.file}"]
        if self.error:
            return "\n".join([*lines, f"cannot be mapped: {self.error}"])
        for r in self.roles:
            lines.append(f"  {r.role:12s} <- {r.joint or '(none)':28s} {r.confidence}")
        lines.append(f"  spine chain: {' > '.join(self.spine) or '(none)'}   neck chain: "
                     f"{' > '.join(self.neck) or '(none)'}  (sampled by chain length)")
        for kind, joints in self.leftover.items():
            if joints:
                lines.append(f"  not driven by the model, {kind} ({len(joints)}): {', '.join(joints)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


LEFTOVER_POLICY = {
    "fingers and other branches": "held from the source's last frame, blended to the target's pose",
    "end helpers": "carried unchanged",
    "twist and pivot joints": "held from the source's last frame, blended to the target's pose",
}


def _confidence(evidence: str) -> str:
    if evidence in CONFIDENCE:
        return CONFIDENCE[evidence]
    if evidence.startswith("topology+name, also read as "):  # e.g. LeftShoulder: clavicle or upper arm
        other = evidence.rsplit(" ", 1)[-1]
        return f"high (by position; in other rigs this name means the {other.replace('_', ' ')})"
    if evidence.startswith("topology; the name suggests "):
        other = evidence.rsplit(" ", 1)[-1]
        return f"medium (by position; the name suggests the {other.replace('_', ' ')})"
    return "medium"


def skeleton_signature(sk: Skeleton) -> str:
    """Identifies a rig (names and parents) so a user's correction is reused for every clip on it."""
    h = hashlib.sha1(json.dumps([sk.names, sk.parents.tolist()]).encode())
    return h.hexdigest()[:16]


def mapping_report(clip: Clip, overrides: dict[str, str] | None = None) -> tuple[MappingReport, RoleMap | None]:
    """The report for `clip`'s rig (with the role map, or None and `error` set when it cannot be mapped)."""
    where = str(clip.source_path) if clip.source_path else (clip.name or "clip")
    sig = skeleton_signature(clip.skeleton)
    try:
        rm = find_roles(clip, overrides)
    except MappingError as exc:
        return MappingReport(where, sig, [], [], [], error=str(exc).removeprefix(f"{where}: ")), None
    sk = clip.skeleton
    lines = []
    for role in ALL_ROLES:
        j = rm.roles.get(role)
        conf = _confidence(rm.evidence.get(role, "")) if j is not None else (
            "missing: turns with its parent" if role not in REQUIRED else "missing")
        lines.append(RoleLine(role, None if j is None else sk.names[j], conf, role in REQUIRED))
    mapped = rm.mapped_joints()
    left: dict[str, list[str]] = {k: [] for k in LEFTOVER_POLICY}
    hips_ancestors = []
    p = int(sk.parents[rm.roles["hips"]])
    while p >= 0:
        hips_ancestors.append(p)
        p = int(sk.parents[p])
    for j, name in enumerate(sk.names):
        if j in mapped:
            continue
        if j in hips_ancestors:
            left.setdefault("above the hips (kept as in the source)", []).append(name)
        elif not sk.children(j) and N.is_end_helper(name):
            left["end helpers"].append(name)
        elif N.is_twist(name) or (j > 0 and float((sk.offsets[j] ** 2).sum()) < 1e-12):
            left["twist and pivot joints"].append(name)
        else:
            left["fingers and other branches"].append(name)
    return MappingReport(where, sig, lines, [sk.names[j] for j in rm.spine], [sk.names[j] for j in rm.neck],
                         left, list(rm.notes)), rm


class CorrectionStore:
    """Users' role corrections per rig signature, in one JSON file (written atomically)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.path}: unreadable mapping corrections: {exc}") from None
        return data if isinstance(data, dict) else {}

    def get(self, signature: str) -> dict[str, str]:
        return dict(self._read().get(signature, {}))

    def set(self, signature: str, corrections: dict[str, str]) -> None:
        data = self._read()
        if corrections:
            data[signature] = dict(corrections)
        else:
            data.pop(signature, None)
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
