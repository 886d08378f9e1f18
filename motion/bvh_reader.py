"""Strict, fast BVH reader.

Why our own parser and not bvhio's (our BVH library, used in the tests as the independent FK oracle): bvhio
hangs forever when a file has fewer rows than ``Frames:`` says, silently shifts values after an unknown
channel, truncates names with spaces and keeps float32. So every file is validated here first (structure,
channel names, row count, values per row, finite numbers) and every problem becomes a :class:`BVHError`
naming file, line, expectation and finding. The motion block is parsed in one vectorised call to pandas'
C float parser (12-20x faster than bvhio.readAsBvh, see bench/bvh_read.py); only when that reports a
problem do we walk the rows in Python to say exactly where it is.
"""

from __future__ import annotations

import io
import math
import re
from itertools import repeat
from pathlib import Path

import numpy as np

from . import rotations as R
from .clip import Clip
from .errors import BVHError
from .skeleton import POSITION_CHANNELS, ROTATION_CHANNELS, Skeleton

_CHANNEL_BY_LOWER = {c.lower(): c for c in POSITION_CHANNELS + ROTATION_CHANNELS}
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
#: every byte except the control bytes _BAD_CONTROL looks for (bytes.translate deletes these)
_TEXT_BYTES = bytes(b for b in range(256) if not (b < 9 or 13 < b < 32 or b == 127))
_FRAMES = re.compile(r"^frames\s*:\s*(.*)$", re.IGNORECASE)
_FRAME_TIME = re.compile(r"^frame\s*time\s*:\s*(.*)$", re.IGNORECASE)
_MAX_CHANNELS_PER_JOINT = 6
_MAX_DEPTH = 400


def _show(token: str | None) -> str:
    if token is None:
        return "end of file"
    if len(token) > 40:
        token = token[:37] + "..."
    return repr(token)


class _Tokens:
    """Whitespace tokens of the HIERARCHY part, each with its 1-based line number."""

    def __init__(self, lines: list[str], path: Path | None) -> None:
        self.lines = lines
        self.path = path
        self.li = 0  # index of the current line
        self.toks: list[str] = []
        self.ti = 0

    def _fill(self) -> bool:
        while self.ti >= len(self.toks):
            if self.li >= len(self.lines):
                return False
            self.toks = self.lines[self.li].split()
            self.ti = 0
            self.li += 1
        return True

    @property
    def line(self) -> int:
        """Line number of the next token (or one past the last line at the end)."""
        if self._fill():
            return self.li
        return len(self.lines) + (0 if self.lines and self.lines[-1] == "" else 1)

    def peek(self) -> str | None:
        return self.toks[self.ti] if self._fill() else None

    def next(self) -> str | None:
        if not self._fill():
            return None
        tok = self.toks[self.ti]
        self.ti += 1
        return tok

    def rest_of_line(self) -> list[str]:
        """Remaining tokens of the line holding the last token returned."""
        rest = self.toks[self.ti:]
        self.ti = len(self.toks)
        return rest

    def error(self, expected: str, found: str | None, line: int | None = None) -> BVHError:
        return BVHError(self.path, line if line is not None else self.line, expected, _show(found))

    def expect(self, keyword: str) -> None:
        line = self.line
        tok = self.next()
        if tok is None or tok.upper() != keyword.upper():
            raise self.error(repr(keyword), tok, line)

    def number(self, what: str) -> float:
        line = self.line
        tok = self.next()
        try:
            value = float(tok) if tok is not None else None
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            raise self.error(f"a finite number ({what})", tok, line)
        return value


