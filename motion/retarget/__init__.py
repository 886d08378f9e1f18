"""Any humanoid rig onto the model's skeleton and back (research note: shared/notes/retargeting.md).

- `roles.find_roles(clip)`: which joint plays which humanoid role (topology and geometry first, names as evidence);
- `report.mapping_report(clip)`: that, in words, with the joints left over and what happens to them;
- `calibrate.calibrate(clip, roles)`: the rig's canonical T-pose, built from a real frame of its motion;
- `model_rig.ModelRig`: the model's own rig, calibrated the same way (shipped as assets/model_rig.json);
- `transfer.RigBinding`: user clip -> model rig (`to_model`) and generated frames -> user rig (`to_user`).
"""

from .model_rig import ModelRig, build_model_rig
from .report import CorrectionStore, MappingReport, mapping_report, skeleton_signature
from .roles import MappingError, RoleMap, find_roles
from .transfer import RigBinding

__all__ = ["CorrectionStore", "MappingError", "MappingReport", "ModelRig", "RigBinding", "RoleMap",
           "build_model_rig", "find_roles", "mapping_report", "skeleton_signature"]
