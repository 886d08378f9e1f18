"""rsmt_studio.motion: BVH files, skeletons, clips, rotations and datasets as plain numpy.

Imports nothing else of ours and no Qt, MAX or torch, so every other room can stand on it.
"""

from . import rotations
from .bvh_reader import parse_bvh, read_bvh
from .bvh_writer import format_bvh, write_bvh
from .clip import Clip, forward_kinematics
from .errors import BVHError
from .skeleton import Skeleton

__all__ = [
    "BVHError",
    "Clip",
    "Skeleton",
    "format_bvh",
    "forward_kinematics",
    "parse_bvh",
    "read_bvh",
    "rotations",
    "write_bvh",
]
