"""Serve an ASGI app with uvicorn: in the foreground (the CLI) or from a thread (demo, tests).

The one way the connector and the DP agent run a server. The socket is bound before uvicorn
starts, so a caller may ask for port 0, learn the port the kernel chose and hand out the URL
before the first request can arrive; IPv6 hosts and TLS work the same way. Every failure to
start (the address cannot be bound, the server dies or hangs during start-up) is one
:class:`~pavilion.errors.ServerStartFailed`.

Uvicorn keeps no logging configuration of its own (``log_config=None``), so its records reach
whatever redacting pipeline the process set up; access logs are off.

TLS is terminated here when the caller hands over an SSL context (:func:`server_ssl_context`
builds one: TLS 1.2 at least, and a client certificate asked for or required when a client CA
is given). Uvicorn does not pass the TLS session to the app, so on TLS the HTTP protocol is
:class:`TlsScopeProtocol`, which puts the ASGI ``tls`` extension (the verified client
certificate, the TLS version) in every request's scope.

:func:`serve_workers` runs several worker processes on one socket (uvicorn's supervisor): each
is a fresh interpreter that builds its app (and its TLS context) from a picklable factory.

A serving process settles its heap before the first request (:func:`settle_heap`): what
start-up built (every imported module, the app, the runtime: about 250,000 objects) is frozen
out of the cyclic garbage collector's sight, and young garbage is collected in fewer passes.
Measured under the VC-API issuance benchmark, the collector's full passes over that heap took
about a quarter of the server's CPU.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Literal, Protocol

import uvicorn
from cryptography import x509
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess

from pavilion.errors import ConfigurationError, ServerStartFailed

#: Seconds to wait for open requests on shutdown before cancelling them.
GRACEFUL_SHUTDOWN_S: Final = 5
#: Seconds a background server may take to start before it counts as hung.
STARTUP_TIMEOUT_S: Final = 15.0
#: Seconds a worker process may leave the supervisor's health ping unanswered.
WORKER_HEALTHCHECK_S: Final = 30


_SslContextFactory = Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]


class Server(Protocol):
    """What runs on the socket: a ``uvicorn.Server`` (tests stand in their own)."""

    started: bool
    should_exit: bool

    def run(self, sockets: list[socket.socket] | None = None) -> None: ...


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (IPv6 when ``host`` is); port 0 lets the kernel pick a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        raise ServerStartFailed(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            extra={"host": host, "port": port},
        ) from exc
    return sock


def socket_url(sock: socket.socket, *, tls: bool = False) -> str:
    """The base URL (``http://host:port``, IPv6 hosts bracketed) a client uses to reach ``sock``."""
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


ClientAuth = Literal["none", "optional", "required"]
_CLIENT_AUTH_MODES: Final[dict[str, ssl.VerifyMode]] = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


def server_ssl_context(
    certificate_pem: str,
    key_pem: str,
    *,
    client_ca_pem: str | None = None,
    client_auth: ClientAuth = "none",
) -> ssl.SSLContext:
    """A server context: TLS 1.2 at least (1.3 preferred), the chain loaded without the key
    touching a disk, and client certificates checked against ``client_ca_pem`` when asked for.

    ``optional`` asks for a certificate and verifies one that is sent; ``required`` refuses the
    handshake without a valid one. Either needs the client CA.
    """
    if client_auth != "none" and not client_ca_pem:
        raise ConfigurationError(f"client certificates {client_auth!r} need a client CA bundle")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    load_chain_from_memory(context, certificate_pem, key_pem, what="the server's TLS certificate")
    if client_ca_pem:
        try:
            context.load_verify_locations(cadata=client_ca_pem)
        except ssl.SSLError as exc:
            raise ConfigurationError(
                f"the client CA bundle does not load: {exc.reason or exc}"
            ) from exc
    context.verify_mode = _CLIENT_AUTH_MODES[client_auth]
    return context


def load_chain_from_memory(
    context: ssl.SSLContext, certificate_pem: str, key_pem: str, *, what: str
) -> None:
    """Load a certificate chain and its key into ``context``. ``ssl`` reads them from files
    only, so they go through an anonymous in-memory file (``memfd_create``) that never touches
    a disk and is closed at once."""
    material = (key_pem.strip() + "\n" + certificate_pem.strip() + "\n").encode("ascii")
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("pavilion-tls", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, material)
            _load_chain(context, f"/proc/self/fd/{fd}", what)
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile("wb", delete=True) as handle:  # pragma: no cover (no memfd)
        os.chmod(handle.name, 0o600)
        handle.write(material)
        handle.flush()
        _load_chain(context, handle.name, what)


def _load_chain(context: ssl.SSLContext, path: str, what: str) -> None:
    try:
        context.load_cert_chain(path)
    except ssl.SSLError as exc:
        raise ConfigurationError(f"{what} does not load: {exc.reason or exc}") from exc


class TlsScopeProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol plus the ASGI ``tls`` extension in each request's scope.

    The handshake is over when the connection is made, so the session is read once per
    connection: ``client_cert_chain`` holds the peer's (already verified) certificate as PEM,
    ``client_cert_name`` its subject (RFC 4514), ``tls_version`` the protocol version number.
    """

    _tls: dict[object, object] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport.get_extra_info("ssl_object"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}


_TLS_VERSIONS: Final = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[object, object] | None:
    """The ASGI TLS extension's members for one session (None when it is not TLS)."""
    if ssl_object is None:
        return None
    peer = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(peer)] if peer else [],
        "client_cert_name": (
            x509.load_der_x509_certificate(peer).subject.rfc4514_string() if peer else None
        ),
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(str(ssl_object.version())),
        "cipher_suite": None,
    }


