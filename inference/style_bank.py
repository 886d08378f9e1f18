"""The shipped style bank: named styles -> style-encoder input features.

File `style_bank.safetensors` in the assets folder: one float32 array (T-1, 12(J-1)) per style, keyed by the
style's name, holding `motion.features.style_features` of a training clip of that style (a few KB each; the
clips themselves are not shipped). The engine encodes a bank entry once and memoises its FiLM caches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BANK_FILE = "style_bank.safetensors"


class StyleBank:
    def __init__(self, entries: dict[str, np.ndarray]) -> None:
        self._entries = {k: np.asarray(v, dtype=np.float32) for k, v in entries.items()}

    @classmethod
    def load(cls, folder: str | Path) -> StyleBank:
        path = Path(folder) / BANK_FILE
        if not path.is_file():
            return cls({})
        from safetensors.numpy import load_file

        return cls(dict(load_file(path)))

    @property
    def names(self) -> list[str]:
        return sorted(self._entries)

    def features(self, name: str) -> np.ndarray:
        return self._entries[name]

    def save(self, folder: str | Path) -> Path:
        """Atomic write of the bank into `folder`."""
        import os
        import tempfile

        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".style_bank.", dir=folder)
        os.close(fd)
        save_file({k: np.ascontiguousarray(v) for k, v in self._entries.items()}, tmp)
        os.replace(tmp, folder / BANK_FILE)
        return folder / BANK_FILE