class _HierarchyParser:
    def __init__(self, tokens: _Tokens) -> None:
        self.t = tokens
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[np.ndarray | None] = []
        self.channels: list[tuple[str, ...]] = []
        self.end_sites: dict[int, np.ndarray] = {}
        self.depth = 0  # nesting of the joint being parsed (recursion is bounded well below Python's limit)

    def parse(self) -> None:
        t = self.t
        t.expect("HIERARCHY")
        if (t.peek() or "").upper() != "ROOT":
            raise t.error("'ROOT'", t.peek())
        while (t.peek() or "").upper() == "ROOT":
            line = t.line
            t.next()
            self._joint(-1, "ROOT", line)
        tok = t.peek()
        if tok is None or tok.upper() != "MOTION":
            extra = " (unbalanced braces)" if tok == "}" else ""
            raise t.error("'ROOT' or 'MOTION'" + extra, tok)

    def _joint(self, parent: int, keyword: str, line: int) -> None:
        t = self.t
        name_toks = t.rest_of_line()
        opened = False
        if name_toks and name_toks[-1] == "{":
            name_toks, opened = name_toks[:-1], True
        name = " ".join(name_toks)
        if not name:
            raise BVHError(t.path, line, f"a joint name after {keyword}", "end of line")
        if name in self.names:
            raise BVHError(t.path, line, "a unique joint name", f"a second joint called {name!r}")
        j = len(self.names)
        self.names.append(name)
        self.parents.append(parent)
        self.offsets.append(None)
        self.channels.append(())
        if not opened:
            t.expect("{")
        seen_channels = False
        while True:
            line = t.line
            tok = t.next()
            up = tok.upper() if tok is not None else None
            if up == "OFFSET":
                if self.offsets[j] is not None:
                    raise t.error(f"one OFFSET for joint {name!r}", "a second OFFSET", line)
                self.offsets[j] = np.array([t.number("OFFSET x"), t.number("OFFSET y"), t.number("OFFSET z")])
            elif up == "CHANNELS":
                if seen_channels:
                    raise t.error(f"one CHANNELS line for joint {name!r}", "a second CHANNELS", line)
                seen_channels = True
                self.channels[j] = self._channels(name)
            elif up == "JOINT":
                if self.depth >= _MAX_DEPTH:
                    raise t.error(f"at most {_MAX_DEPTH} nested joints", "deeper nesting", line)
                self.depth += 1
                self._joint(j, "JOINT", line)
                self.depth -= 1
            elif up in ("END", "ENDSITE"):
                if up == "END":
                    site_line = t.line
                    site = t.next()
                    if site is None or site.upper() != "SITE":
                        raise t.error("'Site' after 'End'", site, site_line)
                rest = t.rest_of_line()  # an optional name after End Site is ignored
                if rest[-1:] != ["{"]:
                    t.expect("{")
                t.expect("OFFSET")
                off = np.array([t.number("End Site x"), t.number("End Site y"), t.number("End Site z")])
                t.expect("}")
                if j in self.end_sites:
                    raise t.error(f"one End Site for joint {name!r}", "a second End Site", line)
                self.end_sites[j] = off
            elif tok == "}":
                break
            elif tok is None or up == "MOTION":
                raise t.error(f"'}}' closing joint {name!r} (unbalanced braces)", tok, line)
            else:
                raise t.error("OFFSET, CHANNELS, JOINT, End Site or '}'", tok, line)
        if self.offsets[j] is None:
            raise t.error(f"an OFFSET in joint {name!r}", "}", line)

    def _channels(self, name: str) -> tuple[str, ...]:
        t = self.t
        line = t.line
        tok = t.next()
        try:
            count = int(tok) if tok is not None else -1
        except ValueError:
            count = -1
        if not 0 <= count <= _MAX_CHANNELS_PER_JOINT:
            raise t.error(f"a channel count 0..{_MAX_CHANNELS_PER_JOINT}", tok, line)
        out: list[str] = []
        for k in range(count):
            line = t.line
            tok = t.next()
            canon = _CHANNEL_BY_LOWER.get(tok.lower()) if tok is not None else None
            if canon is None:
                raise t.error(f"channel {k + 1} of {count} for joint {name!r} (Xposition..Zrotation)", tok, line)
            if canon in out:
                raise t.error(f"distinct channels for joint {name!r}", f"{canon} twice", line)
            out.append(canon)
        return tuple(out)


