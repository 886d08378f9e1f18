"""The transition being authored, in plain Python (no Qt): parameters, regeneration, the stitched result.

Why a model of its own: the panel, the session file, undo, export, the benchmark and the tests all drive the
same object, so "an edit" means the same thing everywhere. Generation runs in a runner thread that talks to
the engine (an `EngineWorker`, i.e. a child process); the runner only posts messages to a queue, and
`poll()` — called on the UI thread (the Qt side wakes it through a queued signal, see `wake`) — turns them
into events. So inference never runs on, nor blocks, the UI thread.

- Debounce (leading edge): an edit after a quiet spell runs at once; edits in a burst (a spin-box drag) each
  cancel the run in flight and merge into one run `debounce_s` after the burst pauses.
- A newer edit cancels the older run at once (the worker stops between graph calls).
- While idle (no request pending), the runner has the engine (once a generation has started it) encode each
  loaded clip's style code ahead of the edit that uses it (`style_prefetched`), so a style edit does not pay the
  encoding before its first frame.
- Frames stream in: `frames_streamed(gen, start, positions)`, the first frame alone, then the graph calls made
  within `stream_every_ms` of the last chunk joined into one (post-processing costs about the same per chunk
  for 1 or 40 frames), then `transition_ready`.
- The stitched sequence is source[: source_frame + 1] -> transition -> target[target_frame:], the target
  placed in the source's world the way the engine places it (`place_target`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rsmt_studio.app.models.events import Event
from rsmt_studio.motion import features as F
from rsmt_studio.motion import rotations as R
from rsmt_studio.motion.clip import Clip, forward_kinematics

ENGINE_NICE = 5  # niceness of the engine process's threads (see `renice_process`)
STREAM_EVERY_MS = 33.0  # streamed frames reach the viewer at most this often after the first (a frame at 30 fps)
STYLE_OF_TARGET = "@target"
STYLE_OF_SOURCE = "@source"
MODEL_FPS = 30.0
#: Errors about the user's request (its clips, frames, style), shown as their one-line message alone.
USER_ERRORS = ("TransitionError", "MappingError")


@dataclass(frozen=True)
class AuthoringParams:
    """Everything that defines one transition (what a session file stores besides the clip paths)."""

    source: str = ""  # clip key (its file path)
    source_frame: int = 9
    target: str = ""
    target_frame: int = 0
    style: str = STYLE_OF_TARGET  # a style-bank name, "@target" or "@source"
    length: int = 40  # frames (at the source's fps)
    length_unit: str = "frames"  # how the panel shows it: "frames" or "seconds"
    seed: int | None = 0  # None: no sampler noise
    device: str = "cpu"
    foot_lock: bool = True  # planted feet keep their place (the engine's foot lock)
    head_steady: bool = True  # the head turns half as far off the straight way to the keyframe

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthoringParams:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class StageTimes:
    """Per-transition stage times (ms) and per-frame ones, as measured in the engine process."""

    device: str = ""
    style_ms: float = 0.0  # > 0 only when this style was encoded for this transition (once per style)
    features_ms: float = 0.0
    prepare_ms: float = 0.0
    total_ms: float = 0.0
    per_frame: list[dict[str, float]] = field(default_factory=list)  # sampler_ms, postprocess_ms, deliver_ms


@dataclass
class TransitionResult:
    """A finished transition and its stitched sequence."""

    gen: int
    params: AuthoringParams
    source: Clip
    target_placed: Clip  # the target clip moved into the source's world (at the source fps)
    transition: Clip  # generated frames only, on the source skeleton
    phase: np.ndarray  # (L, C, 2) predicted phase-manifold vectors
    times: StageTimes
    first_frame_ms: float  # from the edit (or request) to the first frame delivered
    wall_ms: float  # from the edit to the last frame delivered
    positions: np.ndarray | None = None  # (T,J,3) FK of the stitched clip (made on the runner thread)
    ghost_pose: np.ndarray | None = None  # (J,3) the placed target keyframe pose
    placed_frame: int | None = None  # the keyframe's index in target_placed (differs when the fps did)

    @property
    def keyframe(self) -> int:
        return self.params.target_frame if self.placed_frame is None else self.placed_frame

    @property
    def regions(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """Inclusive timeline frame spans of source, transition, target in the stitched sequence."""
        n = self.params.source_frame
        L = self.transition.num_frames
        end = n + L + (self.target_placed.num_frames - self.keyframe)
        return (0, n), (n + 1, n + L), (n + L + 1, end)

    def stitched(self) -> Clip:
        """source[:n+1] + transition + placed target[m:] on the source skeleton."""
        return stitch(self.source, self.params.source_frame, self.transition, self.target_placed, self.keyframe)


# ----------------------------------------------------------------------------------------------- maths
def place_target(source: Clip, source_frame: int, target: Clip, target_frame: int, length: int,
                 rigs: Any = None) -> Clip:
    """The target clip rigidly moved (yaw about the up axis, a ground-plane shift) the way the engine places its
    keyframe, on the source's rig.

    Same file: unchanged. Otherwise turned to the source's facing at its last context frame and put where the
    source's root would be after continuing its mean context velocity for `length + 1` frames. A target on
    another rig is first re-expressed on the source's rig (through the model rig, as the engine reads it), so
    the stitched result is one clip on the source's skeleton. `rigs` is a `RigAdapter` (default: a shared one
    with the user's saved corrections).
    """
    if source.source_path is not None and source.source_path == target.source_path and target.fps == source.fps:
        return target
    rigs = rigs or default_rigs()
    if target.skeleton.names != source.skeleton.names or not np.array_equal(target.skeleton.parents,
                                                                              source.skeleton.parents):
        moved = rigs.onto_source_rig(target, source, source_frame, target_frame, length)
        target_frame, target = placed_frame(target, target_frame, moved), moved
    elif target.fps != source.fps:
        target = target.resample(source.fps)
        target_frame = min(round(target_frame * source.fps / target.fps), target.num_frames - 1)
    if source.source_path is not None and source.source_path == target.source_path:
        return target
    hips, left, right, align = _body_joints(source, rigs)
    lo = max(0, source_frame - (F.N_PAST - 1))
    gpos_s = R.quat_rotate(align, source.slice(lo, source_frame + 1).fk()[0])  # up-aligned world (y up)
    gpos_t = R.quat_rotate(align, target.slice(target_frame, target_frame + 1).fk()[0])
    f_src = _facing(gpos_s[-1], left, right)
    f_tgt = _facing(gpos_t[0], left, right)
    yaw = F.yaw_matrix_to_z(f_src).swapaxes(-1, -2) @ F.yaw_matrix_to_z(f_tgt)
    vel = (gpos_s[-1, hips] - gpos_s[0, hips]) / max(len(gpos_s) - 1, 1)
    vel[1] = 0.0
    frames_ahead = (length + 1) * source.fps / MODEL_FPS  # the engine's length+1 model frames, in source frames
    anchor = gpos_s[-1, hips] + vel * frames_ahead
    anchor[1] = 0.0
    root_t = gpos_t[0, hips].copy()
    root_t[1] = 0.0
    # applied to the file's root joint: world = align^-1 (yaw (align x - root_t) + anchor) for every joint
    q = R.quat_mul(R.quat_conj(align), R.quat_mul(R.matrix_to_quat(yaw), align))
    lp = target.local_pos.copy()
    lr = target.local_rot.copy()
    lp[:, 0] = R.quat_rotate(R.quat_conj(align), (R.quat_rotate(align, lp[:, 0]) - root_t) @ yaw.T + anchor)
    lr[:, 0] = R.quat_mul(np.broadcast_to(q, lr[:, 0].shape), lr[:, 0])
    return replace(target, local_pos=lp, local_rot=lr)


def transition_frames(length: int, fps: float) -> int:
    """Frames a transition of `length` model frames covers on a timeline at `fps` (the engine fills every
    source frame between the last context frame and the keyframe: 4 x (L + 1) - 1 at 120 fps)."""
    if abs(fps - MODEL_FPS) < 1e-6:
        return int(length)
    return round(fps / MODEL_FPS * (length + 1)) - 1


def _to_source_rate(before: np.ndarray, positions: np.ndarray, ratio: float, start: int, span: int) -> np.ndarray:
    """Streamed model-fps positions (n,J,3) as the source-fps frames they cover (linear in between), for the
    preview only; the finished transition comes from the engine at the source's fps."""
    seq = np.concatenate([before[None], positions])
    a = round(start * ratio)
    b = min(round((start + len(positions)) * ratio), span)
    t = (np.arange(a + 1, b + 1) / ratio) - start  # in model frames from `before`
    i = np.clip(np.floor(t).astype(int), 0, len(seq) - 2)
    w = (t - i)[:, None, None]
    return seq[i] * (1 - w) + seq[i + 1] * w


