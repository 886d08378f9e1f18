"""Instance transforms map the unit meshes onto bones and joints."""

from __future__ import annotations

import numpy as np
from rsmt_studio.viewer import geometry


def test_bone_matrices_map_unit_cylinder_onto_segments():
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(50, 3)) * 30, rng.normal(size=(50, 3)) * 30
    m = geometry.bone_matrices(start, end, 2.5)
    # z=0 ring centre -> start, z=1 -> end, ring radius 2.5 and perpendicular to the bone.
    assert np.allclose(m[:, :3, 3], start, atol=1e-4)
    assert np.allclose(m[:, :3, 3] + m[:, :3, 2], end, atol=1e-4)
    x, y, d = m[:, :3, 0], m[:, :3, 1], m[:, :3, 2]
    assert np.allclose(np.linalg.norm(x, axis=1), 2.5, atol=1e-4)
    assert np.allclose(np.linalg.norm(y, axis=1), 2.5, atol=1e-4)
    assert np.allclose(np.einsum("ij,ij->i", x, d), 0, atol=1e-3)
    assert np.allclose(np.einsum("ij,ij->i", y, d), 0, atol=1e-3)


def test_vertical_bone_and_meshes_are_well_formed():
    m = geometry.bone_matrices([[0, 0, 0]], [[0, 5, 0]], 1.0)
    assert np.isfinite(m).all()
    for verts, idx in (geometry.unit_sphere(), geometry.unit_cylinder(), geometry.unit_disc()):
        assert verts.shape[1] == 6 and idx.max() < len(verts) and len(idx) % 3 == 0
