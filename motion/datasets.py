"""Index motion datasets (Bandai Namco, 100STYLE) into labelled entries, and load their clips lazily.

Indexing reads only names, small JSON label files and Frame_Cuts.csv, so opening a dataset is instant; clips are
parsed on demand through :class:`~.cache.ClipCache`, so a second session skips parsing altogether.
Bulk loads report progress and can be cancelled, because the GUI runs them behind a progress bar.
"""

from __future__ import annotations

import csv
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .cache import ClipCache
from .clip import Clip
from .errors import BVHError

#: 100STYLE clip kinds -> content label (ID idle, F/B/S = forward/backward/sidestep, W/R = walk/run, TR = transitions).
STYLE100_KINDS: dict[str, str] = {
    "ID": "idle", "FW": "forward-walk", "FR": "forward-run", "BW": "backward-walk", "BR": "backward-run",
    "SW": "sidestep-walk", "SR": "sidestep-run", "TR1": "transitions-1", "TR2": "transitions-2",
    "TR3": "transitions-3", "TR4": "transitions-4",
}
_BANDAI_NAME = re.compile(r"^(dataset-\d+)_([A-Za-z0-9-]+)_([A-Za-z0-9-]+)_(\d+)$")

ProgressCallback = Callable[[int, int, "ClipEntry"], None]
CancelFlag = threading.Event | Callable[[], bool] | None


class LoadCancelled(Exception):
    """A bulk load was cancelled; `loaded` holds the clips finished before the cancel."""

    def __init__(self, loaded: list[Clip]) -> None:
        super().__init__(f"cancelled after {len(loaded)} clips")
        self.loaded = loaded


@dataclass(frozen=True)
class ClipEntry:
    """One labelled clip of a dataset: a file, or a frame range of one (100STYLE cuts)."""

    name: str
    path: Path
    style: str
    content: str
    frame_range: tuple[int, int | None] | None = None  # [start, stop) in the file's frames; None = whole file
    collection: str = ""  # e.g. "dataset-1" for Bandai, "100STYLE"

    def load(self, cache: ClipCache | None = None) -> Clip:
        """Parse (or fetch from the cache) and label this entry's clip."""
        full = cache.load(self.path) if cache is not None else _read_uncached(self.path)
        clip = full
        if self.frame_range is not None:
            start, stop = self.frame_range
            stop = full.num_frames if stop is None else min(stop, full.num_frames)
            if not 0 <= start < stop:
                raise BVHError(self.path, None, f"frames [{start}, {self.frame_range[1]}) from Frame_Cuts.csv",
                               f"a clip of {full.num_frames} frames")
            clip = full.slice(start, stop)
        clip.name = self.name
        clip.style = self.style
        clip.content = self.content
        clip.source_path = self.path
        return clip


def _read_uncached(path: Path) -> Clip:
    from .bvh_reader import read_bvh

    return read_bvh(path)


def _is_cancelled(cancel: CancelFlag) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


@dataclass
class Dataset:
    """A list of entries plus the cache used to load them."""

    name: str
    root: Path
    entries: list[ClipEntry]
    cache: ClipCache | None = field(default_factory=ClipCache)
    failures: dict[Path, BVHError] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, i: int) -> ClipEntry:
        return self.entries[i]

    @property
    def styles(self) -> list[str]:
        return sorted({e.style for e in self.entries})

    @property
    def contents(self) -> list[str]:
        return sorted({e.content for e in self.entries})

    def filter(self, *, style: str | None = None, content: str | None = None) -> list[ClipEntry]:
        return [e for e in self.entries
                if (style is None or e.style == style) and (content is None or e.content == content)]

    def load(self, entry: ClipEntry | int) -> Clip:
        entry = self.entries[entry] if isinstance(entry, int) else entry
        return entry.load(self.cache)

    def load_all(self, entries: Sequence[ClipEntry] | None = None, *, progress: ProgressCallback | None = None,
                 cancel: CancelFlag = None, skip_invalid: bool = False) -> list[Clip]:
        """Load many entries in order, calling progress(done, total, entry) after each.

        `cancel` (a threading.Event or a callable) is checked before each clip; when set, LoadCancelled is
        raised carrying the clips already loaded. With skip_invalid, bad files are recorded in `failures`
        instead of raising.
        """
        todo = list(self.entries if entries is None else entries)
        out: list[Clip] = []
        for i, entry in enumerate(todo):
            if _is_cancelled(cancel):
                raise LoadCancelled(out)
            try:
                out.append(entry.load(self.cache))
            except BVHError as exc:
                if not skip_invalid:
                    raise
                self.failures[entry.path] = exc
            if progress is not None:
                progress(i + 1, len(todo), entry)
        return out


# --- Bandai Namco Research Motion Dataset ---------------------------------------------------------------

def _label_list(cfg: Path, prefix: str) -> list[str] | None:
    try:
        lines = cfg.read_text(encoding="utf-8").split()
    except OSError:
        return None
    return [s.removeprefix(prefix) for s in lines]