def placed_frame(target: Clip, target_frame: int, placed: Clip) -> int:
    """The keyframe's index in `place_target`'s result (which is at the source's fps)."""
    if abs(placed.fps - target.fps) < 1e-6:
        return int(target_frame)
    return min(round(target_frame * placed.fps / target.fps), placed.num_frames - 1)


def _facing(pos: np.ndarray, left: int, right: int) -> np.ndarray:
    f = np.cross(pos[left] - pos[right], np.array([0.0, 1.0, 0.0]))
    f[1] = 0.0
    return f / max(float(np.linalg.norm(f)), 1e-9)


def _body_joints(clip: Clip, rigs: Any) -> tuple[int, int, int, np.ndarray]:
    """Hips, left and right hip sockets of a clip's rig, and the rotation that makes its up axis +Y."""
    b = rigs.binding_for(clip)
    if b is None:  # the model rig: Y up, the engine's own joints
        names = clip.skeleton.names
        return names.index("Hips"), names.index("UpperLeg_L"), names.index("UpperLeg_R"), R.identity_quat()
    ro = b.roles.roles
    return ro["hips"], ro["upper_leg.L"], ro["upper_leg.R"], b.calibration.align


_RIGS: dict[Path, Any] = {}


def default_rigs() -> Any:
    """One `RigAdapter` per corrections file for the studio, reading the user's saved corrections (the engine
    worker has its own, built by the same rule, so both bind a rig identically)."""
    from rsmt_studio.app.qt.settings import corrections_path

    path = corrections_path()
    if path not in _RIGS:
        from rsmt_studio.inference.rigs import RigAdapter, load_model_rig
        from rsmt_studio.motion.retarget import CorrectionStore

        _RIGS[path] = RigAdapter(load_model_rig(None), CorrectionStore(path).get)
    return _RIGS[path]


