"""`/health` while the graphs compile: 503 with the compile progress; stopping the server stops the compile.

A second server on an EMPTY cache folder with 3 steps per call (a graph that is not shipped compiled), so its
engine must compile; it is stopped after the first progress event, which also checks that a shut-down server
leaves no compile process behind (seconds of CPU, not minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, free_port, wait_for

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    out = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                out.add(int(status.parent.name))
    return out


def test_health_is_503_with_progress_while_compiling(tmp_path):
    from rsmt_studio.client import Client, ServiceError

    port = free_port()
    env = dict(os.environ, RSMT_STUDIO_CACHE_DIR=str(tmp_path / "empty-cache"))
    proc = subprocess.Popen([sys.executable, "-m", "rsmt_studio.app.cli", "serve", "--port", str(port),
                             "--steps-per-call", "3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=env)
    try:
        client = Client(f"http://127.0.0.1:{port}", timeout=10)

        def compiling():
            try:
                client.health()
            except ServiceError as exc:
                # the shipped graphs are installed first (events "shipped"), then steps3 compiles
                return exc if "steps3" in (exc.body.get("progress") or {}) else None
            except OSError:
                return None  # not listening yet
            raise AssertionError("health answered 200 on an empty cache")

        err = wait_for(compiling, 120, "a compile progress event")
        assert err.status == 503 and err.retry_after and err.reason == "not_ready"
        assert err.body["status"] == "compiling"
        with pytest.raises(ServiceError) as info:
            client.info()
        assert info.value.status == 503
        workers = _children(proc.pid)
        assert workers, "no compile child process"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.2)
    left = [p for p in workers if Path(f"/proc/{p}/status").exists()
            and "State:\tZ" not in Path(f"/proc/{p}/status").read_text()]
    assert not left, f"compile processes left running: {left}"
