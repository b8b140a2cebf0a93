"""Pure ASGI middleware: the request guard (header, path, body and JSON limits), request
metrics and security headers, in one layer (:class:`EdgeMiddleware`)."""

from __future__ import annotations

import json
import re
import time
from typing import Final, NamedTuple

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pavilion.api.problems import PROBLEM_BASE, PROBLEM_JSON
from pavilion.observability import stages
from pavilion.observability.metrics import HTTP_REQUEST_LATENCY
from pavilion.parsing import MAX_NESTING, NestingTooDeep, loads_json, text_problem


class RequestGuard:
    """What every request must pass before the app sees it (:class:`EdgeMiddleware` runs it
    for every HTTP request), each refused as problem+json:

    - headers over ``max_header_bytes`` in all (names and values): 431;
    - a NUL character in the path or the query: 422;
    - a body over ``max_body_bytes``, whether or not Content-Length is honest: 413;
    - a JSON body nested deeper than :data:`~pavilion.parsing.MAX_NESTING` levels, or holding a
      NUL or a lone surrogate in any key or string (no database column can keep them): 422.

    The body is buffered here (it is small by definition) and replayed to the app, because
    an error raised while the framework reads the body would be turned into a 400. Routes that
    stream their body under a limit of their own (roster uploads) pass unbuffered.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        streamed_paths: tuple[str, ...] = (),
        max_header_bytes: int = 16_384,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes
        # Routes that stream their body: regexes matched against the whole path.
        self.streamed = [re.compile(p) for p in streamed_paths]

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The checks above on an HTTP request, then the app (or the refusal)."""
        refusal = self._check_head(scope)
        if refusal is not None:
            await _refuse(scope, send, refusal)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") or any(
            p.fullmatch(scope.get("path", "")) for p in self.streamed
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = _json_body_problem(scope, body)
        if problem is not None:
            refusal = Refusal(422, "invalid-request", "Invalid request", problem, "body")
            await _refuse(scope, send, refusal)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check_head(self, scope: Scope) -> Refusal | None:
        headers = scope.get("headers", [])
        size = sum(len(name) + len(value) for name, value in headers)
        if size > self.max_header_bytes:
            return Refusal(
                431,
                "request-header-fields-too-large",
                "Request header fields too large",
                f"the request's headers exceed {self.max_header_bytes} bytes",
                "headers",
            )
        query = scope.get("query_string", b"")
        if "\x00" in scope.get("path", "") or b"\x00" in query or b"%00" in query:
            return Refusal(
                422,
                "invalid-request",
                "Invalid request",
                "the path and the query may not contain the NUL character (U+0000)",
                "path" if "\x00" in scope.get("path", "") else "query",
            )
        return None

    async def _too_large(self, scope: Scope, send: Send) -> None:
        detail = f"the request body exceeds {self.max_bytes} bytes"
        await _refuse(scope, send, Refusal(413, "payload-too-large", "Payload too large", detail))


def _json_body_problem(scope: Scope, body: bytes) -> str | None:
    """Why a JSON body cannot be taken (too deep, or unstorable text), or None. A body that
    is not JSON at all is left to the framework, which answers it as malformed JSON."""
    media = b""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.partition(b";")[0].strip().lower()
    if not body or not (media == b"application/json" or media.endswith(b"+json")):
        return None
    # Fast path (most bodies): too few brackets to nest past the limit, and no \u escape, the
    # only way JSON text can hold a NUL or a lone surrogate (raw ones are not valid JSON).
    if body.count(b"[") + body.count(b"{") <= MAX_NESTING and b"\\u" not in body:
        return None
    try:
        document = loads_json(body, what="the JSON body")
    except NestingTooDeep as exc:
        return str(exc)
    except ValueError:
        return None
    return text_problem(document)


class Refusal(NamedTuple):
    """A request the guard answers itself, as a problem."""

    status: int
    code: str
    title: str
    detail: str
    field: str | None = None


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    status = refusal.status
    problem: dict[str, object] = {
        "type": PROBLEM_BASE + refusal.code,
        "title": refusal.title,
        "status": status,
        "detail": refusal.detail,
        "instance": scope.get("path", ""),
    }
    if refusal.field is not None:
        problem["errors"] = [{"field": refusal.field, "message": refusal.detail}]
    body = json.dumps(problem).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: The interactive documentation pages (Swagger UI, ReDoc) load their code from the CDN FastAPI
#: names and run one inline script; nothing else, and no page may frame them.
DOCS_CSP: Final = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "font-src https://fonts.gstatic.com; img-src 'self' https://fastapi.tiangolo.com "
    "https://cdn.jsdelivr.net data:; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
#: Everything else is data (JSON, JWTs, metrics): nothing to run, load or frame.
API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
_DOCS_PATHS: Final = ("/docs", "/redoc")


def security_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response to ``path`` carries unless the route set its own (see
    :class:`EdgeMiddleware`)."""
    return _DOCS_HEADERS if path.startswith(_DOCS_PATHS) else _API_HEADERS


def _headers(csp: str) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", csp.encode()),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
    )


_API_HEADERS: Final = _headers(API_CSP)  # encoded once, not per response
_DOCS_HEADERS: Final = _headers(DOCS_CSP)


class EdgeMiddleware(RequestGuard):
    """The one pure-ASGI layer in front of the app (one frame and one ``send`` wrapper per
    request instead of three), outermost to innermost:

    - security headers on every response, the guard's refusals included:
      ``X-Content-Type-Options: nosniff``, a Content-Security-Policy with
      ``frame-ancestors 'none'`` (and ``X-Frame-Options: DENY`` for older browsers),
      ``Referrer-Policy: no-referrer``, and ``Cache-Control: no-store`` unless the route set its
      own (status lists and the JWKS are cacheable; API answers, token secrets above all, never
      are). The server's name is not disclosed (``serving.build_server``);
    - request latency by method, route template (never the raw path) and status, and the
      start of the "http" CPU stage;
    - the request guard (:class:`RequestGuard`).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stages.enter("http")  # the request's task: HTTP, auth and routing until a stage starts
        started = time.perf_counter()
        status = 500
        extra = security_headers(scope.get("path", ""))

        async def edge_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.guard(scope, receive, edge_send)
        finally:
            _latency(scope.get("method", ""), _route_of(scope), status).observe(
                time.perf_counter() - started
            )


#: The histogram's children by (method, route template, status): ``labels()`` validates and
#: locks on every call (about 1.7 us of the 3 us an observation cost). Bounded: a client
#: inventing methods gets its own children from ``labels()``, uncached.
_latency_children: dict[tuple[str, str, int], Histogram] = {}
_LATENCY_CACHED: Final = 1024


def _latency(method: str, route: str, status: int) -> Histogram:
    key = (method, route, status)
    child = _latency_children.get(key)
    if child is None:
        child = HTTP_REQUEST_LATENCY.labels(method, route, str(status))
        if len(_latency_children) < _LATENCY_CACHED:
            _latency_children[key] = child
    return child


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
