"""On-disk cache of parsed clips, so reopening a dataset skips BVH parsing.

One file per source BVH, named by a hash of its absolute path, holding the source's size and mtime (a changed
file is re-parsed) and the clip's arrays as raw little-endian bytes after a small JSON header. No pickle, so a
tampered cache can at worst fail to load (and is then re-parsed), never run code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

from .bvh_reader import read_bvh
from .clip import Clip
from .skeleton import Skeleton

ENV_VAR = "RSMT_STUDIO_CACHE_DIR"
_MAGIC = b"RSMTCLIP\x03\n"
_FORMAT = 3


def default_cache_dir() -> Path:
    """$RSMT_STUDIO_CACHE_DIR, else the platform's user cache dir for rsmt-studio, plus 'clips'."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser() / "clips"
    import platformdirs

    return Path(platformdirs.user_cache_dir("rsmt-studio", appauthor=False)) / "clips"


class ClipCache:
    """Maps a BVH path to its parsed Clip, parsing only when the file's size or mtime changed."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def entry_path(self, source: Path) -> Path:
        key = hashlib.sha1(os.path.abspath(source).encode("utf-8")).hexdigest()  # no syscalls, unlike resolve()
        return self.directory / f"{key}.clip"

    def load(self, source: str | Path) -> Clip:
        """The clip of `source`, from the cache when fresh, else parsed (BVHError on a bad file) and stored."""
        source = Path(source)
        try:
            st = source.stat()
        except OSError:
            return read_bvh(source)  # raises the BVHError that names the problem
        cached = self._read(self.entry_path(source), st.st_size, st.st_mtime_ns)
        if cached is not None:
            self.hits += 1
            cached.source_path = source
            return cached
        self.misses += 1
        clip = read_bvh(source)
        try:
            self._write(self.entry_path(source), clip, st.st_size, st.st_mtime_ns)
        except OSError:
            pass  # a read-only or full cache folder only costs speed
        return clip

    def clear(self) -> int:
        """Delete every cache entry; returns how many were removed."""
        n = 0
        if self.directory.is_dir():
            for f in self.directory.glob("*.clip"):
                f.unlink(missing_ok=True)
                n += 1
        return n

    # --- file format --------------------------------------------------------------------------------------

    @staticmethod
    def _arrays(clip: Clip) -> dict[str, np.ndarray]:
        """Only translation components that differ from the OFFSET are stored (usually just the root's)."""
        sk = clip.skeleton
        ends = sorted(sk.end_sites)
        moving = np.flatnonzero((clip.local_pos != sk.offsets[None]).any(axis=0).reshape(-1))
        return {
            "parents": sk.parents.astype("<i8"),
            "offsets": sk.offsets.astype("<f8"),
            "end_joints": np.array(ends, dtype="<i8"),
            "end_offsets": np.array([sk.end_sites[j] for j in ends], dtype="<f8").reshape(-1, 3),
            "pos_columns": moving.astype("<i8"),
            "pos_values": clip.local_pos.reshape(clip.num_frames, -1)[:, moving].astype("<f8"),
            "local_rot": clip.local_rot.astype("<f8"),
        }

    def _write(self, target: Path, clip: Clip, size: int, mtime_ns: int) -> None:
        arrays = self._arrays(clip)
        specs, offset = {}, 0
        for name, a in arrays.items():
            specs[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset}
            offset += a.nbytes
        sk = clip.skeleton
        header = json.dumps({
            "format": _FORMAT, "size": size, "mtime_ns": mtime_ns, "fps": clip.fps, "name": clip.name,
            "frame_range": list(clip.frame_range) if clip.frame_range else None,
            "names": sk.names, "channels": [list(c) for c in sk.channels], "orders": sk.rotation_orders,
            "arrays": specs,
        }).encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + struct.pack("<Q", len(header)) + header)
                for a in arrays.values():
                    f.write(np.ascontiguousarray(a).tobytes())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _read(target: Path, size: int, mtime_ns: int) -> Clip | None:
        try:
            with open(target, "rb") as f:
                blob = bytearray(os.fstat(f.fileno()).st_size)  # writable, so arrays need no copy
                f.readinto(blob)
        except OSError:
            return None
        try:
            if not blob.startswith(_MAGIC):
                return None
            (hlen,) = struct.unpack_from("<Q", blob, len(_MAGIC))
            start = len(_MAGIC) + 8
            header = json.loads(bytes(blob[start:start + hlen]))
            if header.get("format") != _FORMAT or header["size"] != size or header["mtime_ns"] != mtime_ns:
                return None
            base = start + hlen
            arrays = {}
            for name, spec in header["arrays"].items():
                dt = np.dtype(spec["dtype"])
                count = math.prod(spec["shape"])
                arrays[name] = np.frombuffer(blob, dt, count, base + spec["offset"]).reshape(spec["shape"])
            sk = Skeleton(
                names=header["names"], parents=arrays["parents"], offsets=arrays["offsets"],
                channels=[tuple(c) for c in header["channels"]], rotation_orders=header["orders"],
                end_sites={int(j): o for j, o in zip(arrays["end_joints"], arrays["end_offsets"])},
            )
            fr = header["frame_range"]
            rot = arrays["local_rot"]
            t, nj = rot.shape[:2]
            cols = arrays["pos_columns"]
            if len(cols) == nj * 3:  # every component animated (Bandai): the stored block is the array
                pos = arrays["pos_values"].reshape(t, nj, 3)
            else:
                pos = np.broadcast_to(sk.offsets, (t, nj, 3)).copy()
                pos.reshape(t, -1)[:, cols] = arrays["pos_values"]
            return Clip(skeleton=sk, fps=header["fps"], local_pos=pos, local_rot=rot,
                        name=header["name"], frame_range=tuple(fr) if fr else None)
        except (ValueError, KeyError, TypeError, struct.error):
            return None  # a damaged or foreign entry: re-parse the BVH instead
