"""Which clips need retargeting and how their rig maps onto the model's roles, in plain Python (no Qt).

The properties dock, the mapping dialog and the transition panel all ask one `MappingModel`, so a correction
saved in the dialog is what every view (and the pre-check before generation) sees next; `mapping_changed`
tells them. Mapping a clip costs ~10-30 ms, so results are memoised per clip object and per correction set.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from rsmt_studio.app.models.events import Event
from rsmt_studio.motion.clip import Clip
from rsmt_studio.motion.retarget import CorrectionStore, MappingError, MappingReport, RoleMap, mapping_report
from rsmt_studio.motion.retarget.report import LEFTOVER_POLICY
from rsmt_studio.motion.retarget.roles import ALL_ROLES, REQUIRED
from rsmt_studio.motion.skeleton import Skeleton


def is_model_rig(skeleton: Skeleton) -> bool:
    """True for the model's own rig (the shipped assets/model_rig.json's names and parents, with or without a
    dummy root above the hips): such clips go to the model as they are, with no mapping step. The engine asks
    the same predicate (`motion.retarget.model_rig.is_model_rig`)."""
    from rsmt_studio.motion.retarget.model_rig import is_model_rig as same_rig

    return same_rig(skeleton, _model_rig())


_RIG = None


def _model_rig():
    global _RIG
    if _RIG is None:
        from rsmt_studio.inference.rigs import load_model_rig

        _RIG = load_model_rig(None)
    return _RIG


def leftover_fate(kind: str) -> str:
    """What happens to a group of joints the model does not drive (the report's kind names say it, or the policy)."""
    return LEFTOVER_POLICY.get(kind, "")


@dataclass
class ClipMapping:
    """A clip's rig as the studio shows it: model rig, or the mapping report (with the corrections used)."""

    model_rig: bool
    report: MappingReport
    role_map: RoleMap | None
    corrections: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.model_rig or self.report.ok

    @property
    def error(self) -> str | None:
        return None if self.model_rig else self.report.error

    @property
    def status(self) -> str:
        """One line for the properties dock and the transition panel."""
        if self.model_rig:
            return "model rig (no retargeting)"
        if self.report.error:
            return f"cannot be mapped: {self.report.error}"
        roles = sum(1 for r in self.report.roles if r.joint)
        left = sum(len(v) for v in self.report.leftover.values())
        fixed = f", {len(self.corrections)} corrected by you" if self.corrections else ""
        return f"mapped: {roles} roles, {left} joints not driven{fixed}"

    def roles(self) -> dict[str, str | None]:
        """role -> joint name (None where the role is empty)."""
        return {r.role: r.joint for r in self.report.roles}


def overrides_from(chosen: dict[str, str | None], found: dict[str, str | None]) -> dict[str, str]:
    """The corrections a user made: each role whose chosen joint differs from what was found by itself.

    An emptied role is stored as "" (the form `find_roles` takes); a role left as found is not stored, so a
    later, better mapper still decides it.
    """
    out: dict[str, str] = {}
    for role in ALL_ROLES:
        if role in chosen and chosen[role] != found.get(role):
            out[role] = chosen[role] or ""
    return out


MEMO_SIZE = 256  # clips whose mapping is remembered (the memo holds the clips themselves)


class MappingModel:
    """Mapping reports for clips, memoised, with the user's corrections per rig signature (`CorrectionStore`).

    Thread-safe enough for the authoring runner thread's pre-check (`check_pair`): a lock guards the memo.
    """

    def __init__(self, store: CorrectionStore | str | Path) -> None:
        self.store = store if isinstance(store, CorrectionStore) else CorrectionStore(store)
        self.mapping_changed = Event("mapping_changed")  # (signature) corrections for that rig were saved
        self.store_problem = ""  # why saved corrections could not be read (shown in the dialog), else ""
        self._memo: OrderedDict[int, tuple[Clip, tuple, ClipMapping]] = OrderedDict()  # LRU, MEMO_SIZE clips
        self._lock = threading.Lock()
        _model_rig()  # read the model rig now, not inside the first view refresh

    def corrections(self, signature: str) -> dict[str, str]:
        """The saved corrections for a rig (none, with `store_problem` set, when the file is unreadable)."""
        try:
            got = self.store.get(signature)
        except ValueError as exc:
            self.store_problem = str(exc)
            return {}
        self.store_problem = ""
        return {str(k): str(v) for k, v in got.items() if isinstance(v, str)}

    def of(self, clip: Clip) -> ClipMapping:
        """The clip's mapping with its rig's saved corrections (memoised per clip object and corrections)."""
        if is_model_rig(clip.skeleton):
            return self._model_rig(clip)
        from rsmt_studio.motion.retarget import skeleton_signature

        return self.preview(clip, self.corrections(skeleton_signature(clip.skeleton)))

    def preview(self, clip: Clip, overrides: dict[str, str]) -> ClipMapping:
        """The mapping `overrides` would give (nothing saved): the dialog's Apply and the memo use it."""
        key = tuple(sorted(overrides.items()))
        with self._lock:
            hit = self._memo.get(id(clip))
        if hit is not None and hit[0] is clip and hit[1] == key:
            return hit[2]
        try:
            report, rm = mapping_report(clip, dict(overrides) or None)
        except Exception as exc:  # noqa: BLE001 - a mapper bug on an odd rig must not break the docks
            report, rm = self._failed(clip, f"the mapper failed ({type(exc).__name__}: {exc})"), None
        cm = ClipMapping(False, report, rm, dict(overrides))
        with self._lock:
            self._memo[id(clip)] = (clip, key, cm)
            self._memo.move_to_end(id(clip))
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        return cm

    def found(self, clip: Clip) -> ClipMapping:
        """The mapping without any correction (what the mapper finds by itself)."""
        try:
            report, rm = mapping_report(clip)
        except Exception as exc:  # noqa: BLE001 - as in `preview`
            report, rm = self._failed(clip, f"the mapper failed ({type(exc).__name__}: {exc})"), None
        return ClipMapping(False, report, rm, {})

    def save(self, clip: Clip, overrides: dict[str, str]) -> ClipMapping:
        """Check `overrides` on `clip`; if the rig then maps, store them for its signature and say so.

        A choice that does not map comes back with `error` set and nothing stored (the dialog shows it inline);
        empty `overrides` clear the rig's corrections.
        """
        cm = self.preview(clip, overrides)
        if not cm.ok and overrides:  # no overrides: forget the rig's corrections even if it does not map
            return cm
        self.store.set(cm.report.signature, overrides)
        self.mapping_changed.emit(cm.report.signature)
        return cm

    def check_pair(self, source: Clip, target: Clip) -> None:
        """Before generating: raise `MappingError` (one line naming the clip) if either clip cannot be mapped."""
        for what, clip in (("source", source), ("target", target)):
            cm = self.of(clip)
            if not cm.ok:
                raise MappingError(f"{what} clip {clip.name or clip.source_path} cannot be mapped: {cm.error}")

    def _model_rig(self, clip: Clip) -> ClipMapping:
        return ClipMapping(True, self._failed(clip, None), None, {})

    @staticmethod
    def _failed(clip: Clip, error: str | None) -> MappingReport:
        """A report with no roles: for the model's rig (error None) or a mapper that raised."""
        from rsmt_studio.motion.retarget import skeleton_signature

        where = str(clip.source_path) if clip.source_path else (clip.name or "clip")
        return MappingReport(where, skeleton_signature(clip.skeleton), [], [], [], error=error)


__all__ = ["ALL_ROLES", "REQUIRED", "ClipMapping", "MappingModel", "is_model_rig", "leftover_fate",
           "overrides_from"]
