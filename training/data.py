"""Data pipeline: BVH folders -> one compact preprocessed file -> in-memory arrays for the training stages.

No torch here (the preprocessed file is made on the development machine and travels to the GPU machine).

Layout of the preprocessed `.npz` (one file, <= 60 MiB for all of Bandai):
- per clip: `names`, `datasets`, `styles`, `contents`, `is_test` (bool), `starts`, `lengths`, `offsets` (n,J,3)
- per frame (concatenated): `root_pos` (T,3) float32, `local_rot` (T,J,4) float32 (model skeleton)
- skeleton: `joint_names`, `parents`, `fps`
Mirrored copies are NOT stored: `MotionData.load` rebuilds them with `Clip.mirror` (deterministic).
"""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rsmt_studio.motion import Clip, Skeleton
from rsmt_studio.motion import features as Fe
from rsmt_studio.motion.atomic import atomic_write_bytes
from rsmt_studio.motion.datasets import ClipEntry, index_100style, index_bandai

FPS = 30.0


@dataclass(frozen=True)
class ClipRecord:
    """One labelled clip (a `motion.datasets.ClipEntry`). `key` is stable across machines (used in split lists)."""

    entry: ClipEntry

    @property
    def dataset(self) -> str:
        return self.entry.collection  # "dataset-1", "dataset-2", "100STYLE"

    @property
    def style(self) -> str:
        return self.entry.style

    @property
    def content(self) -> str:
        return self.entry.content

    @property
    def path(self) -> Path:
        return self.entry.path

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.entry.name}"


# ------------------------------------------------------------------------------------------------ listing
def list_bandai(root: str | os.PathLike[str]) -> list[ClipRecord]:
    """All BVH files of Bandai-Namco-Research-Motiondataset-1 and -2 under `root` (via motion.datasets)."""
    out = [ClipRecord(e) for e in index_bandai(root).entries]
    if not out:
        raise FileNotFoundError(f"{root}: no dataset-N_<content>_<style>_<take>.bvh files")
    return out


def list_100style(root: str | os.PathLike[str]) -> list[ClipRecord]:
    """100STYLE layout `<root>/<Style>/<Style>_<Kind>.bvh`, cut by `Frame_Cuts.csv` (via motion.datasets)."""
    out = [ClipRecord(e) for e in index_100style(root).entries]
    if not out:
        raise FileNotFoundError(f"{root}: no <Style>/<Style>_<Kind>.bvh files")
    return out


# ------------------------------------------------------------------------------------------------ split
SPLITS = Path(__file__).resolve().parent / "splits"  # committed lists; splits/v1/ = the lists before the 405 new takes


def split_records(records: list[ClipRecord], test_fraction: float = 0.1,
                  fixed: Mapping[str, bool] | None = None) -> set[str]:
    """Deterministic held-out set of record keys (by file, independent of listing order and machine).

    `fixed` maps keys already assigned (True = held out) to their side; those never move, so a model trained on an
    older split stays honestly evaluated when new takes arrive (its training takes stay in train, its held-out takes
    stay held out). Only the other takes are assigned by the rule, and with `fixed` empty the rule is exactly the
    one that made the first lists:
    within each (dataset, content, style) group with >= 2 takes, ceil(fraction*n) takes are held out, filling up
    with the unfixed takes of smallest CRC32 of their key. Then, for every style and every content of a dataset
    that still has no held-out take, the lowest-CRC unfixed take whose content keeps at least one other take in
    training is held out. Single-take contents (e.g. Bandai-1 'kick') stay in training only when holding them out
    would remove the content from training entirely.
    """
    fixed = dict(fixed or {})
    keys = {r.key for r in records}
    crc = {r.key: zlib.crc32(r.key.encode()) for r in records}
    test: set[str] = {k for k in keys if fixed.get(k) is True}
    groups: dict[tuple[str, str, str], list[ClipRecord]] = defaultdict(list)
    for r in records:
        groups[(r.dataset, r.content, r.style)].append(r)
    for members in groups.values():
        if len(members) >= 2:
            n = max(1, int(np.ceil(test_fraction * len(members))))
            free = sorted((r for r in members if r.key not in fixed), key=lambda r: crc[r.key])
            held = sum(r.key in test for r in members)
            test.update(r.key for r in free[: max(0, n - held)])
    for attr in ("style", "content"):
        by: dict[tuple[str, str], list[ClipRecord]] = defaultdict(list)
        for r in records:
            by[(r.dataset, getattr(r, attr))].append(r)
        for _, members in sorted(by.items()):
            if any(r.key in test for r in members):
                continue
            for r in sorted((m for m in members if m.key not in fixed), key=lambda r: crc[r.key]):
                train_left = [o for o in records if o.dataset == r.dataset and o.content == r.content
                              and o.key not in test and o.key != r.key]
                if train_left:
                    test.add(r.key)
                    break
    return test


