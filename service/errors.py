"""Errors a request can cause, each naming the JSON field (or plan column) it is about.

Why one type: the service answers every bad request with the same body, `{"error": {"field", "message"}}`, so a
plug-in can point at the offending field, and the batch command sums failures by `reason`.
"""

from __future__ import annotations

import re


class FieldError(ValueError):
    """A request the service refuses: HTTP `status`, the `field` at fault, a one-line `message`."""

    def __init__(self, field: str, message: str, status: int = 422, reason: str = "bad_request") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status
        self.reason = reason

    def body(self) -> dict:
        return {"error": {"field": self.field, "message": self.message, "reason": self.reason}}


_ENGINE_FIELDS = (
    (re.compile(r"source frame"), "source_frame", "frame_out_of_range"),
    (re.compile(r"target frame"), "target_frame", "frame_out_of_range"),
    (re.compile(r"unknown style"), "style", "unknown_style"),
    (re.compile(r"style clip"), "style_bvh", "style_clip_too_short"),
    (re.compile(r"transition length"), "length", "length_out_of_range"),
)


def from_engine(message: str, source_where: str, target_where: str) -> FieldError:
    """A `TransitionError`'s one-line message as a FieldError: which field, from the engine's wording (frame out
    of range, unknown style, ...) or, for skeleton problems, from the clip the message starts with."""
    for pattern, field, reason in _ENGINE_FIELDS:
        if pattern.search(message):
            return FieldError(field, message, reason=reason)
    if "skeleton" in message:
        field = "target" if message.startswith(target_where) and not message.startswith(source_where) else "source"
        return FieldError(field, message, reason="incompatible_skeleton")
    return FieldError("request", message, reason="transition_error")
