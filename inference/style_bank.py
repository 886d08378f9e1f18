"""The shipped style bank: named styles -> style codes.

File `style_bank.safetensors` in the assets folder. An entry is either
- a style **code** (what ships): the style encoder's output for a training window of that style, i.e. both FiLM
  blocks' (gamma, beta, keys, values), stored as `<style>/<cache name>` (float16 to halve the size). Codes are
  computed from training clips by `inference/builders/make_style_bank.py`; the clips themselves are not shipped, and the
  codes are tied to the sampler weights they were made with (`weights_hash` in the file's metadata), or
- style-encoder input **features** `(T-1, 12(J-1))` keyed by the bare style name (tests and benchmarks use these
  with random weights); the engine encodes such an entry once and memoises its caches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BANK_FILE = "style_bank.safetensors"


class StyleBank:
    def __init__(self, entries: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
        self._entries = {k: np.asarray(v, dtype=np.float32) for k, v in entries.items()}
        self.metadata = dict(metadata or {})

    @classmethod
    def load(cls, folder: str | Path) -> StyleBank:
        path = Path(folder) / BANK_FILE
        if not path.is_file():
            return cls({})
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            entries = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no mapping
        return cls(entries, metadata)

    @property
    def names(self) -> list[str]:
        return sorted({k.split("/", 1)[0] for k in self._entries})

    def has_code(self, name: str) -> bool:
        return f"{name}/emb_gamma" in self._entries

    def code(self, name: str, cache_names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        """The stored FiLM caches of a style, in `cache_names` order (float32)."""
        return tuple(self._entries[f"{name}/{c}"] for c in cache_names)

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
        save_file({k: np.ascontiguousarray(v.astype(np.float16) if "/" in k else v) for k, v in self._entries.items()},
                  tmp, metadata=self.metadata or None)
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / BANK_FILE)
        return folder / BANK_FILE
