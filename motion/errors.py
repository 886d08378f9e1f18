"""The one exception every BVH problem becomes."""

from __future__ import annotations

from pathlib import Path


class BVHError(ValueError):
    """A BVH file that cannot be read: names the file, the 1-based line, what was expected and what was found.

    ``str(err)`` is one line, ``"file:line: expected X, found Y"``, ready for a status bar or a CLI.
    """

    def __init__(self, path: str | Path | None, line: int | None, expected: str, found: str) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.expected = expected
        self.found = found
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else "<bvh>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: expected {self.expected}, found {self.found}"

    def __reduce__(self):  # picklable across processes (worker pools)
        return (type(self), (self.path, self.line, self.expected, self.found))
