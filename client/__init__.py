"""`rsmt_studio.client`: a small client for `rsmt-studio serve` (standard library only: no Qt, no MAX).

    from rsmt_studio.client import Client, ServiceError
    c = Client("http://127.0.0.1:8765", api_key=None)
    c.wait_ready(timeout=600)                      # polls /health (graphs compile on a first start)
    t = c.transition(source_path="a.bvh", source_frame=60, target_path="b.bvh", target_frame=80,
                     style="proud", length=40, seed=0)   # t["bvh"]: BVH text on the source's rig
    for event in c.stream_transition(...):          # {"event": "chunk", ...} per engine call, then "done"
        ...

Every refusal raises `ServiceError` with the HTTP status, the field the service named, its message and, on 503,
Retry-After. Why stdlib: plug-ins embed this in DCC Pythons where installing packages is awkward.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Client", "ServiceError"]


class ServiceError(RuntimeError):
    """The service refused a request: `status`, `field`, `message`, `reason`, `retry_after` (seconds or None)."""

    def __init__(self, status: int, field: str, message: str, reason: str = "", retry_after: float | None = None,
                 body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {field}: {message}")
        self.status = status
        self.field = field
        self.message = message
        self.reason = reason
        self.retry_after = retry_after
        self.body = body


class Client:
    """One service at `base_url`. Each call opens its own connection, so a Client is safe to share between threads."""

    def __init__(self, base_url: str = "http://127.0.0.1:8765", api_key: str | None = None,
                 timeout: float = 300.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host:port, not {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.api_key = api_key
        self.timeout = timeout

    # ------------------------------------------------------------------------------------------ routes
    def health(self) -> dict[str, Any]:
        """GET /health: {"status": "ok", ...}; raises ServiceError(503) with the compile progress while loading."""
        return self._json("GET", "/health")

    def wait_ready(self, timeout: float = 900.0, poll: float = 0.5) -> dict[str, Any]:
        """Poll /health until it answers 200 (graphs loaded); raise TimeoutError with the last progress."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                return self.health()
            except ServiceError as exc:
                if exc.status != 503 or (isinstance(exc.body, dict) and exc.body.get("status") == "failed"):
                    raise
                last = exc.body
            except OSError as exc:  # not listening yet
                last = str(exc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"service not ready after {timeout:.0f} s: {last}")
            time.sleep(poll)

    def info(self) -> dict[str, Any]:
        return self._json("GET", "/v1/info")

    def phases(self, bvh: str | None = None, path: str | None = None) -> dict[str, Any]:
        """DeepPhase of every frame of a clip (BVH text, or a path under the service's library root)."""
        return self._json("POST", "/v1/phases", _clip(bvh, path))

    def style_code(self, style: str | None = None, bvh: str | None = None, path: str | None = None
                   ) -> dict[str, Any]:
        return self._json("POST", "/v1/style-codes", {"style": style, **_clip(bvh, path)})

    def transition(self, **fields: Any) -> dict[str, Any]:
        """POST /v1/transitions with the issue's fields (source_bvh|source_path, source_frame, target_bvh|
        target_path, target_frame, style|style_bvh, length, seed, foot_lock, head_steady,
        format). Returns the JSON answer."""
        fields.pop("stream", None)
        return self._json("POST", "/v1/transitions", _fields(fields))

    def stream_transition(self, **fields: Any) -> Iterator[dict[str, Any]]:
        """The same with stream=true: yields {"event": "chunk", "start", "frames", ...} as frames are made, then
        {"event": "done", ...} (or {"event": "error", ...}). Closing the iterator early closes the connection,
        which cancels the work on the service."""
        body = _fields({**fields, "stream": True})
        conn, resp = self._open("POST", "/v1/transitions", body)
        try:
            if resp.status != 200:
                self._raise(resp, resp.read())
            for line in resp:
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    def post_raw(self, path: str, data: bytes, content_type: str = "application/json") -> tuple[int, dict, bytes]:
        """Send bytes as they are (tests of size limits); returns (status, headers, body) without raising."""
        conn = self._connection()
        try:
            conn.request("POST", path, body=data, headers={**self._headers(), "Content-Type": content_type})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    # ------------------------------------------------------------------------------------------ plumbing
    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.api_key:
            h["X-API-Key"] = self.api_key
        return h

    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def _open(self, method: str, path: str, body: dict | None = None):
        conn = self._connection()
        data = None if body is None else json.dumps(body).encode()
        headers = self._headers()
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def _json(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        conn, resp = self._open(method, path, body)
        try:
            raw = resp.read()
            if resp.status != 200:
                self._raise(resp, raw)
            return json.loads(raw)
        finally:
            conn.close()

    @staticmethod
    def _raise(resp: http.client.HTTPResponse, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        err = body.get("error", {}) if isinstance(body, dict) else {}
        if not isinstance(err, dict):
            err = {}
        retry = resp.getheader("Retry-After")
        raise ServiceError(resp.status, str(err.get("field", "")), str(err.get("message", body)),
                           str(err.get("reason", "")), float(retry) if retry else None, body)


def _clip(bvh: str | None, path: str | None) -> dict[str, Any]:
    return {"bvh": bvh, "path": None if path is None else str(path)}


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()}
