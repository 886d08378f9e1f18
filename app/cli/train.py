"""`rsmt-studio train ...`: wired in here, implemented in `training/cli.py`, the only room that may use torch
(it is imported there lazily, when a stage runs)."""

from rsmt_studio.training.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
