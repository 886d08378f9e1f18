"""The studio's MainWindow: viewer in the centre, docks for the library, properties and timeline.

It wires plain-Python models (``SceneModel``, ``PlaybackModel``, ``LibraryModel``) to Qt views and to
background jobs. Extension points for later features (issue 7):
- ``window.scene`` - add characters / ghosts / timeline regions (see app/models/scene.py);
- ``window.add_dock(title, widget, area)`` - a new dock with a View-menu toggle and saved layout;
- ``window.playback`` - the shared playhead; ``window.menus[name]`` - the menu bar's menus;
- ``window.open_default_scene()`` - what a bare ``rsmt-studio`` run opens (``DEFAULT_SCENE_HOOKS``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QWidget,
)
from rsmt_studio.app.models import library as library_mod
from rsmt_studio.app.models.library import LibraryEntry, LibraryModel
from rsmt_studio.app.models.mapping import MappingModel
from rsmt_studio.app.models.playback import SPEEDS, PlaybackModel
from rsmt_studio.app.models.scene import SceneCharacter, SceneModel
from rsmt_studio.app.qt.dialogs import ErrorReporter, about_dialog
from rsmt_studio.app.qt.library_dock import LibraryWidget
from rsmt_studio.app.qt.loader import BackgroundJob, IndexFolderJob, LoadClipsJob
from rsmt_studio.app.qt.properties_dock import PropertiesWidget
from rsmt_studio.app.qt.settings import corrections_path, load_dataclass, save_dataclass, studio_settings
from rsmt_studio.app.qt.timeline import TimelineWidget
from rsmt_studio.viewer.renderer import CharacterFrame
from rsmt_studio.viewer.widget import ViewerWidget, default_samples

VERSION = "0.1.0"
VIEWPORT_SHOT_SIZE = (1280, 720)
PROGRESS_DELAY_MS = 300
BONE_RADIUS = 0.018  # bone radius as a fraction of skeleton height
BVH_FILTER = "BVH motion (*.bvh *.BVH);;All files (*)"

#: Callables ``hook(window) -> bool`` tried in order by ``open_default_scene`` (issue 7 registers its own).
DEFAULT_SCENE_HOOKS: list[Callable[[MainWindow], bool]] = []


class MainWindow(QMainWindow):
    """The studio window. Signals say what happened (tests and later features listen to them)."""

    clip_loaded = Signal(object)  # SceneCharacter
    clip_failed = Signal(str, str)  # path, message
    loading_finished = Signal(bool)  # cancelled?
    folder_indexed = Signal(int)  # number of entries

    def __init__(self, settings: QSettings | None = None, error_reporter: ErrorReporter | None = None,
                 samples: int | None = None, clip_cache=None) -> None:
        super().__init__()
        self.setWindowTitle("rsmt-studio")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else studio_settings()
        self.errors = error_reporter or ErrorReporter(self)
        if self.errors.parent is None:
            self.errors.parent = self
        self.scene = SceneModel()
        self.playback = PlaybackModel()
        self.library = LibraryModel()
        self.jobs: list[BackgroundJob] = []
        if clip_cache is None:
            from rsmt_studio.motion.cache import ClipCache

            clip_cache = ClipCache()  # parsed clips on disk ($RSMT_STUDIO_CACHE_DIR): reopening skips parsing
        self.clip_cache = clip_cache
        self.menus: dict[str, object] = {}
        self.actions: dict[str, QAction] = {}

        if samples is None:
            samples = default_samples()
        self.viewer = ViewerWidget(self, samples=samples)
        self.setCentralWidget(self.viewer)
        self.library_widget = LibraryWidget(self.library)
        self.mappings = MappingModel(corrections_path())  # rigs' mapping reports + the user's corrections
        self.properties_widget = PropertiesWidget(self.scene, mappings=self.mappings)
        self.timeline = TimelineWidget(self.playback)
        self.library_dock = self.add_dock("Clip Library", self.library_widget, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.properties_dock = self.add_dock("Clip Properties", self.properties_widget,
                                             Qt.DockWidgetArea.LeftDockWidgetArea)
        self.timeline_dock = self.add_dock("Timeline", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resize(1280, 720)
        self.resizeDocks([self.library_dock], [330], Qt.Orientation.Horizontal)

        self._play_timer = QTimer(self)
        self._play_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._play_timer.setInterval(15)
        self._play_timer.timeout.connect(self._on_play_tick)
        self._play_clock = QElapsedTimer()
        self._build_status_bar()
        self._build_menus()
        self._connect_models()
        self._restore_settings()

    # -- layout -----------------------------------------------------------------------------------
    def add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Add a dock (saved with the window layout; toggle appears in View > Panels once menus exist)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "") + "Dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        if "panels" in self.menus:
            self.menus["panels"].addAction(dock.toggleViewAction())
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(200)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_jobs)
        self.gl_label = QLabel("")
        for w in (self.progress_bar, self.cancel_button):
            w.hide()
            bar.addPermanentWidget(w)
        bar.addPermanentWidget(self.gl_label)
        bar.showMessage("Open BVH clips with File > Open, or drop files or folders here.")

    def _action(self, key: str, text: str, slot, shortcut=None, checkable=False, checked=False,
                tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.setCheckable(checkable)
        if checkable:
            act.setChecked(checked)
            act.toggled.connect(slot)
        else:
            act.triggered.connect(lambda *_: slot())
        if tip:
            act.setStatusTip(tip)
        self.addAction(act)  # shortcuts work even when menus are hidden
        self.actions[key] = act
        return act

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addAction(self._action("open", "&Open Clips\u2026", self.open_files_dialog,
                                         QKeySequence.StandardKey.Open, tip="Open BVH files (replaces the scene)"))
        file_menu.addAction(self._action("add", "&Add Clips to Scene\u2026", lambda: self.open_files_dialog(True),
                                         "Ctrl+Shift+A", tip="Show more clips side by side"))
        file_menu.addAction(self._action("open_folder", "Open &Folder\u2026", self.open_folder_dialog,
                                         "Ctrl+Shift+O", tip="Index a folder (Bandai, 100STYLE or any BVH tree)"))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        file_menu.addAction(self._action("clear_scene", "&Clear Scene", self.clear_scene, "Ctrl+Shift+W"))
        file_menu.addAction(self._action("screenshot", "Save &Screenshot\u2026", self.save_screenshot_dialog,
                                         "Ctrl+Shift+S"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("quit", "&Quit", self.close, QKeySequence.StandardKey.Quit))

        view = mb.addMenu("&View")
        prefs = self.viewer.prefs
        view.addAction(self._action("frame_all", "&Frame All", self.viewer.frame_all, "F"))
        view.addAction(self._action("follow_root", "Follow &Root", self.viewer.set_follow_root, "Ctrl+R",
                                    checkable=True))
        view.addSeparator()
        for key, label in (("show_grid", "Ground &Grid"), ("show_shadows", "&Shadows"),
                           ("show_trajectory", "Root &Trajectory"), ("show_contacts", "Foot &Contacts")):
            view.addAction(self._action(key, label, lambda on, k=key: self._set_pref(k, on), checkable=True,
                                        checked=getattr(prefs, key)))
        view.addSeparator()
        self.menus["panels"] = view.addMenu("&Panels")
        for dock in (self.library_dock, self.properties_dock, self.timeline_dock):
            self.menus["panels"].addAction(dock.toggleViewAction())

        play = mb.addMenu("&Playback")
        pb = self.playback
        play.addAction(self._action("play", "&Play / Pause", pb.toggle, Qt.Key.Key_Space))
        play.addAction(self._action("step_forward", "Step &Forward", lambda: pb.step(1), Qt.Key.Key_Right))
        play.addAction(self._action("step_back", "Step &Back", lambda: pb.step(-1), Qt.Key.Key_Left))
        play.addAction(self._action("first", "First Frame", lambda: pb.seek(pb.in_frame), Qt.Key.Key_Home))
        play.addAction(self._action("last", "Last Frame", lambda: pb.seek(pb.out_frame), Qt.Key.Key_End))
        play.addSeparator()
        play.addAction(self._action("loop", "&Loop", pb.set_loop, "L", checkable=True, checked=pb.loop))
        play.addAction(self._action("faster", "Faster", lambda: self._speed_step(1), "]"))
        play.addAction(self._action("slower", "Slower", lambda: self._speed_step(-1), "["))
        play.addSeparator()
        play.addAction(self._action("set_in", "Set &In Point", pb.set_in_here, "I"))
        play.addAction(self._action("set_out", "Set &Out Point", pb.set_out_here, "O"))
        play.addAction(self._action("clear_range", "Clear In/Out", pb.clear_range, "Alt+X"))

        help_menu = mb.addMenu("&Help")
        help_menu.addAction(self._action("about", "&About rsmt-studio", self.show_about))
        self.menus.update(file=file_menu, view=view, playback=play, help=help_menu)

    def _connect_models(self) -> None:
        lw = self.library_widget
        lw.entries_activated.connect(lambda entries: self.load_entries(entries, replace=True))
        lw.entries_added_to_scene.connect(lambda entries: self.load_entries(entries, replace=False))
        lw.open_files_requested.connect(self.open_files_dialog)
        lw.open_folder_requested.connect(self.open_folder_dialog)
        self.library.recent_changed.connect(self._on_recent_changed)
        self.playback.frame_changed.connect(lambda _f: self.refresh_view())
        self.playback.play_started.connect(self._on_play_started)
        self.playback.play_stopped.connect(self._play_timer.stop)
        self.playback.loop_changed.connect(self.actions["loop"].setChecked)
        self.scene.character_added.connect(self._on_scene_changed)
        self.scene.character_removed.connect(self._on_scene_changed)
        self.scene.character_changed.connect(self._on_scene_changed)
        self.scene.cleared.connect(self._on_scene_changed)
        self.scene.regions_changed.connect(self.timeline.scrubber.set_regions)
        self.viewer.gl_initialized.connect(lambda name: self.gl_label.setText(name))
        self.viewer.gl_failed.connect(lambda msg: self.errors.report("OpenGL problem", msg))

    # -- view -------------------------------------------------------------------------------------
    def character_frames(self, frame: int) -> list[CharacterFrame]:
        """The scene at ``frame`` as the viewer's draw list."""
        out = []
        for pose in self.scene.poses(frame):
            ch = pose.character
            out.append(CharacterFrame(
                positions=pose.positions, parents=ch.parents, colour=ch.colour, alpha=ch.alpha,
                radius=ch.height * BONE_RADIUS, bone_mask=ch.bone_mask, joint_mask=ch.joint_mask,
                trajectory=pose.trajectory if ch.alpha >= 0.999 else None,
                contacts=pose.contact_positions,
            ))
        return out

    def refresh_view(self) -> None:
        self.viewer.prefs.ground_y = self.scene.ground_y - self.scene.height * BONE_RADIUS * 1.35
        self.viewer.set_characters(self.character_frames(self.playback.frame))

    def _set_pref(self, key: str, on: bool) -> None:
        setattr(self.viewer.prefs, key, bool(on))
        self.viewer.update()

    def _speed_step(self, direction: int) -> None:
        speeds = SPEEDS
        i = min(range(len(speeds)), key=lambda k: abs(speeds[k] - self.playback.speed))
        self.playback.set_speed(speeds[min(max(i + direction, 0), len(speeds) - 1)])
        self.statusBar().showMessage(f"Speed {self.playback.speed:g}\u00d7", 1500)

    def _on_scene_changed(self, *_args) -> None:
        names = [c.name for c in self.scene.characters if c.role != "ghost"]
        shown = ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")
        self.setWindowTitle(f"{shown} \u2014 rsmt-studio" if names else "rsmt-studio")
        n = self.scene.num_frames
        if n != self.playback.num_frames or self.scene.fps != self.playback.fps:
            self.playback.set_length(n, self.scene.fps)
        self.refresh_view()

    def _on_play_started(self) -> None:
        self._play_clock.start()
        self._play_timer.start()

    def _on_play_tick(self) -> None:
        dt = self._play_clock.restart() / 1000.0
        self.playback.advance(min(dt, 1.0))  # real time: frames are dropped, not slowed; a stall > 1 s resumes

    # -- opening ----------------------------------------------------------------------------------
    def open_files_dialog(self, add: bool = False) -> None:
        start = str(self.last_dir)
        dlg = QFileDialog(self, "Add Clips to Scene" if add else "Open Clips", start, BVH_FILTER)
        dlg.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dlg.filesSelected.connect(lambda files: self.open_paths([Path(f) for f in files], replace=not add))
        dlg.open()  # window-modal, does not block the event loop

    def open_folder_dialog(self) -> None:
        start = str(self.last_dir)
        dlg = QFileDialog(self, "Open Folder", start)
        dlg.setFileMode(QFileDialog.FileMode.Directory)
        dlg.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dlg.fileSelected.connect(lambda d: self.open_folder(Path(d)))
        dlg.open()

    def open_paths(self, paths: list[Path], replace: bool = True) -> None:
        """Files open as clips (and join the library); folders are indexed into the library."""
        files = [Path(p) for p in paths if not Path(p).is_dir()]
        for folder in (Path(p) for p in paths if Path(p).is_dir()):
            self.open_folder(folder)
        if files:
            self.last_dir = files[0].parent
            chosen = [library_mod.entry_for_file(f) for f in files]  # a file opens whole, labelled by its name
            self.library.add_entries(chosen)
            self.load_entries(chosen, replace=replace)

    def open_folder(self, folder: Path) -> IndexFolderJob:
        """Index a folder in the background; the library tree fills as batches arrive."""
        self.last_dir = Path(folder)
        job = IndexFolderJob(folder)
        job.entries_found.connect(self.library.add_entries)
        job.finished.connect(lambda cancelled, j=job: self._on_index_finished(j, cancelled))
        self._start_job(job, f"Indexing {folder}\u2026")
        return job

    def _on_index_finished(self, job: IndexFolderJob, cancelled: bool) -> None:
        self._job_done(job)
        verb = "Stopped indexing" if cancelled else "Indexed"
        self.statusBar().showMessage(f"{verb} {job.folder}: {job.count} clips", 5000)
        self.folder_indexed.emit(job.count)

    def load_entries(self, entries: list[LibraryEntry], replace: bool = True) -> LoadClipsJob:
        """Load clips off the GUI thread; each appears as soon as it is read (first one framed)."""
        job = LoadClipsJob(entries, cache=self.clip_cache)
        job.replace_scene = replace  # the job's first clip replaces the scene; later ones join it
        job.clip_loaded.connect(lambda entry, clip, positions, j=job: self._on_clip_loaded(entry, clip, positions, j))
        job.load_failed.connect(self._on_clip_failed)
        job.finished.connect(lambda cancelled, j=job: self._on_load_finished(j, cancelled))
        what = entries[0].path.name if len(entries) == 1 else f"{len(entries)} clips"
        self._start_job(job, f"Loading {what}\u2026")
        return job

    def _on_clip_loaded(self, entry: LibraryEntry, clip, positions: np.ndarray, job: LoadClipsJob) -> None:
        if job.replace_scene:
            job.replace_scene = False
            self.playback.pause()
            self.scene.clear()
            self.viewer.reset_framing()
        labels = {"dataset": entry.dataset, "style": clip.style or entry.style,
                  "content": clip.content or entry.content}
        ch = self.scene.add_clip(clip, positions=positions, labels=labels)
        path = entry.path
        self.library.add_recent(path)
        QTimer.singleShot(0, lambda p=path: self.library_widget.reveal(p))
        self.statusBar().showMessage(
            f"Loaded {Path(path).name}: {ch.positions.shape[1]} joints, {ch.num_frames} frames at {ch.fps:g} fps", 5000)
        self.clip_loaded.emit(ch)

    def _on_clip_failed(self, path: str, message: str) -> None:
        self.statusBar().showMessage(f"Could not open {Path(path).name}", 5000)
        self.errors.report("Could not open clip", message)
        self.clip_failed.emit(path, message)

    def _on_load_finished(self, job: LoadClipsJob, cancelled: bool) -> None:
        self._job_done(job)
        if cancelled:
            self.statusBar().showMessage("Loading cancelled", 3000)
        self.loading_finished.emit(cancelled)

    def clear_scene(self) -> None:
        self.playback.pause()
        self.scene.clear()
        self.viewer.reset_framing()

    # -- background jobs --------------------------------------------------------------------------
    def _start_job(self, job: BackgroundJob, message: str) -> None:
        self.jobs.append(job)
        job.progress.connect(self._on_progress)
        self.statusBar().showMessage(message)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        job.start()
        # Progress and Cancel appear only for work that lasts (as QProgressDialog's minimumDuration does):
        # a quick job then costs no status-bar relayout and repaint at all.
        QTimer.singleShot(PROGRESS_DELAY_MS, self._reveal_progress)

    def _reveal_progress(self) -> None:
        if self.jobs:
            self.progress_bar.show()
            self.cancel_button.show()

    def _on_progress(self, done: int, total: int, what: str) -> None:
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
        else:  # unknown total: a static count (a busy animation would repaint the window all the time)
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat(f"{done} clips")

    def _job_done(self, job: BackgroundJob) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        if not self.jobs:
            self.progress_bar.hide()
            self.cancel_button.hide()
            self.progress_bar.setFormat("%p%")

    def cancel_jobs(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    # -- recent files, settings -------------------------------------------------------------------
    def _on_recent_changed(self, paths: list[Path]) -> None:
        self.recent_menu.clear()
        for i, p in enumerate(paths):
            act = self.recent_menu.addAction(f"&{(i + 1) % 10} {p.name}")
            act.setToolTip(str(p))
            act.triggered.connect(lambda *_, p=p: self.open_paths([p]))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear Recent", self.library.clear_recent).setEnabled(bool(paths))
        self.recent_menu.setEnabled(bool(paths))
        # Written at close with the rest: QSettings syncs from the GUI thread with an fsync, which stalled the
        # event loop for ~0.7 s while the disk was busy (e.g. a folder of new files being written).

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        load_dataclass(s, "view", self.viewer.prefs)
        for key in ("show_grid", "show_shadows", "show_trajectory", "show_contacts"):
            self.actions[key].setChecked(getattr(self.viewer.prefs, key))
        self.actions["follow_root"].setChecked(s.value("view/follow_root", False) in (True, "true"))
        self.playback.set_loop(s.value("playback/loop", True) in (True, "true"))
        try:
            self.playback.set_speed(float(s.value("playback/speed", 1.0)))
        except (TypeError, ValueError):
            pass
        self.last_dir = Path(str(s.value("paths/last_dir", str(Path.home()))))
        recent = s.value("recent_files", [])
        if isinstance(recent, str):
            recent = [recent]
        self.library.set_recent([p for p in (recent or []) if p])

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        save_dataclass(s, "view", self.viewer.prefs)
        s.setValue("view/follow_root", self.viewer.follow_root)
        s.setValue("playback/loop", self.playback.loop)
        s.setValue("playback/speed", self.playback.speed)
        s.setValue("recent_files", [str(p) for p in self.library.recent])
        s.setValue("paths/last_dir", str(self.last_dir))
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel_jobs()
        self.save_settings()
        for job in list(self.jobs):
            job.wait(2.0)
        super().closeEvent(event)

    # -- misc -------------------------------------------------------------------------------------
    def show_about(self) -> None:
        self.about = about_dialog(self, VERSION)
        self.about.show()

    def save_screenshot_dialog(self) -> None:
        dlg = QFileDialog(self, "Save Screenshot", str(Path.home() / "rsmt-studio.png"), "PNG image (*.png)")
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dlg.setDefaultSuffix("png")
        dlg.fileSelected.connect(lambda f: self.save_screenshot(Path(f)))
        dlg.open()

    def save_screenshot(self, path: Path, what: str = "window") -> Path:
        """Write the window (or only the viewport) as PNG, atomically."""
        from rsmt_studio.app.qt.screenshots import save_image_atomic

        if what == "viewport":
            image = self.viewer.render_offscreen(*VIEWPORT_SHOT_SIZE)
        else:
            image = self.grab().toImage()
        save_image_atomic(image, Path(path))
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return Path(path)

    def open_default_scene(self) -> bool:
        """Open what a bare ``rsmt-studio`` shows: the first hook in ``DEFAULT_SCENE_HOOKS`` that succeeds."""
        for hook in DEFAULT_SCENE_HOOKS:
            if hook(self):
                return True
        return False

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Process events until background jobs finish (CLI screenshots and tests)."""
        from PySide6.QtWidgets import QApplication

        deadline = time.monotonic() + timeout_s
        while (self.jobs or self.library_widget.pending_count) and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.005)
        QApplication.processEvents()
        return not self.jobs

    # -- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths, replace=True)


__all__ = ["DEFAULT_SCENE_HOOKS", "MainWindow", "SceneCharacter"]