def stitch(source: Clip, source_frame: int, transition: Clip, target_placed: Clip, target_frame: int) -> Clip:
    """One clip on the source's skeleton: source[:n+1] + transition + target[m:] (quaternion signs joined)."""
    pos_t, rot_t = target_part(source, target_placed, target_frame)
    lp = np.concatenate([source.local_pos[: source_frame + 1], transition.local_pos, pos_t])
    lr = R.quat_continuity(np.concatenate([source.local_rot[: source_frame + 1], transition.local_rot, rot_t]))
    name = f"{source.name or 'source'}_to_{target_placed.name or 'target'}"
    return replace(source, local_pos=lp, local_rot=lr, name=name, frame_range=None, source_path=None)


def target_part(source: Clip, target_placed: Clip, target_frame: int) -> tuple[np.ndarray, np.ndarray]:
    """`stitch`'s last part: the placed target from its keyframe on with the source skeleton's bone offsets, as
    (local_pos, local_rot)."""
    if target_placed.num_joints != source.num_joints:
        raise ValueError(f"target has {target_placed.num_joints} joints, source {source.num_joints}")
    tgt = target_placed.slice(target_frame, target_placed.num_frames)
    pos_t = tgt.local_pos.copy()
    moving = _position_channels(source)
    pos_t[:, ~moving] = source.skeleton.offsets[~moving]  # target's bone offsets -> the source skeleton's
    return pos_t, tgt.local_rot


