"""`rsmt-studio serve` as a real subprocess on 127.0.0.1, driven through the real client (`rsmt_studio.client`)."""

from __future__ import annotations

import json
import socket
import threading

import numpy as np
import pytest

from .conftest import API_KEY, BOW, RUN, STEPS, cli, wait_for

pytestmark = pytest.mark.slow


def _req(**change):
    body = {"source_path": RUN, "source_frame": 40, "target_path": BOW, "target_frame": 80, "style": None,
            "length": 12, "seed": 3}
    body.update(change)
    return body


@pytest.fixture(scope="module")
def style(client_info) -> str:
    return client_info["styles"][0]


@pytest.fixture(scope="module")
def client_info(server):
    from rsmt_studio.client import Client

    return Client(server[0], api_key=API_KEY).info()


def test_health_info_and_openapi(server, client, client_info):
    import urllib.request

    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.weights import load_assets

    assert client.health()["status"] == "ok"
    info = client_info
    assert info["weights_hash"] == load_assets(default_assets_dir()).weights_hash()
    assert info["device"] == "CPU" and info["steps_per_call"] == 40
    assert len(info["styles"]) > 1 and info["model"]["n_joints"] == 21
    assert info["model"]["skeleton"]["names"]
    # the bounded memos a long-running service holds (docs/service.md "Memory"): reported, never beyond their bounds
    memos = info["queue"]["memos"]
    assert set(memos) == {"style_codes", "phase_tracks", "rig_bindings", "rig_clips", "rig_frames", "library_files"}
    assert 0 <= memos["library_files"] <= 64 and max(memos.values()) <= 256
    with urllib.request.urlopen(server[0] + "/docs", timeout=10) as r:
        assert b"swagger" in r.read().lower()
    with urllib.request.urlopen(server[0] + "/openapi.json", timeout=10) as r:
        paths = json.loads(r.read())["paths"]
    assert {"/health", "/v1/info", "/v1/phases", "/v1/style-codes", "/v1/transitions"} <= set(paths)


def test_api_key_is_required_on_v1_routes(server):
    from rsmt_studio.client import Client, ServiceError

    anonymous = Client(server[0])
    assert anonymous.health()["status"] == "ok"  # health stays open for supervisors
    for call in (anonymous.info, lambda: Client(server[0], api_key="wrong").info()):
        with pytest.raises(ServiceError) as err:
            call()
        assert err.value.status == 401 and err.value.field == "X-API-Key"


