"""BVH writer: any Clip to a BVH file that our reader (and others) read back to the same pose.

Fixed-point numbers only (some readers choke on exponents), LF line ends, UTF-8, written to a temporary file in
the target folder and moved into place with os.replace so a crash never leaves half a file, and never over an
existing file unless asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rsmt_studio.motion.atomic import atomic_write_text

from . import rotations as R
from .clip import Clip
from .skeleton import POSITION_CHANNELS, ROTATION_CHANNELS


def _complete_order(order: str) -> str:
    """A 1-2 axis order completed to three axes ('Z' -> 'ZXY'); 3-axis orders are validated."""
    order = order.upper()
    full = order + "".join(a for a in "XYZ" if a not in order)
    if sorted(full) != ["X", "Y", "Z"] or len(full) != 3:
        raise ValueError(f"rotation order must be a permutation of 'XYZ', got {order!r}")
    return full


def _output_channels(clip: Clip, rotation_orders: str | Sequence[str] | None, decimals: int
                     ) -> tuple[list[tuple[str, ...]], list[str]]:
    """Channels written for each joint, and each joint's 3-axis rotation order."""
    sk = clip.skeleton
    nj = sk.num_joints
    if rotation_orders is None:
        wanted: list[str | None] = [None] * nj
    elif isinstance(rotation_orders, str):
        wanted = [rotation_orders] * nj
    else:
        wanted = list(rotation_orders)
        if len(wanted) != nj:
            raise ValueError(f"rotation_orders has {len(wanted)} entries for {nj} joints")
    tol = 0.5 * 10.0 ** (-decimals)
    moves = np.abs(clip.local_pos - sk.offsets[None]).max(axis=0, initial=0.0) > tol  # (J,3)
    w = np.abs(clip.local_rot[..., 0])
    rotates = (w < 1.0 - 1e-12).any(axis=0) if clip.num_frames else np.zeros(nj, bool)
    channels: list[tuple[str, ...]] = []
    orders: list[str] = []
    for j in range(nj):
        src = sk.channels[j]
        src_order = "".join(c[0] for c in src if c in ROTATION_CHANNELS)
        order = _complete_order(wanted[j] or src_order or "ZXY")
        pos = [c for c in src if c in POSITION_CHANNELS]
        missing_pos = [POSITION_CHANNELS[a] for a in range(3) if moves[j, a] and POSITION_CHANNELS[a] not in pos]
        if missing_pos:
            pos = list(POSITION_CHANNELS)  # components the file did not animate now move: write all three
        has_rot = bool(src_order) or bool(rotates[j])
        if src and not missing_pos and len(src_order) in (0, 3) and (not has_rot or order == src_order) \
                and bool(src_order) == has_rot:
            channels.append(tuple(src))  # the source layout, untouched
        else:
            rot = [f"{a}rotation" for a in order] if has_rot else []
            channels.append(tuple(pos + rot))
        orders.append(order)
    return channels, orders


def _fmt(values: np.ndarray, decimals: int) -> list[str]:
    values = np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0  # no "-0.000000"
    return [f"{v:.{decimals}f}" for v in values]


def _dfs_order(clip: Clip) -> list[int]:
    """Joints in the order a BVH file lists them (depth-first, children in index order)."""
    sk = clip.skeleton
    out: list[int] = []
    stack = list(reversed(sk.roots))
    while stack:
        j = stack.pop()
        out.append(j)
        stack.extend(reversed(sk.children(j)))
    return out


def _channel_matrix(clip: Clip, channels: list[tuple[str, ...]], orders: list[str], joint_order: list[int]
                    ) -> np.ndarray:
    # Euler angles of every rotating joint, one call per rotation order (one per joint cost ~20 ms a 40-frame clip)
    rotating = [j for j in joint_order if any(c in ROTATION_CHANNELS for c in channels[j])]
    eulers: dict[int, np.ndarray] = {}
    for order in dict.fromkeys(orders[j] for j in rotating):
        joints = [j for j in rotating if orders[j] == order]
        angles = np.rad2deg(R.quat_to_euler(clip.local_rot[:, joints], order))
        angles = np.unwrap(angles, axis=0, period=360.0)  # +-360 on one angle is the same rotation
        eulers.update((j, angles[:, k]) for k, j in enumerate(joints))
    cols: list[np.ndarray] = []
    for j in joint_order:
        chans = channels[j]
        euler = eulers.get(j)
        for c in chans:
            if c in POSITION_CHANNELS:
                cols.append(clip.local_pos[:, j, POSITION_CHANNELS.index(c)])
            else:
                cols.append(euler[:, orders[j].index(c[0])])
    if not cols:
        return np.zeros((clip.num_frames, 0))
    return np.stack(cols, axis=1)


def format_bvh(clip: Clip, *, rotation_orders: str | Sequence[str] | None = None, decimals: int = 6) -> str:
    """The BVH text for `clip` (see :func:`write_bvh`)."""
    if not 0 <= decimals <= 12:
        raise ValueError("decimals must be between 0 and 12")
    if not np.isfinite(clip.local_pos).all() or not np.isfinite(clip.local_rot).all():
        raise ValueError(f"clip {clip.name!r} holds NaN or infinite values")
    sk = clip.skeleton
    for name in sk.names:
        if not name.strip() or name != " ".join(name.split()) or "{" in name or "}" in name:
            raise ValueError(f"joint name {name!r} would not read back from a BVH file")
    channels, orders = _output_channels(clip, rotation_orders, decimals)
    out: list[str] = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        ind = "\t" * depth
        kw = "ROOT" if sk.parents[j] < 0 else "JOINT"
        out.append(f"{ind}{kw} {sk.names[j]}")
        out.append(ind + "{")
        out.append(f"{ind}\tOFFSET " + " ".join(_fmt(sk.offsets[j], decimals)))
        out.append(f"{ind}\tCHANNELS {len(channels[j])}" + "".join(" " + c for c in channels[j]))
        for c in sk.children(j):
            emit(c, depth + 1)
        if j in sk.end_sites:
            out.append(f"{ind}\tEnd Site")
            out.append(ind + "\t{")
            out.append(f"{ind}\t\tOFFSET " + " ".join(_fmt(sk.end_sites[j], decimals)))
            out.append(ind + "\t}")
        out.append(ind + "}")

    for root in sk.roots:
        emit(root, 0)
    frame_time = f"{1.0 / clip.fps:.10f}".rstrip("0")
    out += ["MOTION", f"Frames: {clip.num_frames}", f"Frame Time: {frame_time}"]
    values = np.round(_channel_matrix(clip, channels, orders, _dfs_order(clip)), decimals) + 0.0
    if values.shape[1]:
        row_fmt = " ".join([f"%.{decimals}f"] * values.shape[1])
        out.extend(row_fmt % tuple(row) for row in values.tolist())
    else:
        out.extend("" for _ in range(clip.num_frames))
    return "\n".join(out) + "\n"


def write_bvh(clip: Clip, path: str | Path, *, overwrite: bool = False,
              rotation_orders: str | Sequence[str] | None = None, decimals: int = 6) -> None:
    """Write `clip` to `path` atomically.

    rotation_orders: None keeps each joint's source order; a string applies one order to every joint; a list
    gives one per joint. Joints whose rotation or translation moves but whose source had no such channels get
    them added, so nothing is silently dropped. Raises FileExistsError if `path` exists and not `overwrite`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    text = format_bvh(clip, rotation_orders=rotation_orders, decimals=decimals)
    atomic_write_text(path, text)