def _decode(data: bytes, path: Path | None) -> str:
    if not data.strip():
        raise BVHError(path, 1, "'HIERARCHY'", "an empty file")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise BVHError(path, line, "a text BVH file", f"binary data (NUL byte at offset {nul})")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # names in a legacy 8-bit encoding; numbers are ASCII either way
    m = _BAD_CONTROL.search(text) if data.translate(None, _TEXT_BYTES) else None  # translate: ~50x faster
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise BVHError(path, line, "a text BVH file", f"binary data (control byte 0x{ord(m.group()):02x})")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _header_value(lines: list[str], i: int, pattern: re.Pattern[str], what: str, path: Path | None
                  ) -> tuple[str, int]:
    """(value text, index of the next line) of the next non-blank line, which must match `pattern`."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    found = lines[i].strip() if i < len(lines) else None
    m = pattern.match(found) if found is not None else None
    if m is None:
        raise BVHError(path, i + 1, what, _show(found))
    return m.group(1).strip(), i + 1


def _slow_rows(rows: list[str], row_lines: list[int], ncols: int, path: Path | None) -> np.ndarray:
    """Walk the rows in Python, raising a BVHError that names the first bad one.

    Only runs when the fast path reported a problem, so its speed does not matter; if it finds none (the C
    parser is stricter than Python's float() on some spellings) its values are used.
    """
    out = np.empty((len(rows), ncols))
    for r, (row, line) in enumerate(zip(rows, row_lines)):
        toks = row.split()
        if len(toks) != ncols:
            raise BVHError(path, line, f"{ncols} values per frame (the channels in HIERARCHY)",
                           f"{len(toks)} values")
        for k, tok in enumerate(toks):
            try:
                v = float(tok)
            except ValueError:
                raise BVHError(path, line, f"a number (value {k + 1} of the frame)", _show(tok)) from None
            if not math.isfinite(v):
                raise BVHError(path, line, f"a finite number (value {k + 1} of the frame)", _show(tok))
            out[r, k] = v
    return out


_ODD_SPACE = re.compile(r"[ \t\x0b\x0c]+")


def _parse_rows(rows: list[str], row_lines: list[int], ncols: int, path: Path | None) -> np.ndarray:
    """(T, ncols) float64 from the data rows, or the BVHError that names the first bad row.

    Fast path: check the value count of every row with str.count on single-spaced rows, then hand all values
    to pandas' C float parser as one column (one column avoids pandas' per-column overhead on small files).
    """
    if ncols == 0 or not rows:
        return np.zeros((len(rows), ncols))
    import pandas as pd  # imported lazily: only readers of real motion data pay for it

    rows = list(map(str.strip, rows))  # trailing spaces are common (bvhio, Bandai)
    block = "\n".join(rows)
    if "\t" in block or "  " in block or "\x0b" in block or "\x0c" in block:
        rows = [_ODD_SPACE.sub(" ", r) for r in rows]
        block = "\n".join(rows)
    if set(map(str.count, rows, repeat(" "))) != {ncols - 1}:  # single-spaced: values = spaces + 1
        return _slow_rows(rows, row_lines, ncols, path)
    try:
        frame = pd.read_csv(
            io.BytesIO(block.replace(" ", "\n").encode("utf-8")), header=None, names=["v"], dtype=np.float64,
            engine="c", na_filter=False, skip_blank_lines=False, quoting=3, comment=None,
        )
        values = frame["v"].to_numpy(dtype=np.float64)
    except Exception:  # noqa: BLE001 - any parser complaint is re-diagnosed precisely below
        return _slow_rows(rows, row_lines, ncols, path)
    if values.shape != (len(rows) * ncols,) or not np.isfinite(values).all():
        return _slow_rows(rows, row_lines, ncols, path)
    return values.reshape(len(rows), ncols)


def channels_to_local(skeleton: Skeleton, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame local translations (T,J,3) and unit quaternions (T,J,4) from the raw channel matrix (T,C).

    Joints sharing a channel layout are converted together, so a typical skeleton costs a handful of
    vectorised operations rather than one per joint.
    """
    t = values.shape[0]
    nj = skeleton.num_joints
    local_pos = np.broadcast_to(skeleton.offsets, (t, nj, 3)).copy()
    local_rot = np.zeros((t, nj, 4))
    local_rot[..., 0] = 1.0
    starts = np.cumsum([0] + [len(c) for c in skeleton.channels])
    groups: dict[tuple[str, ...], list[int]] = {}
    for j, chans in enumerate(skeleton.channels):
        if chans:
            groups.setdefault(chans, []).append(j)
    for chans, joints in groups.items():
        idx = np.array(joints)
        cols = starts[idx][:, None]
        rot_k = [k for k, c in enumerate(chans) if c in ROTATION_CHANNELS]
        for k, c in enumerate(chans):
            if c in POSITION_CHANNELS:
                local_pos[:, idx, POSITION_CHANNELS.index(c)] = values[:, cols[:, 0] + k]
        if len(rot_k) == 3:  # the usual case: one closed-form conversion for the whole group
            angles = np.deg2rad(values[:, cols + np.array(rot_k)])
            local_rot[:, idx] = R.euler_to_quat(angles, "".join(chans[k][0] for k in rot_k))
        elif rot_k:  # 1 or 2 rotation channels: intrinsic, so multiply in channel order
            q = None
            for k in rot_k:
                half = np.deg2rad(values[:, cols[:, 0] + k]) * 0.5
                qa = np.zeros((*half.shape, 4))
                qa[..., 0] = np.cos(half)
                qa[..., 1 + "XYZ".index(chans[k][0])] = np.sin(half)
                q = qa if q is None else R.quat_mul(q, qa)
            local_rot[:, idx] = q
    return local_pos, local_rot