def test_transition_equals_what_generate_writes(client, style, library, tmp_path):
    """Same request through the service and through `rsmt-studio generate`: the same BVH text, byte for byte."""
    got = client.transition(**_req(style=style, length=24))
    out = tmp_path / "generate.bvh"
    r = cli("generate", "--source", str(library / RUN), "--source-frame", "40", "--target", str(library / BOW),
            "--target-frame", "80", "--style", style, "--frames", "24", "--seed", "3", "--steps-per-call", STEPS,
            "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert got["format"] == "bvh" and got["frames"] == 24
    assert got["bvh"] == out.read_text()
    free = client.transition(**_req(style=style, length=24, foot_lock=False))  # the feet as the model made them
    r = cli("generate", "--source", str(library / RUN), "--source-frame", "40", "--target", str(library / BOW),
            "--target-frame", "80", "--style", style, "--frames", "24", "--seed", "3", "--steps-per-call", STEPS,
            "--out", str(out), "--overwrite", "--no-foot-lock")
    assert r.returncode == 0, r.stderr
    assert free["bvh"] == out.read_text()
    wobbly = client.transition(**_req(style=style, length=24, head_steady=False))  # the head as the model made it
    r = cli("generate", "--source", str(library / RUN), "--source-frame", "40", "--target", str(library / BOW),
            "--target-frame", "80", "--style", style, "--frames", "24", "--seed", "3", "--steps-per-call", STEPS,
            "--out", str(out), "--overwrite", "--no-head-steady")
    assert r.returncode == 0, r.stderr
    assert wobbly["bvh"] == out.read_text() and wobbly["bvh"] != got["bvh"]


def test_transition_from_bvh_text_as_json_arrays(client, style, library):
    from rsmt_studio.motion.bvh_reader import read_bvh

    text = (library / RUN).read_text()
    as_json = client.transition(**_req(source_path=None, source_bvh=text, target_path=None,
                                       target_bvh=(library / BOW).read_text(), style=style, format="json"))
    by_path = client.transition(**_req(style=style, format="json"))
    source = read_bvh(library / RUN)
    assert as_json["joint_names"] == source.skeleton.names
    assert as_json["parents"] == source.skeleton.parents.tolist()
    rot = np.array(as_json["local_quaternions_wxyz"])
    pos = np.array(as_json["local_positions"])
    assert rot.shape == (12, source.num_joints, 4) and pos.shape == (12, source.num_joints, 3)
    assert np.allclose(np.linalg.norm(rot, axis=-1), 1, atol=1e-6)
    assert np.array(as_json["phase"]).shape[0] == 12
    # the same clips given as BVH text or as library paths: the same motion
    assert np.array_equal(rot, np.array(by_path["local_quaternions_wxyz"]))
    assert np.array_equal(pos, np.array(by_path["local_positions"]))


def test_stream_sends_frames_as_they_are_made(client, style):
    events = list(client.stream_transition(**_req(style=style, format="json", length=60)))
    chunks, done = events[:-1], events[-1]
    assert done["event"] == "done" and all(e["event"] == "chunk" for e in chunks)
    assert [(c["start"], c["frames"]) for c in chunks] == [(0, 40), (40, 20)]  # one line per engine call (40 steps)
    streamed = np.concatenate([np.array(c["local_quaternions_wxyz"]) for c in chunks])
    assert np.array_equal(streamed, np.array(done["local_quaternions_wxyz"]))


def test_phases_and_style_codes(client, style, library):
    from rsmt_studio.motion.bvh_reader import read_bvh

    ph = client.phases(path=RUN)
    n_phases = client.info()["model"]["n_phases"]
    assert np.array(ph["phase"]).shape == (read_bvh(library / RUN).num_frames, n_phases, 2)
    assert np.array(ph["amplitude"]).shape == np.array(ph["phase"]).shape[:2]
    by_name = client.style_code(style=style)
    by_clip = client.style_code(bvh=(library / BOW).read_text())
    assert set(by_name["arrays"]) == set(by_clip["arrays"]) and len(by_name["arrays"]) == 8
    for name, shape in by_clip["shapes"].items():
        assert list(np.array(by_clip["arrays"][name]).shape) == shape and shape[0] == 1


@pytest.mark.parametrize(
    ("change", "status", "field", "words"),
    [
        ({"source_path": None, "source_bvh": "HIERARCHY\nROOT Hips\n{\n"}, 422, "source_bvh", "expected"),
        ({"target_path": "broken.bvh"}, 422, "target_path", "broken.bvh"),
        ({"style": "no-such-style"}, 422, "style", "unknown style"),
        ({"source_frame": 3}, 422, "source_frame", "out of range"),
        ({"target_frame": 99999}, 422, "target_frame", "out of range"),
        ({"length": 1001}, 422, "length", "1..1000"),
        ({"length": "long"}, 422, "length", "integer"),
        ({"source_path": "../outside/secret.bvh"}, 403, "source_path", "'..'"),
        ({"source_path": "/etc/passwd"}, 403, "source_path", "outside the library root"),
        ({"target_path": "escape.bvh"}, 403, "target_path", "outside the library root"),
        ({"target_path": "missing.bvh"}, 404, "target_path", "no such file"),
        ({"source_bvh": "x"}, 422, "source_bvh", "exactly one"),
        ({"colour": "red"}, 422, "colour", "xtra"),
    ],
)
def test_bad_requests_name_the_field(client, style, change, status, field, words):
    from rsmt_studio.client import ServiceError

    change = {"style": style, **change}
    with pytest.raises(ServiceError) as err:
        client.transition(**_req(**change))
    e = err.value
    assert (e.status, e.field) == (status, field), e
    assert words.lower() in e.message.lower(), e.message


def test_oversized_body_is_refused_with_413(client):
    big = json.dumps(_req(source_path=None, source_bvh="x" * (1024 * 1024 + 10))).encode()
    status, _headers, body = client.post_raw("/v1/transitions", big)
    assert status == 413
    assert json.loads(body)["error"]["field"] == "body"


def test_clip_over_the_frame_limit_is_refused_with_413(client, style, library):
    """The server takes clips of at most 200 frames (--max-clip-frames): a 250-frame BVH names its field."""
    from rsmt_studio.client import ServiceError

    text = (library / BOW).read_text()
    head, motion = text.split("MOTION", 1)
    lines = [x for x in motion.strip().splitlines()[2:] if x.strip()]
    long_text = head + "MOTION\nFrames: 250\nFrame Time: 0.0333333\n" + "\n".join((lines * 3)[:250]) + "\n"
    with pytest.raises(ServiceError) as err:
        client.transition(**_req(style=style, target_path=None, target_bvh=long_text))
    assert (err.value.status, err.value.field, err.value.reason) == (413, "target_bvh", "too_many_frames")
    assert "250 frames" in err.value.message


def test_full_queue_answers_503_with_retry_after_and_batches_the_rest(client, style):
    """8 long requests at once on a service admitting 4: the rest get 503 + Retry-After; the 4 share calls."""
    from rsmt_studio.client import ServiceError

    before = client.info()["queue"]["batch_sizes"]
    results: list = [None] * 8
    go = threading.Barrier(8)

    def one(i: int) -> None:
        go.wait()
        try:
            results[i] = client.transition(**_req(style=style, length=200 + i, seed=i))
        except ServiceError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    refused = [r for r in results if isinstance(r, ServiceError)]
    served = [r for r in results if isinstance(r, dict)]
    assert len(refused) + len(served) == 8
    assert refused and all(r.status == 503 and r.retry_after and r.field == "request" for r in refused)
    assert len(served) >= 4
    assert all(r["frames"] == 200 + i for i, r in enumerate(results) if isinstance(r, dict))
    after = client.info()["queue"]["batch_sizes"]
    grew = {int(k): after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert max(grew) > 1, f"no request shared an engine call: {grew}"
    assert max(r["batch_size"] for r in served) > 1


def test_disconnect_cancels_the_work(server, client, style):
    counts = client.info()["queue"]["counts"]
    cancelled0, frames0 = counts.get("cancelled", 0), counts.get("frames", 0)
    # streaming: read one chunk of a 1000-frame transition, then hang up
    stream = client.stream_transition(**_req(style=style, length=1000))
    first = next(stream)
    assert first["event"] == "chunk"
    stream.close()
    wait_for(lambda: client.info()["queue"]["counts"].get("cancelled", 0) == cancelled0 + 1, 60, "stream cancel")
    # plain request: send it, wait until the engine is on it, then close the socket
    body = json.dumps(_req(style=style, length=1000)).encode()
    port = int(server[0].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/transitions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"X-API-Key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_for(lambda: client.info()["queue"]["admitted"] >= 1, 30, "request admitted")
    wait_for(lambda: client.info()["queue"]["counts"].get("cancelled", 0) == cancelled0 + 2, 60, "request cancel")
    counts = client.info()["queue"]
    assert counts["admitted"] == 0
    assert counts["counts"].get("frames", 0) == frames0  # neither 1000-frame transition was finished
