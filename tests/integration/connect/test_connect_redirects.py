"""A DP lookup carries a subject's identifiers: it goes to the registered endpoint and nowhere
else. A redirect (a compromised or misconfigured DP, or a proxy in between) must not carry the
body to another host, which could also sit in another jurisdiction. Both lookup clients
(aiohttp over HTTP/1.1, the default, and httpx) are checked over real loopback HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from pavilion.connect.config import PoolConfig
from pavilion.connect.endpoints import AttemptTrace
from pavilion.connect.http1 import Http1Pools


class Loopback:
    """A loopback HTTP server answering every POST with ``status`` (and ``location``)."""

    def __init__(self, status: int, location: str = "") -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                outer.bodies.append(self.rfile.read(length))
                self.send_response(status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/lookup"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(params=[307, 308, 302])
def redirected(request: pytest.FixtureRequest) -> Iterator[tuple[Loopback, Loopback]]:
    elsewhere = Loopback(200)
    dp = Loopback(request.param, location=elsewhere.url)
    yield dp, elsewhere
    dp.close()
    elsewhere.close()


BODY = {"claim_type": "student_status", "identifiers": {"email": "ada@example.org"}}


async def test_the_default_lookup_client_does_not_follow_a_redirect(
    redirected: tuple[Loopback, Loopback],
) -> None:
    dp, elsewhere = redirected
    pools = Http1Pools(PoolConfig(), connect_timeout_s=2)
    try:
        answer = await pools.post(
            "provider", dp.url, None, body=BODY, headers={}, budget_s=5, trace=AttemptTrace()
        )
    finally:
        await pools.aclose()
    assert 300 <= answer.status_code < 400  # judged as a bad answer, not followed
    assert len(dp.bodies) == 1
    assert elsewhere.bodies == []  # the identifiers never reached the other host


async def test_the_http2_lookup_client_does_not_follow_a_redirect(
    redirected: tuple[Loopback, Loopback],
) -> None:
    dp, elsewhere = redirected
    async with httpx.AsyncClient() as client:  # the connector's clients keep httpx's default
        answer = await client.post(dp.url, json=BODY)
    assert answer.is_redirect
    assert elsewhere.bodies == []
