"""Fetching did:web documents: HTTPS only, bounded in time and size, pinned to a checked address.

A did:web DID names a host the connector then contacts, and whoever sends a credential or a
presentation chooses that name, so the fetch is hardened against being pointed inward:

* **HTTPS only**, the certificate verified (the system CAs, or a CA bundle the operator
  names) against the DID's host;
* **public addresses only** unless the operator allows private ones: the host is resolved
  once, every address it resolves to must be global (not loopback, private, link-local,
  CGNAT, multicast or reserved), and the connection goes to that checked address with the
  host as SNI and ``Host`` (no second lookup a rebinding DNS server could answer otherwise);
  no connection is reused for another host;
* **bounded**: one timeout for the whole fetch, the body read up to 256 KiB and no further;
* **redirects** are followed (at most three) only within the same origin (https, same host
  and port); a redirect elsewhere is refused with its reason;
* documents that fetched well are **cached** for a few minutes (the DID's keys rarely change
  and a verification should not cost a round trip each time).

Every failure is a :class:`~pavilion.credentials.report.CheckFailed` of the ``signature``
check whose reason names the URL and what went wrong.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import httpx

from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.parsing import loads_json

MAX_DOCUMENT_BYTES: Final = 256 * 1024
MAX_REDIRECTS: Final = 3
CACHE_ENTRIES: Final = 256
_ACCEPT: Final = "application/did+json, application/did+ld+json, application/json"

#: host, port -> the IP addresses it resolves to.
AddressResolver = Callable[[str, int], Awaitable[list[str]]]


def _fail(code: str, reason: str) -> CheckFailed:
    return CheckFailed(CheckName.SIGNATURE, code, reason)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable (an IPv4-mapped IPv6 one judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Certificate-verifying client context: the system CAs, or only ``ca_file``'s."""
    if ca_file is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(ca_file))


class HttpDidWebFetcher:
    """Fetches did:web documents (see the module text for the rules)."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | None = None,
        timeout_seconds: float = 5.0,
        allow_private_addresses: bool = False,
        cache_seconds: float = 300.0,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        resolver: AddressResolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._allow_private = allow_private_addresses
        self._cache_seconds = cache_seconds
        self._max_bytes = max_bytes
        self._resolve = resolver
        self._client = httpx.AsyncClient(
            verify=verify or tls_context(),
            timeout=timeout_seconds,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the pinned address is the peer
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
        )
        self._cache: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, url: str) -> Any:
        cached = self._cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            self._cache.move_to_end(url)
            return cached[1]
        try:
            async with asyncio.timeout(self._timeout):
                document = await self._fetch(url)
        except TimeoutError as exc:
            raise _fail("did_web_unreachable", f"{url}: timed out") from exc
        self._cache[url] = (time.monotonic() + self._cache_seconds, document)
        self._cache.move_to_end(url)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return document

    async def _fetch(self, url: str) -> Any:
        target = _https_url(url)
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = await self._get(target)
            if status in (301, 302, 303, 307, 308) and location is not None:
                following = _https_url(str(target.join(location)))
                if (following.host, following.port) != (target.host, target.port):
                    raise _fail(
                        "did_web_redirect",
                        f"{url} redirects to another host ({following.host}): not followed",
                    )
                target = following
                continue
            if status != 200:
                raise _fail("did_web_unreachable", f"{url} answered {status}")
            try:
                return loads_json(body, what="the DID document")
            except ValueError as exc:
                raise _fail(
                    "bad_controller_document", f"{url}: the DID document is not JSON"
                ) from exc
        raise _fail("did_web_redirect", f"{url}: more than {MAX_REDIRECTS} redirects")

    async def _get(self, target: httpx.URL) -> tuple[int, str | None, bytes]:
        host, port = target.host, target.port or 443
        address = await self._address(host, port)
        pinned = target.copy_with(host=address)
        host_header = host if port == 443 else f"{host}:{port}"
        try:
            async with self._client.stream(
                "GET",
                pinned,
                headers={"Host": host_header, "Accept": _ACCEPT},
                extensions={"sni_hostname": host},
            ) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self._max_bytes:
                    raise self._too_large(target)
                body = bytearray()
                if response.status_code == 200:
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise self._too_large(target)
                return response.status_code, response.headers.get("location"), bytes(body)
        except httpx.HTTPError as exc:
            raise _fail("did_web_unreachable", f"{target}: {type(exc).__name__}") from exc

    async def _address(self, host: str, port: int) -> str:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise _fail("did_web_unreachable", f"{host} does not resolve") from exc
        if not addresses:
            raise _fail("did_web_unreachable", f"{host} does not resolve")
        if not self._allow_private:
            inward = [a for a in addresses if not is_public(a)]
            if inward:
                raise _fail(
                    "did_web_private_address",
                    f"{host} resolves to a non-public address ({inward[0]}): did:web documents "
                    "are fetched from public addresses only",
                )
        return addresses[0].split("%", 1)[0]

    def _too_large(self, target: httpx.URL) -> CheckFailed:
        return _fail(
            "bad_controller_document",
            f"{target}: the DID document is larger than {self._max_bytes} bytes",
        )


def _https_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise _fail("bad_did", f"{url!r} is not a URL") from exc
    if parsed.scheme != "https" or not parsed.host:
        raise _fail("did_web_not_https", f"{url}: did:web documents are fetched over https only")
    return parsed
