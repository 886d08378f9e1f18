"""The Transition panel and `TransitionStudio`, which wires authoring into the studio window.

`TransitionPanel` only edits `AuthoringParams` (through the undo stack, so every edit can be undone);
`TransitionStudio` owns the `AuthoringModel`, shows its results in the scene (one stitched character:
source -> transition -> target, plus a translucent ghost of the target keyframe pose), colours the
timeline, feeds the latency and phase panels, autosaves the session and exports BVH.

Threading: the model's runner thread wakes the UI with a queued Qt signal; `AuthoringModel.poll()` then
runs on the UI thread. Nothing here waits on inference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QWidget,
)
from rsmt_studio.app.models.authoring import (
    STYLE_OF_SOURCE,
    STYLE_OF_TARGET,
    AuthoringModel,
    AuthoringParams,
    TransitionResult,
    WorkerPool,
    seconds_frames,
)
from rsmt_studio.app.models.export import confirm_overwrite, export_bvh
from rsmt_studio.app.models.mapping import MappingModel
from rsmt_studio.app.models.scene import TimelineRegion
from rsmt_studio.app.models.session import (
    Autosaver,
    Session,
    SessionError,
    load_session,
    make_undo_stack,
    save_session,
)
from rsmt_studio.app.models.step_profile import StepProfileModel
from rsmt_studio.app.qt.latency_panel import LatencyPanel
from rsmt_studio.app.qt.phase_view import make_phase_view
from rsmt_studio.app.qt.settings import corrections_path

REGION_COLOURS = {"source": (0.95, 0.55, 0.18), "transition": (0.25, 0.60, 0.95), "target": (0.40, 0.80, 0.45)}
STITCHED_COLOUR = (0.25, 0.60, 0.95)
AUTOSAVE_DELAY_MS = 400


def default_scene_dir() -> Path:
    from rsmt_studio.inference.engine import default_assets_dir

    return default_assets_dir() / "default_scene"


def gpu_present() -> bool:
    """A GPU MAX could use, judged without importing MAX into the UI process (NVIDIA/AMD device nodes)."""
    return Path("/dev/nvidia0").exists() or Path("/dev/kfd").exists()


class _Waker(QObject):
    woke = Signal()


class TransitionPanel(QWidget):
    """Source/target clip and frame, style, length (frames or seconds), seed, device."""

    def __init__(self, studio: TransitionStudio, parent=None) -> None:
        super().__init__(parent)
        self.studio = studio
        self.model = studio.model
        form = QFormLayout(self)
        self.source_box, self.target_box = QComboBox(), QComboBox()
        self.source_frame, self.target_frame = QSpinBox(), QSpinBox()
        for spin in (self.source_frame, self.target_frame):
            spin.setRange(0, 100000)
            spin.setKeyboardTracking(False)
        self.source_pick = QToolButton(text="\u25c6 timeline", toolTip="Use the timeline's current frame")
        self.target_pick = QToolButton(text="\u25c6 timeline", toolTip="Use the timeline's current frame")
        # beside each clip, how its rig maps onto the model's: one word, red if it cannot (the why in the tooltip)
        self.source_rig, self.target_rig = QLabel(), QLabel()
        form.addRow("Source clip", _row(self.source_box, self.source_rig))
        form.addRow("Source frame", _row(self.source_frame, self.source_pick))
        form.addRow("Target clip", _row(self.target_box, self.target_rig))
        form.addRow("Target frame", _row(self.target_frame, self.target_pick))
        self.style_box = QComboBox()
        form.addRow("Target style", self.style_box)
        self.length = QDoubleSpinBox()
        self.length.setKeyboardTracking(False)
        self.length_unit = QComboBox()
        self.length_unit.addItems(["frames", "seconds"])
        form.addRow("Length", _row(self.length, self.length_unit))
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("no noise")
        self.seed.setKeyboardTracking(False)
        self.dice = QToolButton(text="\u2684", toolTip="New random seed")
        form.addRow("Seed", _row(self.seed, self.dice))
        self.foot_lock = QCheckBox("Foot lock")
        self.foot_lock.setToolTip("Planted feet keep their place; the legs follow by IK. Off: the feet as the "
                                  "model made them.")
        self.head_steady = QCheckBox("Steady head")
        self.head_steady.setToolTip("The head turns on the neck half as far off the straight way from the source "
                                    "frame to the target frame. Off: the head as the model made it.")
        self.device = QComboBox()
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU", "gpu")
        if not gpu_present():
            self.device.model().item(1).setEnabled(False)
            self.device.setItemData(1, "No GPU on this machine", Qt.ItemDataRole.ToolTipRole)
        form.addRow("Device", _row(self.device, self.foot_lock, self.head_steady))  # one row: the dock keeps its height
        self.generate_button = QPushButton("Generate")
        self.export_button = QPushButton("Export BVH\u2026")
        form.addRow(_row(self.generate_button, self.export_button))
        self.status = QLabel("Load two clips to author a transition.")
        self.status.setWordWrap(True)
        form.addRow(self.status)
        self._updating = False
        self._connect()
        self.refresh_clips()
        self.show_params(self.model.params)

    def _connect(self) -> None:
        edit = self.studio.undo.edit
        self.source_box.activated.connect(lambda _i: edit(source=self.source_box.currentData()))
        self.target_box.activated.connect(lambda _i: edit(target=self.target_box.currentData()))
        self.source_frame.valueChanged.connect(lambda v: self._user(lambda: edit(source_frame=int(v))))
        self.target_frame.valueChanged.connect(lambda v: self._user(lambda: edit(target_frame=int(v))))
        self.style_box.activated.connect(lambda _i: edit(style=self.style_box.currentData()))
        self.length.valueChanged.connect(lambda v: self._user(self._length_edited))
        self.length_unit.activated.connect(lambda _i: edit(length_unit=self.length_unit.currentText()))
        self.seed.valueChanged.connect(lambda v: self._user(lambda: edit(seed=None if v < 0 else int(v))))
        self.dice.clicked.connect(lambda: edit(seed=int(np.random.default_rng().integers(0, 2**31 - 1))))
        self.device.activated.connect(lambda _i: edit(device=self.device.currentData()))
        self.foot_lock.toggled.connect(lambda on: self._user(lambda: edit(foot_lock=bool(on))))
        self.head_steady.toggled.connect(lambda on: self._user(lambda: edit(head_steady=bool(on))))
        self.source_pick.clicked.connect(self.studio.pick_source_from_timeline)
        self.target_pick.clicked.connect(self.studio.pick_target_from_timeline)
        self.generate_button.clicked.connect(lambda: self.model.request(immediate=True))
        self.export_button.clicked.connect(self.studio.export_dialog)
        self.model.params_changed.connect(self.show_params)
        self.model.params_changed.connect(lambda _p: self.show_rigs())
        self.studio.mappings.mapping_changed.connect(lambda _sig: self.show_rigs())
        self.model.clips_changed.connect(lambda _k: self.refresh_clips())
        self.model.styles_changed.connect(lambda _s: self.refresh_clips())

    def _user(self, fn) -> None:
        if not self._updating:
            fn()

    def _fps(self) -> float:
        clip = self.model.clips.get(self.model.params.source)
        return clip.fps if clip is not None else 30.0

    def _length_edited(self) -> None:
        v = self.length.value()
        frames = round(v) if self.length_unit.currentText() == "frames" else seconds_frames(v, self._fps())
        self.studio.undo.edit(length=frames)

    def refresh_clips(self) -> None:
        self._updating = True
        for box in (self.source_box, self.target_box):
            box.clear()
            for key, clip in self.model.clips.items():
                box.addItem(clip.name or Path(key).stem, key)
        self.style_box.clear()
        self.style_box.addItem("Style of the target clip", STYLE_OF_TARGET)
        self.style_box.addItem("Style of the source clip", STYLE_OF_SOURCE)
        for name in self.model.styles:
            self.style_box.addItem(name, name)
        self._updating = False
        self.show_params(self.model.params)
        self.show_rigs()

    def show_rigs(self) -> None:
        """Beside each chosen clip: "model rig", "mapped" or "unmappable" (red); the whole status in the tooltip.
        Why a clip cannot be mapped also goes to the status line when its generation is refused."""
        hint = "Clip Properties \u25b8 Mapping\u2026 shows the whole mapping and lets you correct it"
        for label, key in ((self.source_rig, self.model.params.source), (self.target_rig, self.model.params.target)):
            clip = self.model.clips.get(key)
            if clip is None:
                label.setText("")
                label.setToolTip("")
                continue
            cm = self.studio.mappings.of(clip)
            label.setText("model rig" if cm.model_rig else "mapped" if cm.ok else "unmappable")
            label.setToolTip(f"{cm.status}\n{hint}")
            label.setStyleSheet("" if cm.ok else "color: #c62828;")

    def show_params(self, p: AuthoringParams) -> None:
        """Reflect the model (after an edit, undo, or a loaded session) without emitting edits."""
        self._updating = True
        try:
            for box, key in ((self.source_box, p.source), (self.target_box, p.target)):
                i = box.findData(key)
                if i >= 0:
                    box.setCurrentIndex(i)
            for spin, key, v in ((self.source_frame, p.source, p.source_frame), (self.target_frame, p.target,
                                                                                 p.target_frame)):
                clip = self.model.clips.get(key)
                spin.setMaximum(clip.num_frames - 1 if clip is not None else 100000)
                spin.setValue(v)
            i = self.style_box.findData(p.style)
            if i < 0:
                self.style_box.addItem(p.style, p.style)
                i = self.style_box.count() - 1
            self.style_box.setCurrentIndex(i)
            self.length_unit.setCurrentText(p.length_unit)
            if p.length_unit == "seconds":
                self.length.setDecimals(2)
                self.length.setRange(0.03, 30.0)
                self.length.setSingleStep(0.1)
                self.length.setSuffix(" s")
                self.length.setValue(p.length / self._fps())
            else:
                self.length.setDecimals(0)
                self.length.setRange(1, 1000)
                self.length.setSingleStep(1)
                self.length.setSuffix(" frames")
                self.length.setValue(p.length)
            self.seed.setValue(-1 if p.seed is None else p.seed)
            self.device.setCurrentIndex(max(0, self.device.findData(p.device)))
            self.foot_lock.setChecked(p.foot_lock)
            self.head_steady.setChecked(p.head_steady)
        finally:
            self._updating = False


def _row(*widgets: QWidget) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    for x in widgets:
        lay.addWidget(x)
    return w


class TransitionStudio(QObject):
    """Authoring attached to a `MainWindow` (docks, menus, scene, session). See the module docstring."""

    transition_shown = Signal(object)  # TransitionResult now in the scene
    frames_shown = Signal(int)  # generated frames on screen so far for the current run

    def __init__(self, window, pool: WorkerPool | None = None, autosave: Autosaver | None = None,
                 debounce_s: float = 0.03) -> None:
        super().__init__(window)
        self.window = window
        self._waker = _Waker()
        self._waker.woke.connect(self._poll, Qt.ConnectionType.QueuedConnection)
        self.pool = pool or WorkerPool(progress=self._on_progress)
        self.model = AuthoringModel(self.pool, debounce_s=debounce_s, wake=self._waker.woke.emit)
        self.mappings: MappingModel = getattr(window, "mappings", None) or MappingModel(corrections_path())
        self.model.check_clips = self.mappings.check_pair  # a clip that cannot be mapped says why, in the panel
        self.mappings.mapping_changed.connect(self._on_mapping_changed)
        self.undo = make_undo_stack(self.model, self)
        self.autosaver = autosave or Autosaver()
        self.session_path: Path | None = None
        self.recover_on_start = True  # the default scene is replaced by an autosave left by a killed run
        self.stitched_char = None
        self.ghost_char = None
        self._base: np.ndarray | None = None
        self._trans_span = (0, 0)
        self.latency = LatencyPanel(profiler=StepProfileModel(self.model))
        self.phase_view = make_phase_view()
        self.panel = TransitionPanel(self)
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.panel_dock = window.add_dock("Transition", self.panel, right)
        self.latency_dock = window.add_dock("Latency", self.latency, right)
        self.phase_dock = window.add_dock("Phases", self.phase_view, right)
        window.tabifyDockWidget(self.latency_dock, self.phase_dock)
        self.latency_dock.raise_()
        QTimer.singleShot(0, lambda: window.resizeDocks([self.panel_dock], [360], Qt.Orientation.Horizontal))
        self._autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._autosave_timer.timeout.connect(self.autosave_now)
        self._build_menus()
        m = self.model
        m.params_changed.connect(lambda _p: self._autosave_timer.start())
        m.generation_started.connect(self._on_started)
        m.frames_streamed.connect(self._on_frames)
        m.transition_ready.connect(self._on_ready)
        m.generation_failed.connect(self._on_failed)
        m.phases_ready.connect(self._on_phases)
        m.progress.connect(self._show_progress)
        window.clip_loaded.connect(self._on_clip_loaded)
        window.scene.cleared.connect(self._on_scene_cleared)
        window.playback.frame_changed.connect(self.phase_view.set_frame)
        window.destroyed.connect(lambda *_: self.shutdown())
        from PySide6.QtWidgets import QApplication

        QApplication.instance().aboutToQuit.connect(self.shutdown)
        self._phases: dict = {}

    # -- menus ------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        from PySide6.QtGui import QAction, QKeySequence

        w = self.window
        edit = w.menuBar().insertMenu(w.menus["view"].menuAction(), _menu(w, "&Edit"))
        edit_menu = edit.menu()
        undo = self.undo.createUndoAction(w, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo.createRedoAction(w, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)
        w.actions.update(undo=undo, redo=redo)
        w.menus["edit"] = edit_menu
        file_menu = w.menus["file"]
        first = file_menu.actions()[0]
        for key, text, slot, keys in (
            ("open_session", "Open &Session\u2026", self.open_session_dialog, None),
            ("save_session", "Save Session &As\u2026", self.save_session_dialog, QKeySequence.StandardKey.Save),
            ("export_transition", "&Export Transition BVH\u2026", lambda: self.export_dialog("transition"), "Ctrl+E"),
            ("export_stitched", "Export Stitched &Sequence BVH\u2026", lambda: self.export_dialog("stitched"),
             "Ctrl+Shift+E"),
        ):
            act = QAction(text, w)
            if keys is not None:
                act.setShortcut(keys)
            act.triggered.connect(lambda _c=False, s=slot: s())
            file_menu.insertAction(first, act)
            w.actions[key] = act
        file_menu.insertSeparator(first)

    # -- clips and timeline picks -------------------------------------------------------------------
    def _on_clip_loaded(self, character) -> None:
        clip = character.clip
        if clip is None:
            return
        key = self.model.add_clip(clip)
        loaded = [c for c in self.window.scene.characters if c.role == "clip"]
        if len(loaded) == 1:  # first clip of a new scene: the source
            self.model.set_params(source=key, source_frame=min(60, clip.num_frames - 1), regenerate=False)
        elif len(loaded) == 2:  # second: the target; both known, so a transition is generated
            self.model.set_params(target=key, target_frame=min(30, clip.num_frames - 1))

    def timeline_frame_of(self, role: str) -> int | None:
        """The current timeline frame as a frame of the source or target clip (None if not in that part)."""
        f = self.window.playback.frame
        r = self.model.result
        if r is not None and self.stitched_char is not None:
            (s0, s1), _, (g0, g1) = r.regions
            if role == "source" and s0 <= f <= s1:
                return f
            if role == "target" and g0 <= f <= g1:
                return f - g0 + r.params.target_frame
            return None
        key = self.model.params.source if role == "source" else self.model.params.target
        clip = self.model.clips.get(key)
        return f if clip is not None and f < clip.num_frames else None

    def pick_source_from_timeline(self) -> None:
        self._pick_from_timeline("source")

    def pick_target_from_timeline(self) -> None:
        self._pick_from_timeline("target")

    def _pick_from_timeline(self, role: str) -> None:
        f = self.timeline_frame_of(role)
        if f is None:
            self.window.statusBar().showMessage(f"The timeline is not on the {role} part", 3000)
        else:
            self.undo.edit(**{f"{role}_frame": f})

    # -- results into the scene ---------------------------------------------------------------------
    def _poll(self) -> None:
        self.model.poll()

    def _on_progress(self, ev: dict) -> None:  # runner thread: hand over to the UI thread
        self.model.post_progress(ev)

    def _show_progress(self, ev: dict) -> None:
        where = f"[{ev.get('index', 0) + 1}/{ev.get('total', 1)}] {ev.get('name', '')}"
        kind = ev.get("event")
        text = {"start": "compiling (first run only; about a minute per graph)",
                "progress": f"compiling, {ev.get('elapsed_s', 0):.0f} s", "done": "compiled",
                "cached": "loaded", "shipped": "installed (shipped compiled model)"}.get(kind, str(kind))
        self.panel.status.setText(f"Starting the engine: {where} {text}")

    def _on_started(self, gen: int) -> None:
        base, span = self.model.partial  # made on the runner thread
        self._base = base.copy()
        self._trans_span = span
        self._shown = 0

    def _on_frames(self, gen: int, start: int, positions: np.ndarray, timing: dict) -> None:
        self.latency.add_frames(timing)
        if self._base is None:
            return
        a = self._trans_span[0] + start
        self._base[a: a + len(positions)] = positions
        self._shown = start + len(positions)
        ch = self.stitched_char
        if ch is not None and ch in self.window.scene.characters and ch.positions.shape == self._base.shape:
            ch.positions = self._base.copy()  # contacts/trajectory follow when the transition is ready
            if a <= self.window.playback.frame < a + len(positions):  # repaint only if the shown pose changed
                self.window.refresh_view()
        else:
            self._show_positions(self._base, source=self.model.clips[self.model.params.source])
        self.frames_shown.emit(self._shown)

    def _show_positions(self, positions: np.ndarray, source) -> None:
        scene = self.window.scene
        for ch in scene.characters:
            if ch.role == "clip":  # the raw clips are shown through the stitched character
                ch.visible = False
        if self.stitched_char is None or self.stitched_char not in scene.characters:
            self.stitched_char = scene.add_sequence(
                "transition", positions, source.skeleton.parents, source.fps,
                joint_names=list(source.skeleton.names), colour=STITCHED_COLOUR, role="transition")
        else:
            self._swap_frames(self.stitched_char, positions)

    def _swap_frames(self, ch, positions: np.ndarray) -> None:
        """New frames for the stitched character without `character_changed` (the properties dock rebuilds
        its whole tree on that event, ~50 ms on this machine, per streamed chunk); the viewer is refreshed here."""
        from rsmt_studio.app.models.scene import detect_contacts

        ch.positions = np.array(positions, np.float64)
        ch.contacts = detect_contacts(ch.positions, ch.foot_joints, ch.fps, ch.height)
        ch.trajectory = np.ascontiguousarray(ch.positions[:, ch.trajectory_joint, :])
        pb = self.window.playback
        if self.window.scene.num_frames != pb.num_frames:  # the length changed: the timeline follows
            pb.set_length(self.window.scene.num_frames, self.window.scene.fps)
        self.window.refresh_view()

    def _on_ready(self, result: TransitionResult) -> None:
        src = result.source
        positions = result.positions
        self._base = positions.copy()
        self._show_positions(positions, src)
        scene = self.window.scene
        (s0, s1), (t0, t1), (g0, g1) = result.regions
        ghost_pose = result.ghost_pose
        if self.ghost_char is not None and self.ghost_char in scene.characters:
            self.ghost_char.frame_offset = g0
            self._swap_frames(self.ghost_char, ghost_pose[None])
        else:
            self.ghost_char = scene.add_sequence("target pose", ghost_pose[None], src.skeleton.parents, src.fps,
                                                 joint_names=list(src.skeleton.names), ghost=True, frame_offset=g0,
                                                 hold=True, role="ghost")
        scene.set_regions([TimelineRegion(s0, s1, "source", REGION_COLOURS["source"]),
                           TimelineRegion(t0, t1, "transition", REGION_COLOURS["transition"]),
                           TimelineRegion(g0, g1, "target", REGION_COLOURS["target"])])
        self.latency.add_transition(result.times)
        self.latency.refresh()  # in this same event-loop pass: one window composite per transition
        self.panel.status.setText(
            f"{result.transition.num_frames} frames on {result.times.device}: first frame {result.first_frame_ms:.0f} ms "
            f"after the edit, all in {result.wall_ms:.0f} ms (engine {result.times.total_ms:.0f} ms).")
        self.panel.status.setToolTip("")
        self.transition_shown.emit(result)
        if self._phases.get("gen") == result.gen:
            self.phase_view.show_result(result, self._phases["tracks"])

    def _on_phases(self, gen: int, tracks: dict) -> None:
        self._phases = {"gen": gen, "tracks": tracks}
        r = self.model.result
        if r is not None and r.gen == gen:
            self.phase_view.show_result(r, tracks)

    def _on_failed(self, gen: int, message: str) -> None:
        self.panel.status.setText(f"Could not generate: {message}")
        self.panel.status.setToolTip(self.panel.status.text())  # a long reason may not fit the dock's height
        self.window.statusBar().showMessage("Transition failed (see the Transition panel)", 5000)

    def _on_mapping_changed(self, signature: str) -> None:
        """A rig's corrections were saved: regenerate if the source or target is on that rig."""
        from rsmt_studio.motion.retarget import skeleton_signature

        p = self.model.params
        clips = [self.model.clips.get(k) for k in (p.source, p.target)]
        if any(c is not None and skeleton_signature(c.skeleton) == signature for c in clips) and self.model.ready:
            self.model.request()

    def _on_scene_cleared(self) -> None:
        self.stitched_char = None
        self.ghost_char = None

    # -- default scene, sessions, export ------------------------------------------------------------
    def recover(self) -> bool:
        """Reopen the autosave a killed session left behind (True if there was one and it opened)."""
        path = self.autosaver.path
        if not path.is_file():
            return False
        try:
            self.open_session(path)
        except (SessionError, OSError, ValueError) as exc:
            self.window.errors.report("Could not recover the last session", str(exc))
            return False
        self.session_path = None
        self.window.statusBar().showMessage(f"Recovered the unsaved session of a run that did not end cleanly "
                                            f"({path})", 8000)
        return True

    def open_default_scene(self) -> bool:
        """assets/default_scene: two generated clips and the transition described by scene.json."""
        if self.recover_on_start and self.recover():
            return True
        folder = default_scene_dir()
        spec_path = folder / "scene.json"
        if not spec_path.is_file():
            return False
        spec = json.loads(spec_path.read_text())
        params = AuthoringParams(source=str(folder / spec["source"]), source_frame=int(spec["source_frame"]),
                                 target=str(folder / spec["target"]), target_frame=int(spec["target_frame"]),
                                 style=spec.get("style", STYLE_OF_TARGET), length=int(spec["length"]),
                                 seed=spec.get("seed", 0))
        self.open_clips_with(params, [params.source, params.target])
        return True

    def open_clips_with(self, params: AuthoringParams, paths: list[str]) -> None:
        """Read the clips (small files; parsed clips are cached on disk) and set the parameters."""
        from rsmt_studio.motion import read_bvh

        w = self.window
        w.playback.pause()
        w.scene.clear()
        for path in paths:
            if path not in self.model.clips:
                clip = read_bvh(path)
                self.model.add_clip(clip, key=str(path))
            clip = self.model.clips[str(path)]
            ch = w.scene.add_clip(clip, labels={"style": clip.style or ""})
            ch.visible = False
        self.undo.clear()
        self.model.set_params(params, regenerate=False)
        self.model.request(immediate=True)

    def session(self) -> Session:
        p = self.model.params
        clips = [p.source, p.target] + [k for k in self.model.clips if k not in (p.source, p.target)]
        return Session(p, [c for c in clips if c])

    def autosave_now(self) -> None:
        if self.model.ready:
            self.autosaver.save_in_background(self.session())

    def save_session_to(self, path: Path) -> Path:
        out = save_session(self.session(), path)
        self.session_path = out
        self.undo.setClean()
        self.window.statusBar().showMessage(f"Saved session {out}", 4000)
        return out

    def open_session(self, path: Path) -> None:
        s = load_session(path)
        missing = [c for c in s.clips if not Path(c).is_file()]
        if missing:
            raise SessionError(f"{path}: clip not found: {missing[0]}")
        self.open_clips_with(s.params, s.clips)
        self.session_path = Path(path)

    def open_session_dialog(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self.window, "Open Session", "", "rsmt-studio session (*.json)")
        if f:
            try:
                self.open_session(Path(f))
            except (SessionError, OSError, ValueError) as exc:
                self.window.errors.report("Could not open session", str(exc))

    def save_session_dialog(self) -> None:
        f, _ = QFileDialog.getSaveFileName(self.window, "Save Session", str(self.session_path or "session.json"),
                                           "rsmt-studio session (*.json)")
        if f:
            self.save_session_to(Path(f))

    def export(self, path: Path, what: str = "transition", confirm=None) -> Path | None:
        if self.model.result is None:
            raise RuntimeError("no transition to export yet")
        out = export_bvh(self.model.result, path, what,
                         confirm=confirm or (lambda p: confirm_overwrite(self.window, p)))
        if out is not None:
            self.window.statusBar().showMessage(f"Exported {what} to {out}", 5000)
        return out

    def export_dialog(self, what: str = "transition") -> None:
        if self.model.result is None:
            self.window.statusBar().showMessage("No transition to export yet", 3000)
            return
        dlg = QFileDialog(self.window, f"Export {what} as BVH", f"{what}.bvh", "BVH motion (*.bvh)")
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dlg.setOption(QFileDialog.Option.DontConfirmOverwrite, True)  # we ask ourselves (export_bvh)
        dlg.setDefaultSuffix("bvh")
        dlg.fileSelected.connect(lambda f: self._export_safely(Path(f), what))
        dlg.open()

    def _export_safely(self, path: Path, what: str) -> None:
        try:
            self.export(path, what)
        except OSError as exc:
            self.window.errors.report("Could not export", f"{path}: {exc}")

    def wait_transition(self, timeout_s: float = 120.0) -> TransitionResult | None:
        """Process events until the latest request has finished (CLI screenshots, tests)."""
        import time

        from PySide6.QtWidgets import QApplication

        deadline = time.monotonic() + timeout_s
        gen = self.model.latest_gen
        while time.monotonic() < deadline:
            QApplication.processEvents()
            self.model.poll()
            if self.model.finished_gen >= gen:
                QApplication.processEvents()
                return self.model.result
            time.sleep(0.005)
        return None

    def shutdown(self) -> None:
        """Clean end (window closed, app quit): stop generation and the engine, drop the autosave."""
        if getattr(self, "_down", False):
            return
        self._down = True
        self._autosave_timer.stop()
        if getattr(self, "variants_panel", None) is not None:
            self.variants_panel.close_model()  # cancels a batched run, which holds the worker
        self.latency.profiler.close()  # a profile in flight: its compile child is stopped
        self.model.close()
        self.pool.close()
        self.autosaver.discard()


def _menu(window, title: str):
    from PySide6.QtWidgets import QMenu

    return QMenu(title, window)


def install(window, **kwargs) -> TransitionStudio:
    """Attach authoring to a studio window and make it the default scene's provider."""
    from rsmt_studio.app.qt import main_window
    from rsmt_studio.app.qt.variants_panel import install_variants

    studio = TransitionStudio(window, **kwargs)
    install_variants(studio)
    window.transition_studio = studio
    if _default_scene_hook not in main_window.DEFAULT_SCENE_HOOKS:
        main_window.DEFAULT_SCENE_HOOKS.insert(0, _default_scene_hook)
    return studio


def _default_scene_hook(window) -> bool:
    studio = getattr(window, "transition_studio", None)
    return bool(studio and studio.open_default_scene())


__all__ = ["TransitionPanel", "TransitionStudio", "install"]
