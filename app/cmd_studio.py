"""Placeholder until the studio window lands: reports what exists."""
from __future__ import annotations


def main(argv: list[str]) -> int:
    print("rsmt-studio: the studio window is not built yet")
    return 0
