"""Fixtures for the motion tests: writing hand-made BVH files, and an isolated clip cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

#: A small valid file: root with 6 channels, a 3-channel child with an End Site; 2 frames.
TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
1 2 3 0 0 0 0 0 0
4 5 6 90 0 0 0 45 0
"""


@pytest.fixture()
def bvh_file(tmp_path: Path) -> Callable[..., Path]:
    """Write BVH text (str, or bytes kept verbatim) to a file in tmp_path and return its path."""
    counter = iter(range(10**6))

    def make(content: str | bytes, name: str | None = None) -> Path:
        path = tmp_path / (name or f"case{next(counter)}.bvh")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
        return path

    return make


@pytest.fixture()
def clip_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point RSMT_STUDIO_CACHE_DIR at a fresh folder so tests never touch the user's cache."""
    d = tmp_path / "cache"
    monkeypatch.setenv("RSMT_STUDIO_CACHE_DIR", str(d))
    return d


@pytest.fixture()
def tiny_bvh() -> str:
    """TINY_BVH: root with 6 channels, a 3-channel child with an End Site, 2 frames."""
    return TINY_BVH
