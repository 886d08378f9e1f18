"""One real `rsmt-studio serve` subprocess for the room's tests, on a free 127.0.0.1 port, and the real client.

The server runs the shipped weights with the app's graphs (40 steps per call: the shipped compiled models of
assets/compiled, installed into the shared test MEF cache), so no run compiles anything. Its library root is a temporary folder
with copies of two Bandai clips and a symlink that leads out of it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STEPS = "40"  # engine.STEPS_PER_CALL["cpu"]: the graphs shipped compiled (tests/inference use them too)
API_KEY = "test-key-16"
SERVER_FLAGS = ["--max-queue", "4", "--max-batch", "4", "--batch-window-ms", "30", "--max-body-mb", "1",
                "--max-length", "1000", "--max-clip-frames", "200"]
RUN = "dataset-1_run_active_001.bvh"
BOW = "dataset-1_bow_angry_001.bvh"


@pytest.fixture(scope="session")
def serve_cache_dir(mef_cache_dir) -> Path:
    """The shared test MEF cache (tests/conftest.py), exported to every subprocess."""
    return mef_cache_dir


@pytest.fixture(scope="session")
def bandai_data(bandai_root) -> Path:
    return bandai_root / "Bandai-Namco-Research-Motiondataset-1" / "data"


@pytest.fixture(scope="session")
def library(tmp_path_factory, bandai_data) -> Path:
    """A library root: two real clips, a broken BVH, and `escape.bvh`, a symlink to a clip outside the root."""
    root = tmp_path_factory.mktemp("library")
    outside = tmp_path_factory.mktemp("outside")
    for name in (RUN, BOW):
        shutil.copy(bandai_data / name, root / name)
    shutil.copy(bandai_data / RUN, outside / "secret.bvh")
    (root / "escape.bvh").symlink_to(outside / "secret.bvh")
    (root / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ), cwd=REPO, check=False)


def start_server(library: Path, log: Path, flags: list[str], ready_timeout: float = 2400
                 ) -> tuple[str, subprocess.Popen]:
    """`rsmt-studio serve` on a free port with the room's library and key, once `/health` answers 200."""
    from rsmt_studio.client import Client

    port = free_port()
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "rsmt_studio.app.cli", "serve", "--port", str(port),
                                 "--library-root", str(library), "--api-key", API_KEY, "--steps-per-call", STEPS,
                                 *flags], stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        # a cold cache compiles the graphs first (minutes on 2 cores); a warm one loads in seconds
        Client(url).wait_ready(timeout=ready_timeout)
    except BaseException:  # noqa: BLE001 - re-raised with the server's log
        proc.kill()
        raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}") from None
    return url, proc


def stop_server(proc: subprocess.Popen, timeout: float = 20) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@pytest.fixture(scope="session")
def server(serve_cache_dir, library, tmp_path_factory):
    """(base_url, process, log) of a running service; stopped at the end of the session."""
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    url, proc = start_server(library, log, SERVER_FLAGS)
    yield url, proc, log
    stop_server(proc)


@pytest.fixture()
def client(server):
    from rsmt_studio.client import Client

    return Client(server[0], api_key=API_KEY, timeout=120)


def wait_for(pred, timeout: float = 30.0, what: str = "condition"):
    """Poll `pred` (bounded) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
