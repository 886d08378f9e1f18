"""The `rsmt-studio` console script.

With no subcommand it opens the studio window (`studio.py`; without a display it does the same job headless).
Each subcommand lives in its own module of this folder (`info.py`, `generate.py`, ...) exposing
`add_arguments(parser)` and `run(args) -> int`, imported only when used, so `rsmt-studio info` never pays for
Qt or MAX; only `studio.py` imports Qt (tests/app/test_layout.py checks the others do not).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("rsmt_studio.app.cli.info", "describe BVH files: joints, channels, frames, fps, labels"),
    "train": ("rsmt_studio.app.cli.train", "train RSMT networks (needs the `train` extra)"),
    "generate": ("rsmt_studio.app.cli.generate", "generate a stylised transition headless with MAX"),
    "eval": ("rsmt_studio.app.cli.eval", "transition quality benchmark against baselines"),
    "compile": ("rsmt_studio.app.cli.compile", "compile the MAX graphs into the model cache"),
    "serve": ("rsmt_studio.app.cli.serve", "serve transitions over HTTP (needs the `serve` extra)"),
    "batch": ("rsmt_studio.app.cli.batch", "generate the transitions of a plan file, resumable"),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsmt-studio", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            p.set_defaults(_unavailable=name)
            continue
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        # No subcommand: the studio window (its module parses FILE.bvh ... and --screenshot).
        from rsmt_studio.app.cli import studio

        return studio.main(argv)
    args = _build_parser().parse_args(argv)
    if getattr(args, "_unavailable", None):
        print(f"rsmt-studio: '{args._unavailable}' is not available in this build", file=sys.stderr)
        return 2
    return int(args._run(args) or 0)

