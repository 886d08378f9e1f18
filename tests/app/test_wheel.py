"""The wheel works anywhere (#15): built from the source, installed into a fresh virtualenv, `rsmt-studio generate`
runs from it outside the checkout with only what the wheel carries (weights, style bank, default scene, the
shipped compiled models: an empty MEF cache must not compile anything).

Offline and fast: the new venv reuses this environment's installed dependencies through a .pth line (the
project's own editable install is not picked up: .pth files inside that folder are not processed), and the
wheel is built without build isolation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Not part of the source a wheel is built from (and large, or another engineer's scratch).
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              ".ruff_cache", ".hypothesis", ".device", ".gl", ".whl", "out", "results", "tests")


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="Linux wheel test (bin/ layout, x86-64 shipped models)")
def test_wheel_installs_and_generates_outside_the_checkout(tmp_path):
    t0 = time.perf_counter()
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=SKIP)  # build from a copy: the shared checkout gets no build/ folder
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(dist), str(src)], timeout=300, cwd=tmp_path)
    wheels = list(dist.glob("rsmt_studio-*.whl"))
    assert len(wheels) == 1
    t_build = time.perf_counter() - t0

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     timeout=60).stdout.strip())
    (site / "zz_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the wheel's own
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
          str(wheels[0])], timeout=300)

    pkg = site / "rsmt_studio"
    rooms = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for name, folder in rooms.items():  # every package of the checkout (subpackages too) is in the wheel
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.relative_to(REPO / folder)
            assert (pkg / name.removeprefix("rsmt_studio.") / rel).is_file(), f"the wheel lacks {folder}/{rel}"
    assets = pkg / "assets"
    for needed in ("manifest.json", "sampler.safetensors", "style_bank.safetensors", "default_scene/scene.json",
                   "compiled/manifest.json"):
        assert (assets / needed).is_file(), f"the wheel lacks assets/{needed}"
    assert list((assets / "compiled").glob("x86-64-v*/*.mef.xz"))

    run = tmp_path / "run"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"RSMT_STUDIO_CACHE_DIR": str(tmp_path / "cache"), "MODULAR_CACHE_DIR": str(tmp_path / "modular")}
    where = _run([str(py), "-c", "import rsmt_studio.inference.engine as e; print(e.__file__)"], timeout=120,
                 cwd=run, env=env).stdout.strip()
    assert Path(where).is_relative_to(site), f"imported from {where}, not from the wheel"
    scene = assets / "default_scene"
    out = run / "t.bvh"
    t1 = time.perf_counter()
    proc = _run([str(venv / "bin" / "rsmt-studio"), "generate", "--source", str(scene / "generated_walk_proud.bvh"),
                 "--source-frame", "60", "--target", str(scene / "generated_walk_tired.bvh"), "--target-frame", "40",
                 "--style", "tired", "--frames", "40", "--device", "cpu", "--seed", "0", "--out", str(out)],
                timeout=300, cwd=run, env=env)
    t_generate = time.perf_counter() - t1
    assert out.is_file() and "wrote" in proc.stdout
    assert "shipped compiled model installed" in proc.stderr, proc.stderr
    assert "compiling" not in proc.stderr, proc.stderr  # everything came from the wheel, nothing compiled
    print(f"wheel {wheels[0].stat().st_size / 1e6:.1f} MB built in {t_build:.0f} s; generate from it on an empty "
          f"cache {t_generate:.1f} s")