def build_server(
    app: ASGIApp,
    *,
    ssl_context: ssl.SSLContext | None = None,
    lifespan: Literal["on", "off"] = "on",
    log_level: str = "warning",
    graceful_shutdown_s: float = GRACEFUL_SHUTDOWN_S,
) -> uvicorn.Server:
    """A uvicorn server for ``app``: HTTPS (and mutual TLS) when given an SSL context; then
    each request's scope carries the ASGI ``tls`` extension."""
    return uvicorn.Server(
        _config(
            app,
            ssl_context_factory=_fixed_ssl_context(ssl_context) if ssl_context else None,
            lifespan=lifespan,
            log_level=log_level,
            graceful_shutdown_s=graceful_shutdown_s,
        )
    )


def _config(
    app: ASGIApp | Callable[[], ASGIApp],
    *,
    ssl_context_factory: _SslContextFactory | None,
    lifespan: Literal["on", "off"] = "on",
    log_level: str = "warning",
    graceful_shutdown_s: float = GRACEFUL_SHUTDOWN_S,
    workers: int = 1,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=workers > 1,
        workers=workers,
        http=TlsScopeProtocol if ssl_context_factory else "auto",
        log_level=log_level,
        log_config=None,
        access_log=False,
        server_header=False,
        ws="none",
        lifespan=lifespan,
        timeout_graceful_shutdown=int(graceful_shutdown_s),
        ssl_context_factory=ssl_context_factory,
        # A worker that does not answer the supervisor's ping in time is killed and replaced;
        # a spawned worker answers only once it has imported the app, which on a loaded
        # machine takes longer than uvicorn's default of 5 s.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


def _fixed_ssl_context(context: ssl.SSLContext) -> _SslContextFactory:
    """Uvicorn's TLS hook, answering with a context the caller built (its files already
    loaded, so a bad certificate fails before serving)."""

    def factory(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    return factory


#: The cyclic collector's thresholds in a serving process: a young-generation pass after
#: 10,000 net allocations of tracked objects (Python's default is 700), then the default
#: ratios for the older generations. A request allocates and frees most of its objects by
#: reference counting, so passes stay rare and each scans only what is alive at that moment.
GC_THRESHOLDS: Final = (10_000, 10, 10)


def settle_heap() -> None:
    """Collect what start-up left over, then freeze the rest out of the collector's sight.

    Frozen objects (modules, classes, the app, the runtime and its caches as built) are never
    scanned again, so a full collection costs what the requests left alive, not the whole
    interpreter; they are still freed by reference counting when they go. Call it once the
    app is built, before serving.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve_in_foreground(
    server: Server,
    host: str,
    port: int,
    *,
    tls: bool = False,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; ``on_listening`` gets the base URL once the port is bound.

    The process's heap is settled first (:func:`settle_heap`): this process is the server."""
    with bind_socket(host, port) as sock:
        if on_listening is not None:
            on_listening(socket_url(sock, tls=tls))
        settle_heap()
        server.run(sockets=[sock])


def serve_workers(
    app_factory: Callable[[], ASGIApp],
    host: str,
    port: int,
    *,
    workers: int,
    ssl_context_factory: _SslContextFactory | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve with ``workers`` processes sharing one listening socket, until SIGINT/SIGTERM.

    Uvicorn's supervisor spawns each worker as a fresh interpreter, so ``app_factory`` and
    ``ssl_context_factory`` must pickle and build what they need there (the factory is called
    once per worker); it replaces a worker that dies, and on a signal stops every worker,
    each finishing its open requests. A worker that cannot start stops them all: this then
    raises :class:`~pavilion.errors.ServerStartFailed` (the worker logged why).
    """
    if workers < 2:
        raise ConfigurationError("serve_workers needs at least 2 workers; serve one in-process")
    config = _config(app_factory, ssl_context_factory=ssl_context_factory, workers=workers)
    with bind_socket(host, port) as sock:
        if on_listening is not None:
            on_listening(socket_url(sock, tls=ssl_context_factory is not None))
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
    failed = [p.pid for p in supervisor.processes if p.exitcode == STARTUP_FAILURE]
    if failed:
        raise ServerStartFailed(
            f"worker process {failed[0]} could not start (its log says why); all stopped",
            extra={"host": host, "port": port},
        )


class BackgroundServer:
    """A uvicorn server on its own thread and event loop, bound before it starts.

    ``BackgroundServer(app)`` serves an app on a free loopback port;
    :meth:`around` runs a server that is already built (the DP agent's).
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        lifespan: Literal["on", "off"] = "on",
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> None:
        server = build_server(app, ssl_context=ssl_context, lifespan=lifespan)
        self._setup(server, bind_socket(host, port), ssl_context is not None, startup_timeout_s)

    @classmethod
    def around(
        cls,
        server: Server,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = False,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> BackgroundServer:
        self = cls.__new__(cls)
        self._setup(server, bind_socket(host, port), tls, startup_timeout_s)
        return self

    def _setup(
        self, server: Server, sock: socket.socket, tls: bool, startup_timeout_s: float
    ) -> None:
        self._server = server
        self._socket = sock
        self._startup_timeout_s = startup_timeout_s
        self.host, self.port = sock.getsockname()[:2]
        self.url = socket_url(sock, tls=tls)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="pavilion-server", daemon=True
        )

    def start(self) -> BackgroundServer:
        """Start serving; returns once uvicorn accepts requests, or raises ServerStartFailed."""
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise ServerStartFailed(f"the server on {self.url} stopped during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartFailed(
                    f"the server on {self.url} did not start within {self._startup_timeout_s} s"
                )
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit, wait for open requests (bounded), and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=GRACEFUL_SHUTDOWN_S + self._startup_timeout_s)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
