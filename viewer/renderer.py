"""The skeleton render path in PyOpenGL (3.3 core): geometry uploaded once, per frame only instance transforms.

``SkeletonRenderer`` knows nothing about Qt or clips: it draws a list of ``CharacterFrame`` (joint positions
+ parents + look) through an ``OrbitCamera`` into whatever framebuffer is bound. The Qt widget and the
benchmark both call it, so the benchmark measures the very code the studio runs.

Draw order: floor (the clear colour) and sky above its far edge, grid lines, planar shadows (MIN-blended so
overlaps do not darken twice), opaque characters (one instanced draw for all bones, one for all joints),
trajectories and contact markers, then translucent "ghost" characters (depth pre-pass so a ghost shows as
one clean layer). Per frame only the instance transforms are uploaded.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np
from OpenGL import GL
from rsmt_studio.viewer import geometry, shaders
from rsmt_studio.viewer.camera import OrbitCamera, nice_grid_step

#: floats per instance: a 4x4 model matrix (column-major) + an RGBA colour
_INSTANCE_FLOATS = 20


@dataclass
class CharacterFrame:
    """Everything needed to draw one character in one frame; built by the app from its scene model.

    ``bone_mask[j]`` says whether to draw the bone from ``parents[j]`` to ``j`` (the app hides e.g. a
    ground-level root's bone up to the hips). ``alpha < 1`` draws the character as a translucent ghost.
    """

    positions: np.ndarray  # (J,3) world positions
    parents: np.ndarray  # (J,) int, -1 for the root
    colour: tuple[float, float, float] = (0.85, 0.55, 0.25)
    alpha: float = 1.0
    radius: float = 2.0  # bone radius in world units (the app derives it from skeleton height)
    bone_mask: np.ndarray | None = None
    joint_mask: np.ndarray | None = None  # (J,) bool: which joint spheres to draw
    trajectory: np.ndarray | None = None  # (N,3) root path to draw as a line on the ground
    contacts: np.ndarray | None = None  # (K,3) positions of feet touching the ground this frame

    @property
    def is_ghost(self) -> bool:
        return self.alpha < 0.999


@dataclass
class ViewPrefs:
    """Look of the viewport; plain data so the app can persist it in QSettings."""

    show_grid: bool = True
    show_shadows: bool = True
    show_trajectory: bool = True
    show_contacts: bool = True
    ground_y: float = 0.0
    backdrop_top: tuple[float, float, float] = (0.20, 0.22, 0.26)
    backdrop_bottom: tuple[float, float, float] = (0.42, 0.44, 0.47)
    floor_colour: tuple[float, float, float] = (0.40, 0.42, 0.45)
    line_colour: tuple[float, float, float] = (0.56, 0.58, 0.62)
    light_dir: tuple[float, float, float] = (0.45, 0.85, 0.35)


@dataclass
class _Mesh:
    vao: int
    vbo: int
    ebo: int
    instance_vbo: int
    index_count: int
    capacity: int = 0  # instances the instance buffer can hold


@dataclass
class RenderStats:
    """Per-frame counters the benchmark and tests read."""

    draw_calls: int = 0
    instances: int = 0
    bytes_uploaded: int = 0
    extra: dict = field(default_factory=dict)


def _compile(vertex_src: str, fragment_src: str) -> int:
    def stage(kind: int, src: str) -> int:
        sh = GL.glCreateShader(kind)
        GL.glShaderSource(sh, src)
        GL.glCompileShader(sh)
        if not GL.glGetShaderiv(sh, GL.GL_COMPILE_STATUS):
            raise RuntimeError(f"shader compile failed: {GL.glGetShaderInfoLog(sh).decode(errors='replace')}")
        return sh

    vs, fs = stage(GL.GL_VERTEX_SHADER, vertex_src), stage(GL.GL_FRAGMENT_SHADER, fragment_src)
    prog = GL.glCreateProgram()
    GL.glAttachShader(prog, vs)
    GL.glAttachShader(prog, fs)
    GL.glLinkProgram(prog)
    if not GL.glGetProgramiv(prog, GL.GL_LINK_STATUS):
        raise RuntimeError(f"shader link failed: {GL.glGetProgramInfoLog(prog).decode(errors='replace')}")
    GL.glDeleteShader(vs)
    GL.glDeleteShader(fs)
    return prog


class _Program:
    """A linked program with cached uniform locations."""

    def __init__(self, vertex_src: str, fragment_src: str) -> None:
        self.id = _compile(vertex_src, fragment_src)
        self._loc: dict[str, int] = {}

    def loc(self, name: str) -> int:
        if name not in self._loc:
            self._loc[name] = GL.glGetUniformLocation(self.id, name)
        return self._loc[name]

    def mat4(self, name: str, m: np.ndarray) -> None:
        GL.glUniformMatrix4fv(self.loc(name), 1, GL.GL_TRUE, np.ascontiguousarray(m, np.float32))

    def vec3(self, name: str, v) -> None:
        GL.glUniform3f(self.loc(name), *map(float, v))

    def vec4(self, name: str, v) -> None:
        GL.glUniform4f(self.loc(name), *map(float, v))

    def f(self, name: str, x: float) -> None:
        GL.glUniform1f(self.loc(name), float(x))

    def i(self, name: str, x: int) -> None:
        GL.glUniform1i(self.loc(name), int(x))


def floor_edge_ndc_y(camera: OrbitCamera, view_proj: np.ndarray, ground_y: float, reach: float) -> float:
    """Screen height (NDC y) where the floor fades out straight ahead (``reach`` from the target): the sky
    gradient starts there."""
    forward = np.asarray(camera.target, np.float64) - camera.eye
    flat = np.array([forward[0], 0.0, forward[2]])
    norm = np.linalg.norm(flat)
    if norm < 1e-9:  # looking straight down or up
        return -1.0 if camera.pitch_deg < 0 else 1.0
    point = np.asarray(camera.target, np.float64) + flat / norm * reach
    point[1] = ground_y
    clip = view_proj.astype(np.float64) @ np.append(point, 1.0)
    if clip[3] <= 0:
        return -1.0
    return float(np.clip(clip[1] / clip[3], -1.0, 1.0))


def shadow_matrix(light_dir, ground_y: float) -> np.ndarray:
    """Project points onto the plane y=ground_y along the direction ``light_dir`` (towards the light)."""
    lx, ly, lz = np.asarray(light_dir, np.float64) / np.linalg.norm(light_dir)
    ly = max(ly, 1e-3)
    m = np.eye(4)
    # p' = p - (p.y - g) / ly * L
    m[0, 1] = -lx / ly
    m[2, 1] = -lz / ly
    m[1, 1] = 0.0
    m[0, 3] = lx / ly * ground_y
    m[2, 3] = lz / ly * ground_y
    m[1, 3] = ground_y + 1e-3
    return m.astype(np.float32)


class SkeletonRenderer:
    """Owns the GL objects; call ``initialize`` once with a current 3.3 core context, then ``render``."""

    def __init__(self) -> None:
        self.initialized = False
        self.stats = RenderStats()
        # trajectory VBOs: id(array) -> (array, vao, vbo, count); the array is kept so its id stays unique
        self._paths: dict[int, tuple[np.ndarray, int, int, int]] = {}

    # -- set-up -----------------------------------------------------------------------------------
    def initialize(self) -> None:
        self.mesh_prog = _Program(shaders.MESH_VERT, shaders.MESH_FRAG)
        self.sphere_prog = _Program(shaders.SPHERE_VERT, shaders.SPHERE_FRAG)
        self.sky_prog = _Program(shaders.SKY_VERT, shaders.SKY_FRAG)
        self.grid_prog = _Program(shaders.GRID_VERT, shaders.GRID_FRAG)
        self.line_prog = _Program(shaders.LINE_VERT, shaders.LINE_FRAG)
        self.sphere = self._make_mesh(*geometry.impostor_quad())
        self.cylinder = self._make_mesh(*geometry.unit_cylinder(12))
        self.disc = self._make_mesh(*geometry.unit_disc())
        self.empty_vao = GL.glGenVertexArrays(1)
        self.initialized = True

    def _make_mesh(self, verts: np.ndarray, idx: np.ndarray) -> _Mesh:
        vao = GL.glGenVertexArrays(1)
        GL.glBindVertexArray(vao)
        vbo, ebo, ivbo = GL.glGenBuffers(3)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, verts.nbytes, verts, GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(0)
        GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, GL.GL_FALSE, 24, ctypes.c_void_p(0))
        GL.glEnableVertexAttribArray(1)
        GL.glVertexAttribPointer(1, 3, GL.GL_FLOAT, GL.GL_FALSE, 24, ctypes.c_void_p(12))
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, ebo)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, idx.nbytes, idx, GL.GL_STATIC_DRAW)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, ivbo)
        stride = _INSTANCE_FLOATS * 4
        for k in range(5):  # 4 matrix columns + colour
            GL.glEnableVertexAttribArray(2 + k)
            GL.glVertexAttribPointer(2 + k, 4, GL.GL_FLOAT, GL.GL_FALSE, stride, ctypes.c_void_p(16 * k))
            GL.glVertexAttribDivisor(2 + k, 1)
        GL.glBindVertexArray(0)
        return _Mesh(vao, vbo, ebo, ivbo, len(idx))

    # -- per frame --------------------------------------------------------------------------------
    @staticmethod
    def _instances(matrices: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """Pack (N,4,4) row-major matrices + (N,4) colours into the (N,20) column-major instance layout."""
        out = np.empty((len(matrices), _INSTANCE_FLOATS), np.float32)
        out[:, :16] = matrices.transpose(0, 2, 1).reshape(-1, 16)
        out[:, 16:] = colours
        return out

    def _upload(self, mesh: _Mesh, data: np.ndarray) -> None:
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, mesh.instance_vbo)
        if len(data) > mesh.capacity:
            mesh.capacity = max(len(data), 2 * mesh.capacity, 64)
            GL.glBufferData(GL.GL_ARRAY_BUFFER, mesh.capacity * _INSTANCE_FLOATS * 4, None, GL.GL_DYNAMIC_DRAW)
        if len(data):
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, data.nbytes, data)
        self.stats.bytes_uploaded += data.nbytes

    def _draw(self, mesh: _Mesh, count: int) -> None:
        if count == 0:
            return
        GL.glBindVertexArray(mesh.vao)
        GL.glDrawElementsInstanced(GL.GL_TRIANGLES, mesh.index_count, GL.GL_UNSIGNED_INT, None, count)
        self.stats.draw_calls += 1
        self.stats.instances += count

    def _draw_environment(self, camera: OrbitCamera, view_proj: np.ndarray, prefs: ViewPrefs) -> None:
        """Floor (the clear colour), sky above the floor's far edge, grid lines (nothing writes depth)."""
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_BLEND)
        GL.glBindVertexArray(self.empty_vao)
        fade = max(camera.scale * 6.0, camera.distance * 2.0)
        edge = floor_edge_ndc_y(camera, view_proj, prefs.ground_y, fade) if prefs.show_grid else -1.0
        start = max(edge - 0.12, -1.0) if prefs.show_grid else -1.0
        if start < 1.0:
            sky = self.sky_prog
            GL.glUseProgram(sky.id)
            sky.f("u_horizon", start)
            sky.f("u_blend", 0.12 / max(1.0 - start, 1e-3) if prefs.show_grid else 0.0)
            sky.vec3("u_top", prefs.backdrop_top)
            sky.vec3("u_bottom", prefs.backdrop_bottom)
            sky.vec3("u_floor", prefs.floor_colour)
            GL.glDrawArrays(GL.GL_TRIANGLE_STRIP, 0, 4)
            self.stats.draw_calls += 1
        if not prefs.show_grid:
            return
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        centre = (float(camera.target[0]), prefs.ground_y, float(camera.target[2]))
        step = nice_grid_step(camera.scale)
        major = 5.0
        half_lines = min(int(np.ceil(fade * 0.9 / step)), 120)
        lines, segments = 2 * half_lines + 1, 32
        origin = np.round(np.array([centre[0], centre[2]]) / (step * major)) * step * major
        grid = self.grid_prog
        GL.glUseProgram(grid.id)
        grid.mat4("u_view_proj", view_proj)
        grid.vec3("u_centre", centre)
        GL.glUniform2f(grid.loc("u_origin"), float(origin[0]), float(origin[1]))
        grid.f("u_step", step)
        grid.f("u_major_every", major)
        grid.i("u_lines", lines)
        grid.i("u_segments", segments)
        grid.f("u_fade", fade)
        grid.vec3("u_line_colour", prefs.line_colour)
        grid.vec3("u_floor_colour", prefs.floor_colour)
        GL.glDrawArrays(GL.GL_LINES, 0, 2 * lines * 2 * segments)
        self.stats.draw_calls += 1

    def _path_buffer(self, path: np.ndarray) -> tuple[int, int]:
        """A VBO per trajectory array, uploaded once (keyed by the array object, which the scene keeps)."""
        key = id(path)
        hit = self._paths.get(key)
        if hit is not None and hit[0] is path:
            return hit[1], hit[3]
        if hit is not None:
            self._delete_path(key)
        data = np.ascontiguousarray(path, np.float32)
        vao = GL.glGenVertexArrays(1)
        GL.glBindVertexArray(vao)
        vbo = GL.glGenBuffers(1)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, data.nbytes, data, GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(0)
        GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, GL.GL_FALSE, 12, ctypes.c_void_p(0))
        self.stats.bytes_uploaded += data.nbytes
        self._paths[key] = (path, vao, vbo, len(data))
        return vao, len(data)

    def _delete_path(self, key: int) -> None:
        _, vao, vbo, _ = self._paths.pop(key)
        GL.glDeleteBuffers(1, [vbo])
        GL.glDeleteVertexArrays(1, [vao])

    def _evict_paths(self, used: set[int]) -> None:
        for key in [k for k in self._paths if k not in used]:
            self._delete_path(key)

    def _draw_spheres(self, count: int) -> None:
        """Joint spheres as impostors (their own program; leaves it bound)."""
        if count == 0:
            return
        sp = self.sphere_prog
        GL.glUseProgram(sp.id)
        sp.mat4("u_view", self._view)
        sp.mat4("u_proj", self._proj)
        sp.vec3("u_light_dir", self._light)
        self._draw(self.sphere, count)

    @staticmethod
    def _character_instances(chars: list[CharacterFrame]) -> tuple[np.ndarray, np.ndarray]:
        """Bone and joint instance arrays for a group of characters (vectorised per character)."""
        bone_m, bone_c, joint_m, joint_c = [], [], [], []
        for ch in chars:
            pos = np.asarray(ch.positions, np.float64)
            parents = np.asarray(ch.parents)
            has_parent = parents >= 0
            mask = has_parent if ch.bone_mask is None else has_parent & np.asarray(ch.bone_mask, bool)
            child = np.nonzero(mask)[0]
            rgba = (*ch.colour, ch.alpha)
            if len(child):
                bone_m.append(geometry.bone_matrices(pos[parents[child]], pos[child], ch.radius))
                bone_c.append(np.tile(np.asarray(rgba, np.float32), (len(child), 1)))
            shown = pos if ch.joint_mask is None else pos[np.asarray(ch.joint_mask, bool)]
            joint_m.append(geometry.sphere_matrices(shown, ch.radius * 1.35))
            shade = np.asarray([*(0.8 * np.asarray(ch.colour) + 0.2), ch.alpha], np.float32)
            joint_c.append(np.tile(shade, (len(shown), 1)))
        empty = np.zeros((0, _INSTANCE_FLOATS), np.float32)
        bones = SkeletonRenderer._instances(np.concatenate(bone_m), np.concatenate(bone_c)) if bone_m else empty
        joints = (
            SkeletonRenderer._instances(np.concatenate(joint_m), np.concatenate(joint_c)) if joint_m else empty
        )
        return bones, joints

    def render(
        self,
        camera: OrbitCamera,
        width: int,
        height: int,
        characters: list[CharacterFrame],
        prefs: ViewPrefs | None = None,
    ) -> RenderStats:
        """Draw one frame into the bound framebuffer (viewport ``width`` x ``height`` in device pixels)."""
        prefs = prefs or ViewPrefs()
        self.stats = RenderStats()
        GL.glViewport(0, 0, width, height)
        GL.glClearStencil(0)
        GL.glClearDepth(1.0)
        GL.glDepthMask(GL.GL_TRUE)
        GL.glClearColor(*(prefs.floor_colour if prefs.show_grid else prefs.backdrop_bottom), 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT | GL.GL_STENCIL_BUFFER_BIT)
        aspect = width / max(height, 1)
        view = camera.view_matrix()
        proj = camera.projection_matrix(aspect)
        view_proj = proj @ view
        eye = camera.eye
        self._draw_environment(camera, view_proj, prefs)

        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthFunc(GL.GL_LEQUAL)
        GL.glEnable(GL.GL_BLEND)
        # Keep destination alpha at 1: Qt composites the widget's framebuffer with its alpha channel.
        GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
        self._view, self._proj, self._light = view, proj, prefs.light_dir

        solid = [c for c in characters if not c.is_ghost]
        ghosts = [c for c in characters if c.is_ghost]
        bones, joints = self._character_instances(solid)

        GL.glUseProgram(self.mesh_prog.id)
        self.mesh_prog.mat4("u_view_proj", view_proj)
        self.mesh_prog.vec3("u_eye", eye)
        self.mesh_prog.vec3("u_light_dir", prefs.light_dir)
        self.mesh_prog.mat4("u_shadow", shadow_matrix(prefs.light_dir, prefs.ground_y))
        self._upload(self.cylinder, bones)
        self._upload(self.sphere, joints)

        if prefs.show_shadows and len(bones):
            # Planar shadow of the bones, blended with MIN against a fixed darkened floor colour: overlapping
            # limbs darken a pixel once (as a stencil would) without the stencil test, which costs software GL
            # as much as the rest of the frame.
            GL.glBlendEquation(GL.GL_MIN)
            GL.glDepthMask(GL.GL_FALSE)
            self.mesh_prog.i("u_shadow_pass", 1)
            shade = np.asarray(prefs.floor_colour) * 0.62
            self.mesh_prog.vec4("u_shadow_colour", (*shade, 1.0))
            self._draw(self.cylinder, len(bones))
            GL.glDepthMask(GL.GL_TRUE)
            GL.glBlendEquation(GL.GL_FUNC_ADD)

        self.mesh_prog.i("u_shadow_pass", 0)
        self._draw(self.cylinder, len(bones))
        self._draw_spheres(len(joints))

        self._draw_overlays(characters, view_proj, prefs)

        if ghosts:
            gb, gj = self._character_instances(ghosts)
            GL.glUseProgram(self.mesh_prog.id)
            self.mesh_prog.i("u_shadow_pass", 0)
            self._upload(self.cylinder, gb)
            self._upload(self.sphere, gj)
            # Depth pre-pass, then colour where depth matches: a ghost reads as a single translucent shell.
            GL.glColorMask(GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE)
            GL.glUseProgram(self.mesh_prog.id)
            self._draw(self.cylinder, len(gb))
            self._draw_spheres(len(gj))
            GL.glColorMask(GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE)
            GL.glDepthMask(GL.GL_FALSE)
            GL.glDepthFunc(GL.GL_EQUAL)
            GL.glUseProgram(self.mesh_prog.id)
            self._draw(self.cylinder, len(gb))
            self._draw_spheres(len(gj))
            GL.glDepthFunc(GL.GL_LEQUAL)
            GL.glDepthMask(GL.GL_TRUE)

        GL.glBindVertexArray(0)
        GL.glUseProgram(0)
        GL.glDisable(GL.GL_BLEND)
        return self.stats

    def _draw_overlays(self, characters: list[CharacterFrame], view_proj: np.ndarray, prefs: ViewPrefs) -> None:
        """Root trajectories (lines on the floor) and foot-contact discs."""
        if prefs.show_trajectory:
            GL.glUseProgram(self.line_prog.id)
            self.line_prog.mat4("u_view_proj", view_proj)
            used = set()
            for ch in characters:
                if ch.trajectory is None or len(ch.trajectory) < 2:
                    continue
                vao, count = self._path_buffer(ch.trajectory)
                used.add(id(ch.trajectory))
                self.line_prog.f("u_y", prefs.ground_y + ch.radius * 0.05)
                self.line_prog.vec4("u_colour", (*ch.colour, 0.9 * ch.alpha))
                GL.glBindVertexArray(vao)
                GL.glDrawArrays(GL.GL_LINE_STRIP, 0, count)
                self.stats.draw_calls += 1
            self._evict_paths(used)
        if prefs.show_contacts:
            mats, cols = [], []
            for ch in characters:
                if ch.contacts is None or len(ch.contacts) == 0:
                    continue
                mats.append(geometry.disc_matrices(ch.contacts, ch.radius * 3.0, prefs.ground_y, ch.radius * 0.1))
                cols.append(np.tile(np.asarray([1.0, 0.92, 0.35, 0.85 * ch.alpha], np.float32), (len(ch.contacts), 1)))
            if mats:
                data = self._instances(np.concatenate(mats), np.concatenate(cols))
                GL.glUseProgram(self.mesh_prog.id)
                self.mesh_prog.i("u_shadow_pass", 0)
                self._upload(self.disc, data)
                GL.glDepthMask(GL.GL_FALSE)
                self._draw(self.disc, len(data))
                GL.glDepthMask(GL.GL_TRUE)
