"""app/'s rooms keep Qt where it belongs: the headless subcommands (`serve`, `batch`, `eval`, `compile`, `train`,
`generate`, `info`), the models and the eval judges import no Qt; only app/qt/ and the window's own subcommand
(app/cli/studio.py) do (docs/app.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BVH = REPO / "assets" / "default_scene" / "generated_walk_proud.bvh"

CHECK = """
import importlib, pkgutil, sys
import rsmt_studio.app.cli as cli
import rsmt_studio.app.eval as ev
import rsmt_studio.app.models as models

parser = cli._build_parser()  # imports every headless subcommand's module
for argv in (["serve"], ["batch", "plan.json", "--out", "out"], ["eval"], ["compile"], ["train", "phase"],
             ["generate", "--source", "a.bvh", "--source-frame", "1", "--target", "b.bvh", "--target-frame", "2",
              "--style", "proud", "--out", "t.bvh"], ["info", "a.bvh"]):
    assert parser.parse_args(argv).command == argv[0], argv
assert cli.main(["info", sys.argv[1]]) == 0  # one headless command run end to end
modules = [f"{pkg.__name__}.{m.name}" for pkg in (cli, ev, models) for m in pkgutil.iter_modules(pkg.__path__)
           if f"{pkg.__name__}.{m.name}" not in ("rsmt_studio.app.cli.studio", "rsmt_studio.app.cli.__main__")]
assert len(modules) >= 15, modules
for name in modules:
    importlib.import_module(name)
qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "pyqtgraph", "shiboken6")
            or m.startswith("rsmt_studio.app.qt") or m == "rsmt_studio.app.cli.studio")
assert not qt, f"Qt imported by a headless module: {qt[:5]}"
print("ok", len(modules))
"""


def test_headless_subcommands_models_and_eval_import_no_qt():
    proc = subprocess.run([sys.executable, "-c", CHECK, str(BVH)], capture_output=True, text=True, timeout=300,
                          check=False, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("ok ")


def test_python_m_cli_is_the_console_script():
    proc = subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", "--help"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("info", "train", "generate", "eval", "compile", "serve", "batch"):
        assert name in proc.stdout