def _position_channels(clip: Clip) -> np.ndarray:
    return np.array([any(c.endswith("position") for c in ch) for ch in clip.skeleton.channels], bool)


def frame_seconds(frames: int, fps: float) -> float:
    return frames / fps


def seconds_frames(seconds: float, fps: float) -> int:
    return max(1, round(seconds * fps))


# ----------------------------------------------------------------------------------------------- model
@dataclass
class _Request:
    gen: int
    params: AuthoringParams
    source: Clip
    target: Clip
    style: Any  # a bank name or a Clip
    edited_at: float
    not_before: float


class AuthoringModel:
    """Authoring state + generation (see the module docstring). Events fire from `poll()` only."""

    def __init__(self, engine_for: Callable[[str], Any], debounce_s: float = 0.03,
                 wake: Callable[[], None] | None = None, stream_every_ms: float = STREAM_EVERY_MS) -> None:
        self.engine_for = engine_for  # device -> engine-like (EngineWorker); called on the runner thread
        self.debounce_s = debounce_s
        self.stream_every_ms = stream_every_ms  # `TransitionEngine.stream`'s `every_ms` (0: a chunk per graph call)
        self.wake = wake or (lambda: None)
        self.params = AuthoringParams()
        self.clips: dict[str, Clip] = {}
        self.result: TransitionResult | None = None
        self.partial: tuple | None = None  # (stitched positions before frames arrive, transition span) of a run
        self.partial_gen = -1
        self.generating = False
        self.last_error = ""
        # (source, target) -> None, or raises MappingError for a clip whose rig cannot be mapped; called on the
        # runner thread before the engine, so such a clip says why instead of reaching the model (the studio
        # sets it to `MappingModel.check_pair`, which uses the user's saved corrections)
        self.check_clips: Callable[[Clip, Clip], None] | None = None
        self.styles: list[str] = []
        self.params_changed = Event("params_changed")  # (AuthoringParams)
        self.clips_changed = Event("clips_changed")  # (list[str])
        self.generation_started = Event("generation_started")  # (gen)
        self.frames_streamed = Event("frames_streamed")  # (gen, start, positions (n,J,3), chunk timing dict)
        self.transition_ready = Event("transition_ready")  # (TransitionResult)
        self.generation_failed = Event("generation_failed")  # (gen, message)
        self.generation_cancelled = Event("generation_cancelled")  # (gen)
        self.phases_ready = Event("phases_ready")  # (gen, {"source": PhaseTrack, "target": PhaseTrack})
        self.progress = Event("progress")  # (dict) engine start-up / compile progress
        self.styles_changed = Event("styles_changed")  # (list[str]) the engine's style bank, once it is up
        self.style_prefetched = Event("style_prefetched")  # (clip key, encode ms) a loaded clip's style code is ready
        self._gen = 0
        self._last_request = -1e9
        self._posted_styles: list[str] = []
        self._fk_cache: dict[int, tuple[Clip, np.ndarray]] = {}
        self._phase_cache: dict[tuple[str, int], tuple[Clip, Any]] = {}  # (device, id(clip)) -> (clip, PhaseTrack)
        self._warm: list[str] = []  # clip keys whose style code the runner has encoded while idle (`_prefetch`)
        self._started: set[str] = set()  # devices whose engine a generation has started (a prefetch starts none)
        from concurrent.futures import ThreadPoolExecutor

        self._side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rsmt-authoring-side")
        self._pending: _Request | None = None
        self._current_cancel: Any = None
        self._cond = threading.Condition()
        self._messages: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rsmt-authoring", daemon=True)
        self._thread.start()

    # -- clips and parameters ---------------------------------------------------------------------
    def add_clip(self, clip: Clip, key: str | None = None) -> str:
        key = key or str(clip.source_path or clip.name)
        self.clips[key] = clip
        self._prefetch([key])
        self.clips_changed.emit(list(self.clips))
        return key

    def _prefetch(self, keys: list[str]) -> None:
        """Queue clips whose style code the runner has the engine encode while no request is pending."""
        with self._cond:
            self._warm += [k for k in keys if k not in self._warm]
            self._cond.notify_all()

    def set_params(self, params: AuthoringParams | None = None, regenerate: bool = True, **changes: Any) -> None:
        """Replace parameters (validated and clamped to the clips); schedules a debounced regeneration."""
        new = replace(params or self.params, **changes)
        new = self._clamped(new)
        if new == self.params and params is None and not changes:
            return
        old, self.params = self.params, new
        if new.device != old.device:  # style codes are memoised per engine: warm the new device's
            self._prefetch(list(self.clips))
        self.params_changed.emit(new)
        if regenerate and replace(new, length_unit=old.length_unit) != old:  # the unit is only how it is shown
            self.request()

    def _clamped(self, p: AuthoringParams) -> AuthoringParams:
        src, tgt = self.clips.get(p.source), self.clips.get(p.target)
        sf = p.source_frame if src is None else int(np.clip(p.source_frame, F.N_PAST - 1, src.num_frames - 1))
        tf = p.target_frame if tgt is None else int(np.clip(p.target_frame, 0, tgt.num_frames - 1))
        return replace(p, source_frame=sf, target_frame=tf, length=int(np.clip(p.length, 1, 1000)))

    @property
    def ready(self) -> bool:
        return self.params.source in self.clips and self.params.target in self.clips

    def style_argument(self, p: AuthoringParams | None = None) -> Any:
        p = p or self.params
        if p.style == STYLE_OF_TARGET:
            return self.clips[p.target]
        if p.style == STYLE_OF_SOURCE:
            return self.clips[p.source]
        return p.style

    # -- generation -------------------------------------------------------------------------------
    def request(self, immediate: bool = False) -> int:
        """Schedule a run of the current parameters; cancels the run in flight. Returns its generation id."""
        if not self.ready:
            return -1
        now = time.perf_counter()
        with self._cond:
            self._gen += 1
            p = self.params
            # leading-edge debounce: an edit after a quiet spell runs at once; edits in a burst (a spin-box
            # drag) each cancel the run in flight and wait for the burst to pause
            quiet = now - self._last_request >= self.debounce_s and self._current_cancel is None
            self._last_request = now
            delay = 0.0 if immediate or quiet else self.debounce_s
            self._pending = _Request(self._gen, p, self.clips[p.source], self.clips[p.target], self.style_argument(p),
                                     now, now + delay)
            if self._current_cancel is not None:
                self._current_cancel.cancel()
            self._cond.notify_all()
            return self._gen

    def poll(self) -> int:
        """Deliver queued runner messages as events (call on the UI thread). Returns how many."""
        n = 0
        while True:
            try:
                msg = self._messages.get_nowait()
            except queue.Empty:
                return n
            n += 1
            self._deliver(*msg)

    def wait(self, gen: int | None = None, timeout_s: float = 60.0) -> TransitionResult | None:
        """Poll until `gen` (default: the latest) has finished or failed (scripts, bench, tests)."""
        gen = self._gen if gen is None else gen
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if self.result is not None and self.result.gen == gen:
                return self.result
            if self._finished_gen >= gen:
                return self.result if self.result and self.result.gen == gen else None
            try:  # block until the runner posts (a sleep-and-poll loop added up to its period to every event)
                msg = self._messages.get(timeout=min(0.05, max(deadline - time.monotonic(), 1e-3)))
            except queue.Empty:
                continue
            self._deliver(*msg)
        raise TimeoutError(f"transition {gen} not finished within {timeout_s} s")

    _finished_gen = -1

    @property
    def latest_gen(self) -> int:
        """Id of the newest request."""
        return self._gen

    @property
    def finished_gen(self) -> int:
        """Id of the newest request that has finished, failed or been cancelled (as delivered by `poll`)."""
        return self._finished_gen

    def close(self) -> None:
        with self._cond:
            self._closed = True
            if self._current_cancel is not None:
                self._current_cancel.cancel()
            self._cond.notify_all()
        self._thread.join(10)
        self._side.shutdown(wait=False)

    def _deliver(self, kind: str, gen: int, *payload: Any) -> None:
        if kind == "started":
            self.generating = True
            self.partial_gen = gen
            self.partial = (payload[0], payload[1])
            self.generation_started.emit(gen)
        elif kind == "chunk":
            start, positions, timing = payload
            if gen == self._gen:  # a newer edit exists: stale frames are not shown
                self.frames_streamed.emit(gen, start, positions, timing)
        elif kind == "styles":
            self.styles = list(payload[0])
            self.styles_changed.emit(self.styles)
        elif kind == "progress":
            self.progress.emit(payload[0])
        elif kind == "prefetched":
            self.style_prefetched.emit(*payload)
        elif kind == "phases":
            self.phases_ready.emit(gen, payload[0])
        elif kind == "done":
            self._finished_gen = max(self._finished_gen, gen)
            self.generating = gen != self._gen
            self.result = payload[0]
            self.last_error = ""
            self.transition_ready.emit(payload[0])
        elif kind == "failed":
            self._finished_gen = max(self._finished_gen, gen)
            self.generating = gen != self._gen
            self.last_error = payload[0]
            self.generation_failed.emit(gen, payload[0])
        elif kind == "cancelled":
            self._finished_gen = max(self._finished_gen, gen)
            self.generation_cancelled.emit(gen)

    def post_progress(self, event: dict) -> None:
        """From any thread: engine progress, delivered as `progress` by `poll()`."""
        self._post("progress", -1, event)

    def _post(self, *msg: Any) -> None:
        self._messages.put(msg)
        self.wake()

    def _run(self) -> None:
        from rsmt_studio.inference.engine import CancelToken

        while True:
            with self._cond:
                while not self._closed and (self._pending is None
                                            or time.perf_counter() < self._pending.not_before):
                    if self._pending is None and self._warm and self.params.device in self._started:
                        break
                    wait = None if self._pending is None else self._pending.not_before - time.perf_counter()
                    self._cond.wait(timeout=wait)
                if self._closed:
                    return
                warm = self._warm.pop(0) if self._pending is None else None
                if warm is None:
                    req, self._pending = self._pending, None
                    self._current_cancel = CancelToken()
                    token = self._current_cancel
            if warm is not None:  # idle: one clip's style code, then look for a request again
                self._warm_style(warm)
                continue
            try:
                self._generate(req, token)
            except BaseException as exc:  # noqa: BLE001 - reported to the UI thread
                name = type(exc).__name__
                if name == "GenerationCancelled" or token.cancelled:
                    self._post("cancelled", req.gen)
                else:
                    self._post("failed", req.gen, f"{exc}" if name in USER_ERRORS else f"{name}: {exc}")
            finally:
                with self._cond:
                    if self._current_cancel is token:
                        self._current_cancel = None

    def _warm_style(self, key: str) -> None:
        """Have the engine encode (and memoise) a loaded clip's style code before an edit asks for it: on two cores
        the encoding took 6-9 ms inside the edit, before its first frame. Runs only while no request is pending and
        only on an engine a generation started (loading a clip starts no engine process), so an edit waits at most
        for one encoding already in flight; errors are left for the edit to report."""
        clip = self.clips.get(key)
        if clip is None:
            return
        try:
            engine = self.engine_for(self.params.device)
            encode = getattr(engine, "style_code", None)
            if encode is None:
                return
            code = encode(clip)
        except Exception:  # noqa: BLE001 - an edit using this clip reports it
            return
        self._post("prefetched", -1, key, float(getattr(code, "encode_ms", 0.0)))

    def _phases(self, engine: Any, device: str, clip: Clip) -> Any:
        """DeepPhase over a clip for the phase view, memoised per device and clip object (clips are not edited in
        place): the engine memoises it too, but asking costs a pipe round trip with the whole clip (1-2 ms)."""
        hit = self._phase_cache.get((device, id(clip)))
        if hit is None or hit[0] is not clip:
            hit = (clip, engine.clip_phases(clip))
            self._phase_cache[(device, id(clip))] = hit
        return hit[1]

    def _fk(self, clip: Clip) -> np.ndarray:
        """Global positions of a clip, memoised per clip object (clips are not edited in place)."""
        hit = self._fk_cache.get(id(clip))
        if hit is None or hit[0] is not clip:
            hit = (clip, clip.fk()[0])
            self._fk_cache[id(clip)] = hit
        return hit[1]

    def _generate(self, req: _Request, token: Any) -> None:
        from rsmt_studio.inference.engine import Transition, TransitionChunk

        if self.check_clips is not None:
            self.check_clips(req.source, req.target)
        engine = self.engine_for(req.params.device)
        self._started.add(req.params.device)
        styles = list(getattr(engine, "styles", []))
        if styles != self._posted_styles:
            self._posted_styles = styles
            self._post("styles", -1, styles)
        p = req.params
        ratio = req.source.fps / MODEL_FPS  # source frames per model frame (the engine streams model frames)
        span = transition_frames(p.length, req.source.fps)

        def scene_part():  # runs while the engine process makes the first frames (~3 ms of numpy)
            placed = place_target(req.source, p.source_frame, req.target, p.target_frame, p.length)
            key = placed_frame(req.target, p.target_frame, placed)
            ghost = placed.slice(key, key + 1).fk()[0][0]
            tail = forward_kinematics(req.source.skeleton.parents, *target_part(req.source, placed, key))[0]
            src_pos = self._fk(req.source)[: p.source_frame + 1]
            # what the viewer shows until frames arrive: the source's last context pose held, then the target
            base = np.concatenate([src_pos, np.repeat(src_pos[-1:], span, axis=0), tail])
            return placed, ghost, tail, base, key

        side = self._side.submit(scene_part)
        started = False
        times = StageTimes()
        first_ms = None
        result = None
        for item in engine.stream(req.source, p.source_frame, req.target, p.target_frame, req.style, p.length,
                                  seed=p.seed, cancel=token, every_ms=self.stream_every_ms,
                                  foot_lock=p.foot_lock, head_steady=p.head_steady):
            if not started:
                placed, ghost, tail, base, key = side.result()
                self._post("started", req.gen, base, (p.source_frame + 1, p.source_frame + 1 + span))
                started = True
                last_pose = base[p.source_frame]
            if isinstance(item, TransitionChunk):
                t0 = time.perf_counter()
                positions = item.clip.fk()[0]
                n = positions.shape[0]
                start = item.start
                if abs(ratio - 1.0) > 1e-6:  # preview on the source's timeline: model frames interpolated
                    positions, last_pose = _to_source_rate(last_pose, positions, ratio, start, span), positions[-1]
                    start = round(item.start * ratio)
                deliver_ms = (time.perf_counter() - t0) * 1e3
                timing = {"sampler_ms": item.sampler_ms / n, "postprocess_ms": item.postprocess_ms / n,
                          "deliver_ms": deliver_ms / n, "frames": n}
                times.per_frame += [{k: timing[k] for k in ("sampler_ms", "postprocess_ms", "deliver_ms")}] * n
                if first_ms is None:
                    first_ms = (time.perf_counter() - req.edited_at) * 1e3
                    timing["first_frame_ms"] = first_ms
                self._post("chunk", req.gen, start, positions, timing)
            elif isinstance(item, Transition):
                result = item
        if result is None or token.cancelled:
            raise _cancelled()
        t = result.timings
        times.device, times.style_ms, times.features_ms = t.device, t.style_ms, t.features_ms
        times.prepare_ms, times.total_ms = t.prepare_ms, t.total_ms
        wall = (time.perf_counter() - req.edited_at) * 1e3
        done = TransitionResult(req.gen, p, req.source, placed, result.clip, result.phase, times, first_ms or wall,
                                wall, ghost_pose=ghost, placed_frame=key)
        # `done.stitched().fk()` by parts (FK is per frame; joining only flips quaternion signs, which FK does not
        # see): the source's memoised, the target's made meanwhile, so only the transition's 40 frames are left here
        done.positions = np.concatenate([self._fk(req.source)[: p.source_frame + 1], result.clip.fk()[0], tail])
        try:  # phases for the phase view (DeepPhase over both clips; memoised per clip by the engine), posted
            # just before the result so that the UI updates both in one pass
            if not token.cancelled:
                self._post("phases", req.gen, {"source": self._phases(engine, p.device, req.source),
                                               "target": self._phases(engine, p.device, req.target)})
        except Exception as exc:  # noqa: BLE001 - the phase view is optional; generation succeeded
            self._post("progress", -1, {"event": "phases_failed", "message": str(exc)})
        self._post("done", req.gen, done)


