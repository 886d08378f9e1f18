"""``ViewerWidget``: the QOpenGLWidget that shows characters through an orbit camera.

Mouse: left-drag orbits, middle/right-drag (or Shift+left) pans, wheel zooms, F frames everything.
The app pushes ``CharacterFrame`` lists with ``set_characters``; the widget never reads clips itself.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QSurfaceFormat, QWheelEvent
from PySide6.QtOpenGLWidgets import QOpenGLWidget
from rsmt_studio.viewer.camera import OrbitCamera, skeleton_height
from rsmt_studio.viewer.renderer import CharacterFrame, RenderStats, SkeletonRenderer, ViewPrefs


def surface_format(samples: int = 4) -> QSurfaceFormat:
    """OpenGL 3.3 core with depth + stencil (stencil keeps planar shadows from double-darkening)."""
    fmt = QSurfaceFormat()
    fmt.setVersion(3, 3)
    fmt.setProfile(QSurfaceFormat.OpenGLContextProfile.CoreProfile)
    fmt.setDepthBufferSize(24)
    fmt.setStencilBufferSize(8)
    fmt.setSamples(samples)
    return fmt


SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "swiftshader", "software")


def probe_gl_renderer() -> str:
    """GL_RENDERER of a throwaway 3.3 core context ('' if none): lets the app choose MSAA before the viewer
    exists (multisampling costs software GL several times the frame time)."""
    from OpenGL import GL
    from PySide6.QtGui import QOffscreenSurface, QOpenGLContext

    ctx = QOpenGLContext()
    ctx.setFormat(surface_format(0))
    if not ctx.create():
        return ""
    surface = QOffscreenSurface()
    surface.setFormat(ctx.format())
    surface.create()
    try:
        if not ctx.makeCurrent(surface):
            return ""
        name = GL.glGetString(GL.GL_RENDERER)
        return name.decode(errors="replace") if name else ""
    finally:
        ctx.doneCurrent()
        surface.destroy()


def default_samples() -> int:
    """4x MSAA on a real GPU, none on software rasterisers."""
    name = probe_gl_renderer().lower()
    return 0 if any(s in name for s in SOFTWARE_RENDERERS) else 4


class ViewerWidget(QOpenGLWidget):
    """Skeleton viewport. Signals say what happened; the camera and prefs are plain objects."""

    gl_initialized = Signal(str)  # GL_RENDERER string, once the context is up
    gl_failed = Signal(str)  # message when shaders or the context fail; the app shows it
    camera_changed = Signal()
    follow_root_changed = Signal(bool)

    def __init__(self, parent=None, samples: int = 4) -> None:
        super().__init__(parent)
        self.setFormat(surface_format(samples))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        self.camera = OrbitCamera()
        self.prefs = ViewPrefs()
        self.renderer = SkeletonRenderer()
        self.characters: list[CharacterFrame] = []
        self.follow_root = False
        self.last_stats = RenderStats()
        self.last_render_s = 0.0  # CPU-side time of our render path for the last frame
        self.gl_renderer_name = ""
        self._drag_last: QPointF | None = None
        self._drag_button = Qt.MouseButton.NoButton
        self._has_framed = False

    # -- content ----------------------------------------------------------------------------------
    def set_characters(self, characters: list[CharacterFrame]) -> None:
        """Replace what is drawn (called once per frame by the app) and schedule a repaint."""
        self.characters = list(characters)
        if self.follow_root:
            self._follow()
        if not self._has_framed and self.characters:
            self.frame_all()  # the whole motion stays in view when it plays
        self.update()

    def set_follow_root(self, on: bool) -> None:
        if on != self.follow_root:
            self.follow_root = on
            if on:
                self._follow()
                self.update()
            self.follow_root_changed.emit(on)

    def _follow(self) -> None:
        solid = [c for c in self.characters if not c.is_ghost] or self.characters
        if not solid:
            return
        root = np.asarray(solid[0].positions)[0]
        self.camera.target = np.array([root[0], self.camera.target[1], root[2]], np.float64)
        self.camera_changed.emit()

    def frame_all(self) -> None:
        """Fit the camera to every character's current pose and root trajectory (the F key)."""
        self._frame(include_trajectories=True)

    def frame_characters(self) -> None:
        """Fit the camera to the current poses only (what a freshly opened clip gets)."""
        self._frame(include_trajectories=False)

    def _frame(self, include_trajectories: bool) -> None:
        if not self.characters:
            return
        pts = [np.asarray(c.positions, np.float64).reshape(-1, 3)[
            slice(None) if c.joint_mask is None else np.asarray(c.joint_mask, bool)] for c in self.characters]
        height = float(np.median([skeleton_height(p) for p in pts]))
        if include_trajectories:
            pts += [np.asarray(c.trajectory, np.float64).reshape(-1, 3) for c in self.characters
                    if c.trajectory is not None]
        self.camera.fit_skeleton(np.concatenate(pts), self.width() / max(self.height(), 1))
        self.camera.scale = height
        self.camera.target[1] = self.prefs.ground_y + height * 0.5
        self._has_framed = True
        self.camera_changed.emit()
        self.update()

    def reset_framing(self) -> None:
        """The next ``set_characters`` frames the new content (used when a new clip is opened)."""
        self._has_framed = False

    # -- GL ---------------------------------------------------------------------------------------
    def initializeGL(self) -> None:
        from OpenGL import GL

        try:
            self.gl_renderer_name = GL.glGetString(GL.GL_RENDERER).decode(errors="replace")
            self.renderer.initialize()
        except Exception as exc:  # noqa: BLE001 - shader/driver problems must not kill the app
            self.gl_failed.emit(f"OpenGL initialisation failed: {exc}")
            return
        self.gl_initialized.emit(self.gl_renderer_name)

    def paintGL(self) -> None:
        if not self.renderer.initialized:
            return
        t0 = time.perf_counter()
        ratio = self.devicePixelRatioF()
        w, h = int(self.width() * ratio), int(self.height() * ratio)
        self.last_stats = self.renderer.render(self.camera, w, h, self.characters, self.prefs)
        self.last_render_s = time.perf_counter() - t0

    def render_offscreen(self, width: int, height: int) -> QImage:
        """Render the current view at any size into an off-screen framebuffer (screenshots, docs)."""
        from PySide6.QtOpenGL import QOpenGLFramebufferObject, QOpenGLFramebufferObjectFormat

        self.makeCurrent()
        try:
            fmt = QOpenGLFramebufferObjectFormat()
            fmt.setAttachment(QOpenGLFramebufferObject.Attachment.CombinedDepthStencil)
            fmt.setSamples(max(self.format().samples(), 0))
            fbo = QOpenGLFramebufferObject(width, height, fmt)
            fbo.bind()
            self.renderer.render(self.camera, width, height, self.characters, self.prefs)
            fbo.release()
            return fbo.toImage()
        finally:
            self.doneCurrent()

    def grab_image(self) -> QImage:
        """The rendered frame as an image (repaints first so it is current)."""
        return self.grabFramebuffer()

    # -- interaction ------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._drag_last = event.position()
        self._drag_button = event.button()
        self.setFocus()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag_last = None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_last is None:
            return
        d = event.position() - self._drag_last
        self._drag_last = event.position()
        pan = self._drag_button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton) or (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        )
        if pan:
            self.camera.pan(d.x(), d.y(), self.height())
        else:
            self.camera.orbit(-d.x() * 0.4, d.y() * 0.3)
        self.camera_changed.emit()
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        self.camera.zoom(0.88**steps)
        self.camera_changed.emit()
        self.update()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_F and not event.modifiers():
            self.frame_all()
            return
        super().keyPressEvent(event)
