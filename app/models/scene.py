"""What the viewer shows, in plain Python: characters (clips or generated sequences), colours, ghosts,
timeline regions. The Qt side turns ``SceneModel.poses(frame)`` into draw calls.

Extension points for the transition editor (issue 7):
- ``add_sequence(name, positions, parents, fps, role=..., frame_offset=...)`` adds any (T,J,3) sequence, e.g.
  a generated transition or a stitched source -> transition -> target sequence.
- ``add_character(..., ghost=True)`` or ``alpha=`` < 1 draws a translucent ghost (e.g. the target pose, with
  ``hold=True`` and a one-frame sequence).
- ``set_regions([TimelineRegion(...)])`` colours stretches of the timeline (source / transition / target).
- ``update_positions(character, positions)`` swaps frames in place as they stream in (emits
  ``character_changed``), without re-framing the camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rsmt_studio.app.models.events import Event
from rsmt_studio.viewer.camera import skeleton_height

#: distinct colours in the order characters are added (warm first, then cool, colour-blind friendly-ish)
PALETTE: list[tuple[float, float, float]] = [
    (0.95, 0.55, 0.18),  # orange
    (0.25, 0.60, 0.95),  # blue
    (0.40, 0.80, 0.45),  # green
    (0.88, 0.35, 0.55),  # magenta
    (0.95, 0.85, 0.30),  # yellow
    (0.60, 0.45, 0.90),  # violet
]
GHOST_COLOUR = (0.80, 0.88, 1.00)
GHOST_ALPHA = 0.35

FOOT_WORDS = ("foot", "toe", "ankle")


@dataclass
class TimelineRegion:
    """A coloured stretch [start, end] (inclusive frames) of the timeline, e.g. 'transition'."""

    start: int
    end: int
    label: str
    colour: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass
class SceneCharacter:
    """One drawable sequence of poses. ``frame_offset`` is the timeline frame showing its frame 0."""

    name: str
    positions: np.ndarray  # (T,J,3) global joint positions
    parents: np.ndarray  # (J,)
    fps: float
    colour: tuple[float, float, float]
    alpha: float = 1.0
    role: str = "clip"  # 'clip', 'source', 'transition', 'target', 'ghost', ...
    frame_offset: int = 0
    hold: bool = True  # show the first/last pose outside the sequence instead of hiding it
    visible: bool = True
    clip: Any = None  # the motion Clip when there is one (properties dock reads labels from it)
    joint_names: list[str] = field(default_factory=list)
    bone_mask: np.ndarray | None = None
    joint_mask: np.ndarray | None = None  # joints to draw (a helper root left at the origin is hidden)
    trajectory_joint: int = 0  # the joint whose ground path is drawn (hips when the root is a static helper)
    trajectory: np.ndarray | None = None  # (T,3) that joint's path, one array kept so the viewer uploads it once
    foot_joints: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    contacts: np.ndarray | None = None  # (T, len(foot_joints)) bool
    height: float = 1.0
    labels: dict[str, str] = field(default_factory=dict)  # dataset / style / content as the library knows them

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def lowest_y(self) -> float:
        """Lowest height any drawn joint reaches (cached per positions array: the window asks every frame)."""
        cached = getattr(self, "_lowest", None)
        if cached is None or cached[0] is not self.positions:
            shown = self.positions if self.joint_mask is None else self.positions[:, self.joint_mask]
            cached = (self.positions, float(shown[..., 1].min()))
            self._lowest = cached
        return cached[1]

    @property
    def end_frame(self) -> int:
        """Last timeline frame covered (exclusive)."""
        return self.frame_offset + self.num_frames

    def local_frame(self, frame: int) -> int | None:
        """This character's own frame shown at timeline ``frame``, or None when hidden there."""
        f = frame - self.frame_offset
        if 0 <= f < self.num_frames:
            return f
        if not self.hold or self.num_frames == 0:
            return None
        return 0 if f < 0 else self.num_frames - 1


@dataclass
class Pose:
    """A character at one timeline frame, ready for the viewer."""

    character: SceneCharacter
    positions: np.ndarray  # (J,3)
    contact_positions: np.ndarray  # (K,3) feet on the ground now
    trajectory: np.ndarray  # (T,3) root path of the whole sequence