def _cancelled() -> BaseException:
    from rsmt_studio.inference.engine import GenerationCancelled

    return GenerationCancelled("transition cancelled")


def renice_process(pid: int, nice: int) -> None:
    """Lower the CPU priority of every thread of `pid` (Linux: niceness is per thread; MAX's pool already exists).

    Why: on a 2-core machine the engine's threads would otherwise take the cores from the UI thread while a
    transition is generated; niced, they use what the UI leaves. Measured in docs/authoring.md.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    tasks = Path(f"/proc/{pid}/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [pid]
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            pass


class WorkerPool:
    """One `EngineWorker` per device, started on first use (on the runner thread, never the UI's).

    A worker whose process has died (a crash, the OOM killer) is replaced by a fresh one on the next request: the
    transition that was running reports "engine worker exited with code N", the next edit generates again."""

    def __init__(self, assets: Path | None = None, progress: Callable[[dict], None] | None = None,
                 nice: int = ENGINE_NICE) -> None:
        self.assets = assets
        self.progress = progress
        self.nice = nice
        self._workers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.restarts = 0  # dead workers replaced so far

    def __call__(self, device: str) -> Any:
        with self._lock:
            dead = self._workers.get(device)
            if dead is not None and not dead.is_alive:
                dead.close()
                del self._workers[device]
                self.restarts += 1
            if device not in self._workers:
                from rsmt_studio.app.qt.settings import corrections_path
                from rsmt_studio.inference.worker import EngineWorker

                # first_step: an edit's first frame after one sampler step, not eight (CPU; the engine says why)
                worker = EngineWorker(self.assets, device=device, progress=self.progress,
                                      corrections_file=str(corrections_path()), first_step=True)
                renice_process(worker.pid, self.nice)
                self._workers[device] = worker
            return self._workers[device]

    def styles(self, device: str = "cpu") -> list[str]:
        return self(device).styles

    def close(self) -> None:
        with self._lock:
            for w in self._workers.values():
                w.close()
            self._workers.clear()


__all__ = ["STYLE_OF_SOURCE", "STYLE_OF_TARGET", "AuthoringModel", "AuthoringParams", "StageTimes",
           "TransitionResult", "WorkerPool", "place_target", "stitch"]
