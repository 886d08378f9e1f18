"""A tiny plain-Python signal so models stay free of Qt and can be tested without an event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Event:
    """Callbacks connected to one named happening (``frame_changed``, ``clip_loaded``, ...).

    Emitting calls every slot in connection order; a slot may disconnect itself while being called.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> Callable[..., Any]:
        self._slots.append(slot)
        return slot

    def disconnect(self, slot: Callable[..., Any]) -> None:
        self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)

    def __len__(self) -> int:
        return len(self._slots)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self._slots)} slots)"
