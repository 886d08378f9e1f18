"""Export the authored transition as BVH on the source skeleton: the transition alone or the stitched sequence.

Writing goes through `rsmt_studio.motion.write_bvh` (atomic, refuses to overwrite unless told). The UI asks
before overwriting (`confirm_overwrite`); scripts pass `overwrite=True` themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rsmt_studio.app.models.authoring import TransitionResult
from rsmt_studio.motion import write_bvh
from rsmt_studio.motion.clip import Clip

WHAT = ("transition", "stitched")


def export_clip(result: TransitionResult, what: str = "transition") -> Clip:
    """The clip to write: the generated frames, or source -> transition -> target as one clip."""
    if what == "transition":
        return result.transition
    if what == "stitched":
        return result.stitched()
    raise ValueError(f"export what must be one of {WHAT}, not {what!r}")


def export_bvh(result: TransitionResult, path: Path, what: str = "transition", overwrite: bool = False,
               confirm: Callable[[Path], bool] | None = None) -> Path | None:
    """Write the BVH; if `path` exists, `confirm(path)` decides (None: refuse, FileExistsError). None if declined."""
    path = Path(path)
    if path.exists() and not overwrite:
        if confirm is None:
            raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
        if not confirm(path):
            return None
    write_bvh(export_clip(result, what), path, overwrite=True, decimals=6)
    return path


def confirm_overwrite(parent, path: Path) -> bool:
    """Ask the user (Qt) whether to replace an existing file."""
    from PySide6.QtWidgets import QMessageBox

    answer = QMessageBox.question(parent, "Replace file?", f"{path} already exists.\nReplace it?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


__all__ = ["WHAT", "confirm_overwrite", "export_bvh", "export_clip"]
