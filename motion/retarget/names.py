"""Joint names as *evidence* for humanoid roles: normalised tokens, side words, per-role keywords.

Names never decide a role on their own (``LeftShoulder`` is the clavicle in Mixamo and CMU-MB but the upper arm
in CMU-max and 100STYLE; SMPL's ``left_foot`` is the toe): `roles.find_roles` decides by topology and geometry
and only asks this module whether a name agrees, to grade its confidence and break ties.
"""

from __future__ import annotations

import re

# Helper leaves exported as JOINTs (Mixamo via Blender, Geno): carried through, never given a role.
_END = re.compile(r"(end|nub|tip|site|top_end|headtop)$|_end\b|end_?site", re.IGNORECASE)
_TWIST = re.compile(r"twist|roll", re.IGNORECASE)

#: Words that suggest each role (lower-case, matched on the normalised name). Several roles share words
#: ("shoulder", "hip", "leg") on purpose: that is exactly the ambiguity topology resolves.
ROLE_WORDS: dict[str, tuple[str, ...]] = {
    "hips": ("hips", "hip", "pelvis", "root"),
    "chest": ("chest", "spine", "upperback", "torso"),
    "spine": ("spine", "back", "chest", "torso", "abdomen"),
    "neck": ("neck",),
    "head": ("head", "upperneck"),
    "clavicle": ("clavicle", "collar", "shoulder"),
    "upper_arm": ("upperarm", "arm", "shoulder", "humerus"),
    "forearm": ("forearm", "lowerarm", "elbow", "lo_arm"),
    "hand": ("hand", "wrist"),
    "upper_leg": ("upleg", "upperleg", "thigh", "hip", "femur"),
    "lower_leg": ("leg", "lowerleg", "knee", "calf", "shin"),
    "foot": ("foot", "ankle"),
    "toe": ("toe", "ball", "foot"),
}


def normalise(name: str) -> str:
    """Lower-case name without a namespace (`mixamorig:`, `Character1_`) or a `mixamorigN` prefix."""
    base = name.rsplit(":", 1)[-1]
    base = re.sub(r"^(mixamorig\d*|bip0?1|character\d*|def)[_ ]?", "", base, flags=re.IGNORECASE)
    return base.lower()


def is_end_helper(name: str) -> bool:
    """A leaf helper such as ``HeadTop_End``, ``LeftToe_End``, ``RightHandEnd``."""
    return bool(_END.search(normalise(name)))


def is_twist(name: str) -> bool:
    """A twist / roll bone (UE ``upperarm_twist_01_l``, ``LeftForeArmRoll``)."""
    return bool(_TWIST.search(normalise(name)))


def side_of(name: str) -> int:
    """+1 left, -1 right, 0 unknown, from the name alone (Left*, *_L, L_*, LHand, left_hip, lshoulder)."""
    raw = name.rsplit(":", 1)[-1]
    low = normalise(name)
    if "left" in low:
        return 1
    if "right" in low:
        return -1
    if re.search(r"(^|[_.\-\s])l($|[_.\-\s])", low) or re.match(r"^L[A-Z_]", raw):
        return 1
    if re.search(r"(^|[_.\-\s])r($|[_.\-\s])", low) or re.match(r"^R[A-Z_]", raw):
        return -1
    if re.match(r"^l(hip|knee|ankle|toe|foot|shoulder|elbow|wrist|clavicle|collar|hand|arm|leg|up)", low):
        return 1
    if re.match(r"^r(hip|knee|ankle|toe|foot|shoulder|elbow|wrist|clavicle|collar|hand|arm|leg|up)", low):
        return -1
    return 0


def name_agrees(name: str, role: str) -> bool:
    """Whether the name contains one of the role's words (after removing side words)."""
    low = normalise(name)
    low = re.sub(r"left|right", "", low)
    words = ROLE_WORDS.get(role, ())
    squashed = re.sub(r"[_.\-\s\d]", "", low)
    return any(w.replace("_", "") in squashed for w in words)


#: Names whose meaning depends on the convention (note §1.3): the roles each may stand for.
AMBIGUOUS: dict[str, tuple[str, ...]] = {
    "shoulder": ("clavicle", "upper_arm"),  # Mixamo/CMU-MB: clavicle; CMU-max/100STYLE/SMPL: upper arm
    "hip": ("upper_leg", "hips"),  # CMU-max/SMPL: thigh; Rokoko/DAZ: the pelvis
    "leg": ("lower_leg", "upper_leg"),  # Mixamo: lower leg; some lists: upper leg
    "foot": ("foot", "toe"),  # most: ankle; SMPL: the toe
}


def ambiguous_roles(name: str) -> tuple[str, ...]:
    """The roles a convention-dependent name may mean (empty for an unambiguous name)."""
    core = re.sub(r"left|right|[_.\-\s\d]", "", normalise(name))
    if core not in AMBIGUOUS and core[:1] in ("l", "r") and core[1:] in AMBIGUOUS:
        core = core[1:]
    return AMBIGUOUS.get(core, ())
