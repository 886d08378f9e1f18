"""Clips a request names: BVH text in the body, or a path under the configured library root and nowhere else.

Why so strict: the service may run beside an artist's files; a path must never read outside the folder the
operator chose (no `..`, no absolute path elsewhere, no symlink that leads out of it).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path, PurePosixPath

from rsmt_studio.motion.bvh_reader import parse_bvh, read_bvh
from rsmt_studio.motion.clip import Clip
from rsmt_studio.motion.errors import BVHError
from rsmt_studio.service.errors import FieldError


def resolve_under(root: Path | None, value: str, field: str) -> Path:
    """`value` (relative to `root`, or absolute inside it) as a real file path inside `root`, or FieldError."""
    if root is None:
        raise FieldError(field, "paths are disabled: the service was started without --library-root", 403,
                         "path_not_allowed")
    if "\x00" in value or not value.strip():
        raise FieldError(field, "empty or invalid path", 422, "bad_path")
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if ".." in parts:
        raise FieldError(field, f"{value!r}: '..' is not allowed in library paths", 403, "path_outside_root")
    root = root.resolve()
    candidate = Path(value) if os.path.isabs(value) else root / value
    real = candidate.resolve()  # follows symlinks: one that leads out of the root is refused below
    if not real.is_relative_to(root):
        raise FieldError(field, f"{value!r} is outside the library root", 403, "path_outside_root")
    if not real.is_file():
        raise FieldError(field, f"{value!r}: no such file under the library root", 404, "missing_file")
    return real


class ClipStore:
    """Reads clips once: library files by (path, size, mtime), bounded LRU. Returning the same `Clip` object for
    the same file lets the engine's per-clip memos (style codes, phases) hit, as in the studio."""

    def __init__(self, root: Path | None, max_frames: int, capacity: int = 64) -> None:
        self.root = root.resolve() if root is not None else None
        self.max_frames = int(max_frames)
        self.capacity = capacity
        self._files: OrderedDict[tuple, Clip] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def cached(self) -> int:
        """Library files held now (at most `capacity`)."""
        return len(self._files)

    def from_path(self, value: str, field: str) -> Clip:
        path = resolve_under(self.root, value, field)
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
        try:
            clip = read_bvh(path)
        except BVHError as exc:
            raise FieldError(field, str(exc).replace(str(path), value), 422, "bad_bvh") from None
        self._check_frames(clip, field)
        with self._lock:
            self._files[key] = clip
            while len(self._files) > self.capacity:
                self._files.popitem(last=False)
        return clip

    def from_text(self, text: str, field: str) -> Clip:
        try:
            clip = parse_bvh(text)
        except BVHError as exc:
            raise FieldError(field, str(exc).replace("<bvh>", field), 422, "bad_bvh") from None
        except (ValueError, UnicodeError) as exc:  # defensive: the reader's own errors are BVHError
            raise FieldError(field, f"not readable BVH ({exc})", 422, "bad_bvh") from None
        clip.name = field  # engine messages name the clip: "source_bvh: ..."
        self._check_frames(clip, field)
        return clip

    def _check_frames(self, clip: Clip, field: str) -> None:
        if clip.num_frames > self.max_frames:
            raise FieldError(field, f"{clip.num_frames} frames; this service takes at most {self.max_frames}",
                             413, "too_many_frames")
