"""A bounded memo for a long-lived engine: least recently used entries go first beyond `size`.

A studio session or a service sees an endless stream of new clips; every per-clip memo (bindings, retargeted
clips, phases, style codes) uses this instead of a plain dict so memory stays bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class BoundedMemo(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)

    def get_or(self, key: Any, make: Callable[[], Any]) -> Any:
        """The memoised value, made (and kept) on a miss."""
        if key in self:
            return self[key]
        value = self[key] = make()
        return value
