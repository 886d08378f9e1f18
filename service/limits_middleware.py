"""`BodyLimit`: refuse request bodies over a size before anything parses them (413 naming the body).

Why an ASGI middleware and not a route check: the JSON parser would already have read (and held) the whole body.
A declared Content-Length over the limit is refused without parsing; a chunked body is counted as it arrives and
refused as soon as it passes the limit.

A declared body up to `DRAIN_FACTOR` times the limit is read and dropped before the 413 goes out: a server that
answers and closes while the client is still sending makes the client's send fail (a broken pipe or a reset that
can take the answer with it), so the client would see a network error instead of the 413 that names the body.
Larger declared bodies are refused at once, without reading them.
"""

from __future__ import annotations

import json

DRAIN_FACTOR = 4


async def _drain(receive) -> None:
    """Read the request body to its end and drop it."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class BodyLimit:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            if int(declared) <= DRAIN_FACTOR * self.max_bytes:
                await _drain(receive)
            await self._refuse(send, int(declared))
            return
        seen = 0
        refused = False
        started = False

        async def counting_receive():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(send, seen)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if refused:
                return  # we already answered 413
            started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send, size: int) -> None:
        body = json.dumps({"error": {"field": "body", "reason": "body_too_large",
                                     "message": f"request body of {size}+ bytes; this service takes at most "
                                                f"{self.max_bytes}"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