def default_bone_mask(positions: np.ndarray, parents: np.ndarray, height: float) -> np.ndarray:
    """Hide bones from a ground-level root node up to the hips (Bandai's ``joint_Root``): they are not limbs."""
    mask = np.ones(len(parents), bool)
    first = positions[0]
    for j, p in enumerate(parents):
        if p >= 0 and parents[p] < 0:
            root_low = first[p, 1] - positions[:, :, 1].min() < 0.1 * height
            long_bone = np.linalg.norm(first[j] - first[p]) > 0.3 * height
            if root_low and long_bone:
                mask[j] = False
    return mask


def helper_root_joints(positions: np.ndarray, parents: np.ndarray, bone_mask: np.ndarray) -> np.ndarray:
    """Roots whose only bones are hidden (a floor-level helper such as Bandai's joint_Root): not body parts."""
    hidden = np.zeros(len(parents), bool)
    for r in np.nonzero(parents < 0)[0]:
        kids = np.nonzero(parents == r)[0]
        if len(kids) and not bone_mask[kids].any():
            hidden[r] = True
    return hidden


def trajectory_joint(positions: np.ndarray, parents: np.ndarray) -> int:
    """The root, or its child when the root barely moves (files that keep the root fixed and move the hips)."""
    root = int(np.nonzero(parents < 0)[0][0])
    kids = np.nonzero(parents == root)[0]
    travel = lambda j: float(np.ptp(positions[:, j, [0, 2]], axis=0).max()) if len(positions) else 0.0
    if len(kids) and travel(root) < 0.5 * travel(int(kids[0])):
        return int(kids[0])
    return root


def foot_joint_indices(names: list[str], parents: np.ndarray) -> np.ndarray:
    """Joints whose names say foot/toe/ankle; keeps the lowest of each chain (toes over ankles)."""
    cand = [j for j, n in enumerate(names) if any(w in n.lower() for w in FOOT_WORDS)]
    keep = [j for j in cand if not any(parents[c] == j for c in cand)]
    return np.asarray(keep, int)


def detect_contacts(positions: np.ndarray, feet: np.ndarray, fps: float, height: float) -> np.ndarray:
    """Foot on the ground = close to its lowest height in the clip and nearly still (both relative to height)."""
    if len(feet) == 0 or len(positions) == 0:
        return np.zeros((len(positions), 0), bool)
    p = positions[:, feet, :]
    low = p[..., 1] - p[..., 1].min(axis=0, keepdims=True) < 0.05 * height
    vel = np.zeros(p.shape[:2])
    if len(p) > 1:
        vel[1:] = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
        vel[0] = vel[1]
    return low & (vel < 0.35 * height)


