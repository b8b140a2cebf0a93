"""A load generator's HTTP/1.1 client: raw keep-alive connections on ``asyncio`` protocols with
``httptools``' C parser.

It costs tens of microseconds of CPU per request, so the figures a benchmark prints are the
server's, not the client's: httpx cost 1 to 3 ms of CPU per request here, as much as the
servers it measured, and on this 2-core machine the load generator's CPU is taken from them.

While it measures, the load generator's own garbage collector is paused
(:func:`collector_paused`): a full collection over this process's heap (a roster, thousands of
request shapes, the latencies so far) stopped every request in flight for 100 to 400 ms, and
that pause was counted as the server's latency.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httptools


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request in flight, its answer parsed in C."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: Any = None  # uvloop's TCPTransport is no asyncio.Transport
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        _, protocol = await asyncio.get_running_loop().create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._parser.get_status_code(), b"".join(self._body)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionError("the server closed the connection"))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one complete request; the answer's status and body."""
        if self.closed or self._transport is None:
            raise ConnectionError("the connection is closed")
        self._body = []
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def encode_post(path: str, headers: dict[str, str], payload: bytes) -> bytes:
    """A complete HTTP/1.1 POST of ``payload`` (already encoded) with ``headers``."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{lines}content-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def encode_json_post(path: str, token: str, body: Any) -> bytes:
    """A complete HTTP/1.1 POST of ``body`` as JSON with a bearer token, encoded once."""
    return encode_post(
        path,
        {"authorization": f"Bearer {token}", "content-type": "application/json"},
        json.dumps(body).encode(),
    )


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this process inside the block: what exists is collected and
    frozen first, then the collector is off until the block ends (requests free their objects
    by reference counting; the few cycles wait until then)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
