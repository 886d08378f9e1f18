"""The joint hierarchy of a BVH file, kept exactly as the file declares it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

#: Channel names a BVH joint may declare, in canonical spelling.
POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")

# Left/right partner names: whole words, and single L/R letters standing alone between delimiters
# (Hand_L, hand.r, L_Foot, Bip01 L Calf) or leading a CamelCase word (LThigh, mixamo:RFoot).
_WORDS = [("Left", "Right"), ("left", "right"), ("LEFT", "RIGHT")]
_LONE_LETTER = re.compile(r"(?<![A-Za-z0-9])([LlRr])(?=[_.\-\s:]|$)")
_CAMEL_LETTER = re.compile(r"(?:(?<=^)|(?<=[_.\-\s:]))([LR])(?=[A-Z0-9])")
_SWAP_LETTER = {"L": "R", "R": "L", "l": "r", "r": "l"}


def _partner_names(name: str) -> list[str]:
    """Candidate names of the mirror partner of `name` (may include names that do not exist)."""
    out = []
    for a, b in _WORDS:
        if a in name:
            out.append(name.replace(a, b))
        if b in name:
            out.append(name.replace(b, a))
    for pattern in (_LONE_LETTER, _CAMEL_LETTER):
        swapped = pattern.sub(lambda m: _SWAP_LETTER[m.group(1)], name)
        if swapped != name:
            out.append(swapped)
    return out


@dataclass(eq=False)
class Skeleton:
    """Joint names, parents (root = -1, parents listed before children), rest offsets, channels, end sites."""

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    rotation_orders: list[str]
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3)
        self.names = list(self.names)
        self.channels = [tuple(c) for c in self.channels]
        self.rotation_orders = list(self.rotation_orders)
        self.end_sites = {int(k): np.asarray(v, dtype=np.float64).reshape(3) for k, v in self.end_sites.items()}
        n = len(self.names)
        if not (len(self.parents) == len(self.offsets) == len(self.channels) == len(self.rotation_orders) == n):
            raise ValueError("Skeleton fields disagree on the number of joints")
        if n == 0:
            raise ValueError("Skeleton needs at least one joint")
        for j, p in enumerate(self.parents):
            if not (p == -1 or 0 <= p < j):
                raise ValueError(f"joint {j} ({self.names[j]}): parent {p} must be -1 or an earlier joint")
        self._index = {name: i for i, name in enumerate(self.names)}

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of the joint called `name` (KeyError naming the joint if absent)."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no joint named {name!r}") from None

    def children(self, j: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.parents == j)]

    @property
    def roots(self) -> list[int]:
        return [int(r) for r in np.flatnonzero(self.parents == -1)]

    def position_channel_mask(self) -> np.ndarray:
        """(J,3) bool: which local translation components are animated by the file."""
        mask = np.zeros((self.num_joints, 3), dtype=bool)
        for j, chans in enumerate(self.channels):
            for c in chans:
                if c in POSITION_CHANNELS:
                    mask[j, POSITION_CHANNELS.index(c)] = True
        return mask

    def mirror_indices(self) -> np.ndarray:
        """Permutation swapping left and right joints, found by name; unpaired joints map to themselves."""
        perm = np.arange(self.num_joints)
        for j, name in enumerate(self.names):
            for cand in _partner_names(name):
                if cand != name and cand in self._index:
                    perm[j] = self._index[cand]
                    break
        # Keep only mutual pairs so the result is always an involution.
        bad = perm[perm] != np.arange(self.num_joints)
        perm[bad] = np.flatnonzero(bad)
        return perm

    def copy(self) -> Skeleton:
        return Skeleton(
            names=list(self.names), parents=self.parents.copy(), offsets=self.offsets.copy(),
            channels=list(self.channels), rotation_orders=list(self.rotation_orders),
            end_sites={k: v.copy() for k, v in self.end_sites.items()},
        )

    def same_topology(self, other: Skeleton) -> bool:
        """True when names and parents agree (offsets may differ)."""
        return self.names == other.names and np.array_equal(self.parents, other.parents)

    def __repr__(self) -> str:
        return f"Skeleton({self.num_joints} joints, root={self.names[0]!r})"