class SceneModel:
    """Characters on screen plus timeline regions; emits events the window turns into redraws."""

    def __init__(self) -> None:
        self.characters: list[SceneCharacter] = []
        self.regions: list[TimelineRegion] = []
        self.character_added = Event("character_added")  # (SceneCharacter)
        self.character_removed = Event("character_removed")  # (SceneCharacter)
        self.character_changed = Event("character_changed")  # (SceneCharacter) e.g. new frames streamed in
        self.cleared = Event("cleared")
        self.regions_changed = Event("regions_changed")  # (list[TimelineRegion])
        self._next_colour = 0

    # -- building ---------------------------------------------------------------------------------
    def next_colour(self) -> tuple[float, float, float]:
        c = PALETTE[self._next_colour % len(PALETTE)]
        self._next_colour += 1
        return c

    def add_sequence(
        self,
        name: str,
        positions: np.ndarray,
        parents: np.ndarray,
        fps: float,
        *,
        joint_names: list[str] | None = None,
        colour: tuple[float, float, float] | None = None,
        ghost: bool = False,
        alpha: float | None = None,
        role: str = "clip",
        frame_offset: int = 0,
        hold: bool = True,
        clip: Any = None,
        labels: dict[str, str] | None = None,
    ) -> SceneCharacter:
        """Add any (T,J,3) pose sequence (clip, generated transition, stitched sequence, ghost pose)."""
        positions = np.asarray(positions, np.float64)
        if positions.ndim == 2:
            positions = positions[None]
        parents = np.asarray(parents, int)
        names = list(joint_names or [f"joint{j}" for j in range(len(parents))])
        height = skeleton_height(positions)
        feet = foot_joint_indices(names, parents)
        bone_mask = default_bone_mask(positions, parents, height)
        ch = SceneCharacter(
            name=name,
            positions=positions,
            parents=parents,
            fps=float(fps),
            colour=colour or (GHOST_COLOUR if ghost else self.next_colour()),
            alpha=alpha if alpha is not None else (GHOST_ALPHA if ghost else 1.0),
            role="ghost" if ghost and role == "clip" else role,
            frame_offset=int(frame_offset),
            hold=hold,
            clip=clip,
            joint_names=names,
            bone_mask=bone_mask,
            joint_mask=~helper_root_joints(positions, parents, bone_mask),
            trajectory_joint=(tj := trajectory_joint(positions, parents)),
            trajectory=np.ascontiguousarray(positions[:, tj, :]),
            foot_joints=feet,
            contacts=detect_contacts(positions, feet, fps, height),
            height=height,
            labels=dict(labels or {}),
        )
        self.characters.append(ch)
        self.character_added.emit(ch)
        return ch

    def add_clip(self, clip: Any, positions: np.ndarray | None = None, **kwargs: Any) -> SceneCharacter:
        """Add a motion ``Clip``; FK runs once (or the loader thread already ran it and passes ``positions``)."""
        gpos = positions if positions is not None else clip.fk()[0]
        name = clip.name or (clip.source_path.stem if clip.source_path else "clip")
        return self.add_sequence(
            name, gpos, clip.skeleton.parents, clip.fps, joint_names=list(clip.skeleton.names), clip=clip, **kwargs
        )

    def update_positions(self, character: SceneCharacter, positions: np.ndarray) -> None:
        """Replace a character's frames (e.g. a transition being regenerated) and recompute contacts."""
        character.positions = np.asarray(positions, np.float64)
        character.contacts = detect_contacts(character.positions, character.foot_joints, character.fps,
                                             character.height)
        character.trajectory = np.ascontiguousarray(character.positions[:, character.trajectory_joint, :])
        self.character_changed.emit(character)

    def remove(self, character: SceneCharacter) -> None:
        self.characters.remove(character)
        self.character_removed.emit(character)

    def clear(self) -> None:
        self.characters.clear()
        self.regions.clear()
        self._next_colour = 0
        self.cleared.emit()

    def set_regions(self, regions: list[TimelineRegion]) -> None:
        self.regions = list(regions)
        self.regions_changed.emit(self.regions)

    # -- reading ----------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Timeline length: the furthest frame any character covers."""
        return max((c.end_frame for c in self.characters), default=0)

    @property
    def fps(self) -> float:
        return self.characters[0].fps if self.characters else 30.0

    @property
    def ground_y(self) -> float:
        """Floor height: the lowest joint of the solid characters (so any file's floor convention works)."""
        solid = [c for c in self.characters if c.alpha >= 0.999] or self.characters
        if not solid:
            return 0.0
        return float(min(c.lowest_y for c in solid))

    @property
    def height(self) -> float:
        return float(np.median([c.height for c in self.characters])) if self.characters else 1.0

    def poses(self, frame: int) -> list[Pose]:
        """Every visible character's pose at timeline ``frame``."""
        out = []
        for ch in self.characters:
            if not ch.visible:
                continue
            f = ch.local_frame(frame)
            if f is None:
                continue
            pos = ch.positions[f]
            touching = ch.contacts[f] if ch.contacts is not None and len(ch.contacts) else np.zeros(0, bool)
            out.append(Pose(ch, pos, pos[ch.foot_joints[touching]], ch.trajectory))
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.characters:
            return None
        pts = np.concatenate([c.positions.reshape(-1, 3) for c in self.characters])
        return pts.min(axis=0), pts.max(axis=0)