def fps_from_frame_time(frame_time: float) -> float:
    """1/frame_time, snapped to a whole number when the file rounded it (0.0333333 s -> 30 fps)."""
    fps = 1.0 / frame_time
    nearest = round(fps)
    return float(nearest) if nearest > 0 and abs(fps - nearest) <= 5e-4 * nearest else fps


def rotation_order_of(channels: tuple[str, ...]) -> str:
    """The axes of a joint's rotation channels in file order, e.g. 'ZXY' ('' when it has none)."""
    return "".join(c[0] for c in channels if c in ROTATION_CHANNELS)


def parse_bvh(data: bytes | str, path: str | Path | None = None) -> Clip:
    """Parse BVH content already in memory; `path` is only used in error messages and as source_path."""
    path = Path(path) if path is not None else None
    text = _decode(data.encode("utf-8") if isinstance(data, str) else data, path)
    lines = text.split("\n")

    tokens = _Tokens(lines, path)
    hier = _HierarchyParser(tokens)
    hier.parse()
    motion_line = tokens.line
    tokens.next()  # MOTION
    extra = tokens.rest_of_line()
    if extra:
        raise BVHError(path, motion_line, "nothing after 'MOTION' on its line", _show(" ".join(extra)))
    i = motion_line  # index of the line after MOTION

    frames_text, i = _header_value(lines, i, _FRAMES, "'Frames: <count>'", path)
    try:
        frames = int(frames_text)
    except ValueError:
        raise BVHError(path, i, "a whole frame count after 'Frames:'", _show(frames_text)) from None
    if frames < 0:
        raise BVHError(path, i, "a frame count >= 0", _show(frames_text))
    ft_text, i = _header_value(lines, i, _FRAME_TIME, "'Frame Time: <seconds>'", path)
    try:
        frame_time = float(ft_text)
    except ValueError:
        frame_time = float("nan")
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise BVHError(path, i, "a positive frame time in seconds", _show(ft_text))

    # Data rows: every non-blank line after Frame Time, counted before anything is parsed.
    row_lines = [k + 1 for k in range(i, len(lines)) if lines[k] and not lines[k].isspace()]
    ncols = sum(len(c) for c in hier.channels)
    if ncols == 0 and not row_lines:
        # No channels at all: each frame is an empty line (there must be that many, so memory stays bounded).
        remaining = len(lines) - i - (1 if lines[-1] == "" else 0)
        row_lines = list(range(i + 1, i + 1 + min(frames, remaining)))
    if len(row_lines) < frames:
        raise BVHError(path, len(lines) + (0 if lines[-1] else -1) + 1,
                       f"{frames} rows of motion data (Frames: {frames})", f"only {len(row_lines)} rows")
    if len(row_lines) > frames:
        raise BVHError(path, row_lines[frames], f"end of file after {frames} rows (Frames: {frames})",
                       f"{len(row_lines) - frames} more rows")
    rows = [lines[k - 1] for k in row_lines]

    names = hier.names
    skeleton = Skeleton(
        names=names, parents=np.array(hier.parents), offsets=np.array(hier.offsets),
        channels=hier.channels, rotation_orders=[rotation_order_of(c) for c in hier.channels],
        end_sites=hier.end_sites,
    )
    values = _parse_rows(rows, row_lines, ncols, path)
    local_pos, local_rot = channels_to_local(skeleton, values)
    return Clip(
        skeleton=skeleton, fps=fps_from_frame_time(frame_time), local_pos=local_pos, local_rot=local_rot,
        name=path.stem if path is not None else "", source_path=path,
        frame_range=(0, frames),
    )


def read_bvh(path: str | Path) -> Clip:
    """Read a BVH file into a :class:`Clip`, or raise :class:`BVHError` naming file, line and problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise BVHError(path, None, "a BVH file", "a directory") from None
    except OSError as exc:
        raise BVHError(path, None, "a readable file", exc.strerror or type(exc).__name__) from None
    return parse_bvh(data, path)
