"""Unit meshes (numpy) uploaded once and instanced per bone / joint, and the per-frame instance transforms.

A bone is a unit cylinder (radius 1, from z=0 to z=1) stretched from parent to child; with a sphere of the
same radius at each joint it reads as a capsule. Meshes are (vertices (N,6) = position + normal, indices).
"""

from __future__ import annotations

import numpy as np


def unit_sphere(stacks: int = 12, slices: int = 18) -> tuple[np.ndarray, np.ndarray]:
    """Radius-1 UV sphere; normals equal positions."""
    phi = np.linspace(0.0, np.pi, stacks + 1)
    theta = np.linspace(0.0, 2.0 * np.pi, slices + 1)
    p, t = np.meshgrid(phi, theta, indexing="ij")
    pos = np.stack([np.sin(p) * np.cos(t), np.cos(p), np.sin(p) * np.sin(t)], axis=-1).reshape(-1, 3)
    verts = np.concatenate([pos, pos], axis=1).astype(np.float32)
    idx = []
    row = slices + 1
    for i in range(stacks):
        for j in range(slices):
            a, b = i * row + j, (i + 1) * row + j
            idx += [a, b, a + 1, a + 1, b, b + 1]
    return verts, np.asarray(idx, np.uint32)


def impostor_quad() -> tuple[np.ndarray, np.ndarray]:
    """Two triangles over [-1,1]^2: the sphere shader ray-traces a joint sphere inside it."""
    pos = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    verts = np.concatenate([pos, np.tile([0.0, 0.0, 1.0], (4, 1))], axis=1).astype(np.float32)
    return verts, np.array([0, 1, 2, 0, 2, 3], np.uint32)


def unit_cylinder(slices: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Open cylinder of radius 1 along +Z from z=0 to z=1 (caps come from the joint spheres)."""
    theta = np.linspace(0.0, 2.0 * np.pi, slices + 1)
    ring = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], axis=1)
    bottom = np.concatenate([ring, ring], axis=1)
    top = bottom.copy()
    top[:, 2] = 1.0
    verts = np.concatenate([bottom, top]).astype(np.float32)
    n = slices + 1
    idx = []
    for j in range(slices):
        idx += [j, j + 1, n + j, n + j, j + 1, n + j + 1]
    return verts, np.asarray(idx, np.uint32)


def unit_disc(slices: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Flat disc of radius 1 in the XZ plane facing +Y (foot-contact marker)."""
    theta = np.linspace(0.0, 2.0 * np.pi, slices + 1)
    pos = np.concatenate([[[0.0, 0.0, 0.0]], np.stack([np.cos(theta), 0 * theta, np.sin(theta)], 1)])
    normals = np.tile([0.0, 1.0, 0.0], (len(pos), 1))
    verts = np.concatenate([pos, normals], axis=1).astype(np.float32)
    idx = []
    for j in range(slices):
        idx += [0, j + 2, j + 1]
    return verts, np.asarray(idx, np.uint32)


def bone_matrices(start: np.ndarray, end: np.ndarray, radius: float | np.ndarray) -> np.ndarray:
    """Model matrices (B,4,4) mapping the unit cylinder onto segments start->end with the given radius.

    Vectorised: a few numpy ops for all bones of all characters, no Python loop per bone.
    """
    start = np.asarray(start, np.float64).reshape(-1, 3)
    end = np.asarray(end, np.float64).reshape(-1, 3)
    d = end - start
    length = np.linalg.norm(d, axis=1)
    z = d / np.maximum(length, 1e-12)[:, None]
    # Any vector not parallel to z, then Gram-Schmidt to an orthonormal frame.
    helper = np.where(np.abs(z[:, 1:2]) < 0.9, [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]])
    x = np.cross(helper, z)
    x /= np.maximum(np.linalg.norm(x, axis=1), 1e-12)[:, None]
    y = np.cross(z, x)
    r = np.broadcast_to(np.asarray(radius, np.float64), length.shape)
    m = np.zeros((len(start), 4, 4), np.float32)
    m[:, :3, 0] = x * r[:, None]
    m[:, :3, 1] = y * r[:, None]
    m[:, :3, 2] = d
    m[:, :3, 3] = start
    m[:, 3, 3] = 1.0
    return m


def sphere_matrices(centres: np.ndarray, radius: float | np.ndarray) -> np.ndarray:
    """Model matrices (N,4,4) for spheres (uniform scale + translation)."""
    c = np.asarray(centres, np.float64).reshape(-1, 3)
    r = np.broadcast_to(np.asarray(radius, np.float64), (len(c),))
    m = np.zeros((len(c), 4, 4), np.float32)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = r
    m[:, :3, 3] = c
    m[:, 3, 3] = 1.0
    return m


def disc_matrices(centres: np.ndarray, radius: float, ground_y: float = 0.0, lift: float = 0.0) -> np.ndarray:
    """Discs lying on the ground under each centre."""
    c = np.asarray(centres, np.float64).reshape(-1, 3).copy()
    c[:, 1] = ground_y + lift
    return sphere_matrices(c, radius)