def read_split_sides(folder: str | os.PathLike[str] = SPLITS) -> dict[str, bool]:
    """{key: held out?} from `folder`/{train,test}.txt; a key on both lists is an error naming the files."""
    folder = Path(folder)
    test, train = read_split_list(folder / "test.txt"), read_split_list(folder / "train.txt")
    both = test & train
    if both:
        raise ValueError(f"{folder}/test.txt and train.txt both list {len(both)} keys, e.g. {min(both)}")
    return {**{k: False for k in train}, **{k: True for k in test}}


def committed_split(records: list[ClipRecord], folder: str | os.PathLike[str] = SPLITS) -> set[str]:
    """The held-out keys: the committed lists decide the takes they name, the rule (`split_records`) the rest."""
    return split_records(records, fixed=read_split_sides(folder))


def write_split_lists(records: list[ClipRecord], test: set[str], folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """training/splits/{train,test}.txt: one record key per line, sorted."""
    folder = Path(folder)
    paths = []
    for name, keys in (("train", [r.key for r in records if r.key not in test]), ("test", sorted(test))):
        path = folder / f"{name}.txt"
        atomic_write_bytes(path, ("\n".join(sorted(keys)) + "\n").encode())
        paths.append(path)
    return paths[0], paths[1]


def read_split_list(path: str | os.PathLike[str]) -> set[str]:
    """One key per line; a missing file is a FileNotFoundError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split list not found")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


# ------------------------------------------------------------------------------------------------ loading
def load_record(record: ClipRecord) -> Clip:
    """Read (uncached), cut, resample to 30 fps (100STYLE is 60 fps), make quaternions continuous."""
    clip = record.entry.load(cache=None)
    if abs(clip.fps - FPS) > 1e-3:
        clip = clip.resample(FPS)
    return clip.with_continuity()


def preprocess(
    records: list[ClipRecord],
    test: set[str],
    out_path: str | os.PathLike[str],
    progress: Callable[[int, int, str], None] | None = None,
    min_frames: int = 0,
) -> dict[str, object]:
    """Read every record onto the model skeleton and write the compact file. Returns a summary."""
    names, datasets, styles, contents, is_test, lengths, offsets = [], [], [], [], [], [], []
    root_pos, local_rot = [], []
    ref: Skeleton | None = None
    ref_path = None
    skipped = []
    for i, rec in enumerate(records):
        if progress:
            progress(i, len(records), rec.key)
        clip, ms = Fe.model_clip(load_record(rec))
        if clip.num_frames < min_frames:
            skipped.append(rec.key)
            continue
        if ref is None:
            ref, ref_path = clip.skeleton, rec.path
        elif not ref.same_topology(clip.skeleton):
            raise ValueError(f"{rec.path}: skeleton differs from {ref_path} (joint names or parents)")
        names.append(rec.key)
        datasets.append(rec.dataset)
        styles.append(rec.style)
        contents.append(rec.content)
        is_test.append(rec.key in test)
        lengths.append(clip.num_frames)
        offsets.append(ms.offsets.astype(np.float32))
        root_pos.append(clip.local_pos[:, 0].astype(np.float32))
        local_rot.append(clip.local_rot.astype(np.float32))
    if ref is None:
        raise ValueError("no clips to preprocess")
    lengths_a = np.array(lengths, dtype=np.int64)
    arrays = {
        "names": np.array(names),
        "datasets": np.array(datasets),
        "styles": np.array(styles),
        "contents": np.array(contents),
        "is_test": np.array(is_test),
        "lengths": lengths_a,
        "starts": np.concatenate([[0], np.cumsum(lengths_a)[:-1]]),
        "offsets": np.stack(offsets),
        "root_pos": np.concatenate(root_pos),
        "local_rot": np.concatenate(local_rot),
        "joint_names": np.array(ref.names),
        "parents": ref.parents,
        "fps": np.array(FPS),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(Path(out_path), buf.getvalue())
    return {
        "clips": len(names),
        "frames": int(lengths_a.sum()),
        "test_clips": int(np.sum(is_test)),
        "bytes": len(buf.getvalue()),
        "skipped_short": skipped,
        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
    }




# ------------------------------------------------------------------------------------------------ in memory
@dataclass
class MotionData:
    """Global arrays of every clip and its mirror, concatenated. Sequence i is clip i // 2, mirrored if odd."""

    ms: Fe.ModelSkeleton
    fps: float
    clip_names: np.ndarray  # (n,)
    styles: np.ndarray  # (2n,) style label per sequence
    contents: np.ndarray
    is_test: np.ndarray  # (2n,)
    starts: np.ndarray  # (2n,)
    lengths: np.ndarray  # (2n,)
    offsets: np.ndarray  # (2n,J,3)
    gpos: np.ndarray  # (F,J,3) float32
    grot: np.ndarray  # (F,J,3,3) float32
    pae_vel: np.ndarray  # (F,3J) float32
    contacts: np.ndarray  # (F,4) float32
    style_feat: np.ndarray  # (F,12(J-1)) float32 per-frame style-encoder features (motion.features.style_features)
    split_hash: str

    @property
    def n_sequences(self) -> int:
        return len(self.starts)

    @property
    def style_names(self) -> list[str]:
        return sorted(set(self.styles.tolist()))

    def frame_sequence(self) -> np.ndarray:
        """(F,) sequence index of every frame."""
        return np.repeat(np.arange(self.n_sequences), self.lengths)

    def sequences(self, test: bool, min_len: int = 1) -> np.ndarray:
        return np.flatnonzero((self.is_test == test) & (self.lengths >= min_len))

    @classmethod
    def load(cls, path: str | os.PathLike[str], mirror: bool = True,
             progress: Callable[[int, int, str], None] | None = None) -> MotionData:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                z = {k: npz[k] for k in npz.files}  # NpzFile re-reads a member on every access
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{path}: not a preprocessed dataset ({exc})") from None
        missing = sorted({"names", "styles", "contents", "is_test", "lengths", "starts", "offsets", "root_pos",
                          "local_rot", "joint_names", "parents", "fps"} - set(z))
        if missing:
            raise ValueError(f"{path}: not a preprocessed dataset (missing {', '.join(missing)})")
        names = [str(n) for n in z["joint_names"]]
        parents = z["parents"]
        j = len(names)
        sk = Skeleton(names=names, parents=parents, offsets=z["offsets"][0],
                      channels=[("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")] * j,
                      rotation_orders=["ZXY"] * j)
        fps = float(z["fps"])
        starts, lengths = z["starts"], z["lengths"]
        ms = None
        gpos, grot, vel, con, sty, seq_off, seq_len, seq_offsets = [], [], [], [], [], [], [], []
        n = len(starts)
        pos = 0
        for i in range(n):
            if progress:
                progress(i, n, str(z["names"][i]))
            a, b = int(starts[i]), int(starts[i] + lengths[i])
            lp = np.repeat(z["offsets"][i][None].astype(np.float64), b - a, axis=0)
            lp[:, 0] = z["root_pos"][a:b]
            clip = Clip(skeleton=sk, fps=fps, local_pos=lp, local_rot=z["local_rot"][a:b])
            if ms is None:
                ms = Fe.model_skeleton(sk, None)
            for c in (clip, clip.mirror()) if mirror else (clip,):
                g, r = Fe.global_arrays(c)
                gpos.append(g.astype(np.float32))
                grot.append(r.astype(np.float32))
                vel.append(Fe.pae_velocities(g, ms))
                con.append(Fe.foot_contacts(g, ms).astype(np.float32))
                sf = Fe.style_features(g, r, ms)  # row t uses frames t, t+1; the last row repeats
                sty.append(np.concatenate([sf, sf[-1:]], axis=0))
                seq_off.append(pos)
                seq_len.append(len(g))
                seq_offsets.append(c.local_pos.mean(0))
                pos += len(g)
        assert ms is not None
        k = 2 if mirror else 1
        digest = hashlib.sha256("\n".join(f"{nm}:{int(t)}" for nm, t in zip(z["names"], z["is_test"])).encode())
        return cls(
            ms=ms,
            fps=fps,
            clip_names=z["names"],
            styles=np.repeat(z["styles"], k),
            contents=np.repeat(z["contents"], k),
            is_test=np.repeat(z["is_test"], k),
            starts=np.array(seq_off),
            lengths=np.array(seq_len),
            offsets=np.stack(seq_offsets).astype(np.float32),
            gpos=np.concatenate(gpos),
            grot=np.concatenate(grot),
            pae_vel=np.concatenate(vel),
            contacts=np.concatenate(con),
            style_feat=np.concatenate(sty),
            split_hash=digest.hexdigest()[:16],
        )


def records_for(bandai: str | None, style100: str | None) -> list[ClipRecord]:
    out: list[ClipRecord] = []
    if bandai:
        out += list_bandai(bandai)
    if style100:
        out += list_100style(style100)
    return out


def subset(records: Iterable[ClipRecord], per_group: int) -> list[ClipRecord]:
    """At most `per_group` takes of each (dataset, content, style): small deterministic datasets for tests."""
    seen: dict[tuple[str, str, str], int] = defaultdict(int)
    out = []
    for r in records:
        g = (r.dataset, r.content, r.style)
        if seen[g] < per_group:
            seen[g] += 1
            out.append(r)
    return out