def index_bandai(root: str | Path, cache: ClipCache | None = None) -> Dataset:
    """Every `dataset-N_<content>_<style>_<take>.bvh` under `root`, labelled from its JSON and cfg/*.txt.

    Labels come from `<file>.json` ({"content": i, "style": j}, indices into cfg/content_label.txt and
    cfg/style_label.txt) when both exist, else from the file name; a disagreement between the two is an error,
    since it means the files were mixed up.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    entries: list[ClipEntry] = []
    labels_cache: dict[Path, tuple[list[str] | None, list[str] | None]] = {}
    for path in sorted(root.rglob("dataset-*_*.bvh")):
        m = _BANDAI_NAME.match(path.stem)
        if not m:
            continue
        collection, content, style, _take = m.groups()
        cfg = path.parent.parent / "cfg"
        if cfg not in labels_cache:
            labels_cache[cfg] = (_label_list(cfg / "content_label.txt", collection + "_"),
                                 _label_list(cfg / "style_label.txt", collection + "_"))
        contents, styles = labels_cache[cfg]
        meta = path.with_suffix(".json")
        if contents and styles and meta.is_file():
            try:
                label = json.loads(meta.read_text(encoding="utf-8"))
                json_content, json_style = contents[int(label["content"])], styles[int(label["style"])]
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise BVHError(meta, None, '{"content": <index>, "style": <index>} within cfg/*_label.txt',
                               repr(exc)) from None
            if (json_content, json_style) != (content, style):
                raise BVHError(meta, None, f"labels matching the file name ({content}, {style})",
                               f"({json_content}, {json_style})")
        entries.append(ClipEntry(name=path.stem, path=path, style=style, content=content,
                                 collection=collection))
    return Dataset(name="Bandai-Namco-Research-Motiondataset", root=root, entries=entries,
                   cache=cache if cache is not None else ClipCache())


# --- 100STYLE ----------------------------------------------------------------------------------------------

def _cut(value: str | None) -> int | None:
    value = (value or "").strip()
    if value.upper() in ("", "NA", "N/A", "NAN", "NONE"):
        return None
    return int(float(value))


def index_100style(root: str | Path, cache: ClipCache | None = None) -> Dataset:
    """`<root>/<Style>/<Style>_<KIND>.bvh` with ranges from `<root>/Frame_Cuts.csv`.

    As in the RSMT reference, a kind whose START is NA is skipped and each clip is cut to [START, STOP) (STOP NA
    means to the end). Files without a Frame_Cuts row (or no CSV at all) are indexed whole.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    cuts: dict[str, dict[str, str]] = {}
    csv_path = root / "Frame_Cuts.csv"
    if csv_path.is_file():
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "STYLE_NAME" not in reader.fieldnames:
                raise BVHError(csv_path, 1, "a header with STYLE_NAME, <KIND>_START, <KIND>_STOP",
                               repr(",".join(reader.fieldnames or [])))
            for row in reader:
                cuts[(row.get("STYLE_NAME") or "").strip()] = row
    kinds = sorted(STYLE100_KINDS, key=len, reverse=True)
    entries: list[ClipEntry] = []
    for style_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        style = style_dir.name
        for path in sorted(style_dir.glob("*.bvh")):
            kind = next((k for k in kinds if path.stem == f"{style}_{k}"), None)
            if kind is None:
                continue
            frame_range: tuple[int, int | None] | None = None
            row = cuts.get(style)
            if row is not None:
                try:
                    start, stop = _cut(row.get(f"{kind}_START")), _cut(row.get(f"{kind}_STOP"))
                except ValueError:
                    raise BVHError(csv_path, None, f"whole frame numbers for {style} {kind}",
                                   repr((row.get(f"{kind}_START"), row.get(f"{kind}_STOP")))) from None
                if start is None:
                    continue
                frame_range = (start, stop)
            entries.append(ClipEntry(name=f"{style}_{kind}", path=path, style=style,
                                     content=STYLE100_KINDS[kind], frame_range=frame_range,
                                     collection="100STYLE"))
    return Dataset(name="100STYLE", root=root, entries=entries, cache=cache if cache is not None else ClipCache())


def open_dataset(root: str | Path, cache: ClipCache | None = None) -> Dataset:
    """Index `root` as 100STYLE (a Frame_Cuts.csv or <Style>/<Style>_<KIND>.bvh) or else as Bandai."""
    root = Path(root)
    if (root / "Frame_Cuts.csv").is_file() or any(
            (d / f"{d.name}_FW.bvh").is_file() for d in _subdirs(root)):
        return index_100style(root, cache)
    return index_bandai(root, cache)


def _subdirs(root: Path) -> Iterable[Path]:
    try:
        return [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []


def labels_from_path(path: str | Path) -> tuple[str | None, str | None]:
    """(style, content) read from a Bandai or 100STYLE file name, or (None, None) for other files."""
    stem = Path(path).stem
    m = _BANDAI_NAME.match(stem)
    if m:
        return m.group(3), m.group(2)
    style, _, kind = stem.rpartition("_")
    if style and kind in STYLE100_KINDS and Path(path).parent.name == style:
        return style, STYLE100_KINDS[kind]
    return None, None
