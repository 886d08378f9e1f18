"""Request bodies and limits of the service (pydantic models: FastAPI validates them and documents them at /docs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; beyond it the service answers 413/422 naming the field."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_length: int = 240  # transition frames
    max_clip_frames: int = 20_000  # frames of one BVH in a request
    max_queue: int = 256  # admitted, unfinished requests; then 503 + Retry-After
    max_batch: int = 64  # requests in one engine call
    window_ms: float = 5.0  # how long the engine thread waits for more requests to batch


class ClipInput(BaseModel):
    """A clip: BVH text, or a path under the library root."""

    model_config = ConfigDict(extra="forbid")
    bvh: str | None = Field(None, description="BVH file content")
    path: str | None = Field(None, description="a BVH file under the service's --library-root")


class StyleCodeInput(ClipInput):
    style: str | None = Field(None, description="a style of the shipped style bank (instead of bvh/path)")


class TransitionRequest(BaseModel):
    """`POST /v1/transitions`. Exactly one of source_bvh/source_path, target_bvh/target_path, style/style_bvh."""

    model_config = ConfigDict(extra="forbid")
    source_bvh: str | None = Field(None, description="source clip, BVH text")
    source_path: str | None = Field(None, description="source clip, a path under --library-root")
    source_frame: int = Field(..., description="last context frame of the source (needs 9 frames before it)")
    target_bvh: str | None = Field(None, description="target clip, BVH text")
    target_path: str | None = Field(None, description="target clip, a path under --library-root")
    target_frame: int = Field(..., description="keyframe of the target the transition arrives at")
    style: str | None = Field(None, description="a style of the style bank (GET /v1/info lists them)")
    style_bvh: str | None = Field(None, description="or BVH text whose style to use")
    length: int = Field(40, description="transition frames")
    seed: int | None = Field(0, description="sampler noise seed; null = no noise (deterministic)")
    foot_lock: bool = Field(True, description="planted feet keep their place (legs by IK); false: as the model "
                                              "made them")
    head_steady: bool = Field(True, description="the head turns half as far off the straight way to the keyframe; "
                                                "false: as the model made it")
    format: Literal["bvh", "json"] = Field("bvh", description="bvh: BVH text on the source's rig; json: arrays")
    stream: bool = Field(False, description="send frames as they are made (NDJSON lines)")
