"""The did:web fetcher's limits, each with its reason (an in-process transport and resolver;
the loopback HTTPS server tests are in tests/integration/credentials)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pavilion.credentials.data_integrity import did_web
from pavilion.credentials.data_integrity.did_web import HttpDidWebFetcher
from pavilion.credentials.report import CheckFailed


async def public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


def fetcher(handler: Any, **kwargs: Any) -> HttpDidWebFetcher:
    kwargs.setdefault("resolver", public)
    return HttpDidWebFetcher(transport=httpx.MockTransport(handler), **kwargs)


async def code_of(fetch: HttpDidWebFetcher, url: str) -> str:
    with pytest.raises(CheckFailed) as caught:
        await fetch(url)
    return caught.value.code


async def test_a_body_past_the_limit_is_not_read_further_even_without_a_length() -> None:
    read: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            read.append(1)
            yield b"x" * 1024

    fetch = fetcher(lambda request: httpx.Response(200, content=chunks()), max_bytes=4096)
    try:
        assert await code_of(fetch, "https://big.example/.well-known/did.json") == (
            "bad_controller_document"
        )
        assert len(read) < 10  # stopped near the limit, not after the 100 KiB
        declared = fetcher(
            lambda request: httpx.Response(200, headers={"content-length": "999999"}),
            max_bytes=4096,
        )
        assert await code_of(declared, "https://big.example/.well-known/did.json") == (
            "bad_controller_document"
        )
        await declared.aclose()
    finally:
        await fetch.aclose()


async def test_names_that_do_not_resolve_and_urls_that_are_not_https() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        return []

    async def broken(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    for resolver in (nothing, broken):
        fetch = fetcher(lambda request: httpx.Response(200, json={}), resolver=resolver)
        with pytest.raises(CheckFailed, match="does not resolve"):
            await fetch("https://nowhere.example/.well-known/did.json")
        await fetch.aclose()
    fetch = fetcher(lambda request: httpx.Response(200, json={}))
    try:
        assert await code_of(fetch, "https://issuer.example:port/did.json") == "bad_did"
        assert await code_of(fetch, "https://:443/did.json") == "did_web_not_https"
        assert await code_of(fetch, "ftp://issuer.example/did.json") == "did_web_not_https"
        # a redirect to plain http is refused like any non-https URL
        to_http = fetcher(
            lambda request: httpx.Response(302, headers={"location": "http://issuer.example/x"})
        )
        assert await code_of(to_http, "https://issuer.example/.well-known/did.json") == (
            "did_web_not_https"
        )
        await to_http.aclose()
    finally:
        await fetch.aclose()


async def test_transport_errors_are_unreachable_and_the_cache_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    failing = fetcher(refuse)
    assert await code_of(failing, "https://down.example/.well-known/did.json") == (
        "did_web_unreachable"
    )
    await failing.aclose()

    monkeypatch.setattr(did_web, "CACHE_ENTRIES", 2)
    served: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        served.append(request.headers["host"])
        return httpx.Response(200, json={"id": request.headers["host"]})

    fetch = fetcher(answer)
    try:
        for host in ("a.example", "b.example", "c.example", "a.example"):
            await fetch(f"https://{host}/.well-known/did.json")
        # a.example was evicted by c.example, so it is fetched again
        assert served == ["a.example", "b.example", "c.example", "a.example"]
        await fetch("https://c.example/.well-known/did.json")
        assert len(served) == 4  # still cached
    finally:
        await fetch.aclose()
