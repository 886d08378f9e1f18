"""Clips on any humanoid rig in and out of the engine: the model rig, bindings, seam blends, stitching.

The engine asks `RigAdapter` for every clip it reads (sources, targets, style clips): clips on the model's own rig
pass through untouched (today's exact path), others are mapped and retargeted, memoised.

Which frame calibrates a rig is decided by the request, never by what the engine happened to see first: a clip
is calibrated on itself, and a target on the source's rig uses the source's binding (so both sides of a
transition share one canonical pose). The studio builds its own `RigAdapter` with the same rule and gets the same
bindings when it stitches a target from another rig onto the source's. User corrections (role -> joint name, per
rig signature) come from `corrections`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from weakref import WeakKeyDictionary

import numpy as np
from rsmt_studio.inference.memo import BoundedMemo
from rsmt_studio.motion import rotations as R
from rsmt_studio.motion.clip import Clip
from rsmt_studio.motion.retarget import MappingError, ModelRig, RigBinding, find_roles, skeleton_signature
from rsmt_studio.motion.retarget.model_rig import is_model_rig
from rsmt_studio.motion.retarget.seam import SeamBlend, round_trip, seam_blend

MODEL_RIG_FILE = "model_rig.json"


def load_model_rig(assets_dir: Path | None) -> ModelRig:
    """The model rig of an assets folder, else the shipped one (every shipped model shares Bandai's rig)."""
    import rsmt_studio.assets as pkg

    for folder in (assets_dir, Path(pkg.__file__).resolve().parent):
        if folder is not None and (Path(folder) / MODEL_RIG_FILE).is_file():
            return ModelRig.load(Path(folder) / MODEL_RIG_FILE)
    raise FileNotFoundError(f"no {MODEL_RIG_FILE} in {assets_dir} or the shipped assets")


def clip_key(clip: Clip) -> tuple:
    """Identifies a clip's content across processes (the worker receives fresh copies every call)."""
    return (str(clip.source_path), clip.num_frames, clip.num_joints, round(float(clip.fps), 6),
            float(clip.local_pos.sum()), float(clip.local_rot[..., 0].sum()))


class RigAdapter:
    def __init__(self, rig: ModelRig, corrections: Callable[[str], dict[str, str]] | None = None,
                 max_clips: int = 64) -> None:
        self.rig = rig
        self.corrections = corrections
        self._bindings = BoundedMemo(max_clips)
        self._clips = BoundedMemo(max_clips)
        self._trips = BoundedMemo(4 * max_clips)
        self._keys: WeakKeyDictionary[Clip, tuple] = WeakKeyDictionary()

    def is_model_rig(self, clip: Clip) -> bool:
        return is_model_rig(clip.skeleton, self.rig)

    def _ids(self, clip: Clip) -> tuple[str, tuple]:
        """(rig signature, `clip_key`) of a clip. One request asks for them a dozen times (sums over the whole
        clip), so they are kept per clip object while its skeleton and arrays are the same objects (clips are
        never edited in place: every edit makes new arrays)."""
        hit = self._keys.get(clip)
        if hit is not None and hit[0] is clip.skeleton and hit[1] is clip.local_pos and hit[2] is clip.local_rot:
            return hit[3], hit[4]
        ids = skeleton_signature(clip.skeleton), clip_key(clip)
        self._keys[clip] = (clip.skeleton, clip.local_pos, clip.local_rot, *ids)
        return ids

    def binding(self, clip: Clip) -> RigBinding:
        """`clip`'s rig mapped (with the user's corrections for it) and calibrated on `clip`'s neutral frame.
        Raises `MappingError` naming the file and the role when the rig cannot be mapped."""
        sig, ck = self._ids(clip)
        fixes = self.corrections(sig) if self.corrections else {}
        key = (sig, tuple(sorted(fixes.items())), ck)
        return self._bindings.get_or(key, lambda: RigBinding.bind(clip, find_roles(clip, fixes or None), self.rig))

    def binding_for(self, clip: Clip, source: Clip | None = None) -> RigBinding | None:
        """The binding a request uses for `clip`: the source's when `clip` is on the source's rig, else its own;
        None for the model rig."""
        if self.is_model_rig(clip):
            return None
        if source is not None and self._ids(source)[0] == self._ids(clip)[0]:
            return self.binding(source)
        return self.binding(clip)

    def model_clip(self, clip: Clip, source: Clip | None = None) -> tuple[Clip, RigBinding | None]:
        """`clip` on the model rig (itself when it already is) and the binding used (`binding_for`)."""
        b = self.binding_for(clip, source)
        if b is None:
            return clip, None
        return self._clips.get_or((self._ids(clip)[1], id(b)), lambda: b.to_model(clip)), b

    def _round_trip(self, clip: Clip, b: RigBinding, frame: int) -> np.ndarray:
        ck = self._ids(clip)[1]

        def make():
            on_model = self._clips.get_or((ck, id(b)), lambda: b.to_model(clip))
            return round_trip(b, clip, on_model, frame)

        return self._trips.get_or((ck, id(b), int(frame)), make)

    def seam(self, source: Clip, source_frame: int, target: Clip, target_frame: int, length: int) -> SeamBlend:
        """How generated frames go back onto the source's rig without a pop at either seam."""
        b = self.binding(source)
        same_rig = self._ids(target)[0] == self._ids(source)[0]
        tgt_trip = self._round_trip(target, b, target_frame) if same_rig else None
        return seam_blend(b, source, self._round_trip(source, b, source_frame), source_frame,
                          target if same_rig else None, tgt_trip, target_frame, length)

    def onto_source_rig(self, target: Clip, source: Clip, source_frame: int, target_frame: int,
                        length: int) -> Clip:
        """A target clip on another rig re-expressed on the source's rig (for a stitched export): through the
        model rig, undriven joints carried from the source's last context frame, the transition's end residual
        held, at the source's fps."""
        on_model, b = self.model_clip(target)  # its own calibration, as the engine read it
        if b is None:  # a target on the model rig: its 21 joints without a dummy root
            from rsmt_studio.motion.features import model_clip as fold_dummy_root

            on_model, _ = fold_dummy_root(target)
        if on_model.fps != source.fps:
            on_model = on_model.resample(source.fps)
        if self.is_model_rig(source):  # model-rig frames are the source rig's frames (under its dummy root)
            drop = source.num_joints - on_model.num_joints
            lp = np.broadcast_to(source.local_pos[source_frame], (on_model.num_frames, *source.local_pos.shape[1:]))
            lr = np.broadcast_to(source.local_rot[source_frame], (on_model.num_frames, *source.local_rot.shape[1:]))
            lp, lr = lp.copy(), lr.copy()
            lr[:, drop:] = on_model.local_rot
            hips = on_model.local_pos[:, 0]
            if drop:  # hips_local = dummy^-1 (hips_world - dummy_translation)
                q0, t0 = source.local_rot[source_frame, 0], source.local_pos[source_frame, 0]
                hips = R.quat_rotate(R.quat_conj(q0), hips - t0)
                lr[:, drop] = R.quat_mul(R.quat_conj(q0), on_model.local_rot[:, 0])
            lp[:, drop] = hips
        else:
            blend = self.seam(source, source_frame, target, target_frame, length)
            lp, lr = blend.apply(on_model.local_pos, on_model.local_rot, length)  # the end residual, held
        return replace(source, fps=float(source.fps), local_pos=lp, local_rot=R.quat_normalize(lr),
                       name=target.name, source_path=target.source_path, frame_range=None)


__all__ = ["MappingError", "RigAdapter", "clip_key", "load_model_rig"]
