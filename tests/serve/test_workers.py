"""`rsmt-studio serve --workers 2`: two server processes on one port, each with its own engine, both answering,
and a transition from either equal to the single-process service's (real subprocesses, real client)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import API_KEY, RUN, start_server, stop_server, wait_for

pytestmark = pytest.mark.timeout(900)


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.update(int(c) for c in text)
    return out


@pytest.fixture(scope="module")
def two_workers(serve_cache_dir, library, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-workers") / "serve.log"
    url, proc = start_server(library, log, ["--workers", "2", "--max-batch", "4"], ready_timeout=600)
    yield url, proc
    stop_server(proc)


def test_two_worker_processes_each_with_an_engine_answer(two_workers, client):
    from rsmt_studio.client import Client, ServiceError

    url, proc = two_workers
    workers = wait_for(lambda: {p for p in _children(proc.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()},
                       what="two spawned worker processes")
    assert len(workers) == 2

    def info_pid() -> int | None:
        try:  # a fresh connection each time: the kernel hands it to whichever worker accepts first
            return Client(url, api_key=API_KEY, timeout=60).info()["worker_pid"]
        except ServiceError as exc:  # the other worker may still be loading its engine
            assert exc.status == 503
            return None

    def both_answered() -> set[int]:
        with ThreadPoolExecutor(16) as pool:
            seen = {p for p in pool.map(lambda _: info_pid(), range(32)) if p is not None}
        return seen if seen == workers else set()

    assert wait_for(both_answered, timeout=300, what="an answer from each worker") == workers

    req = {"source_path": RUN, "source_frame": 40, "target_path": RUN, "target_frame": 60, "style": client.info()["styles"][0],
           "length": 20, "seed": 3, "format": "bvh"}
    single = client.transition(**req)["bvh"]  # the session's single-process server
    with ThreadPoolExecutor(6) as pool:
        texts = list(pool.map(lambda _: Client(url, api_key=API_KEY, timeout=300).transition(**req)["bvh"],
                              range(6)))
    assert all(t == single for t in texts)
