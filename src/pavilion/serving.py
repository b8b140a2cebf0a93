"""Serve an ASGI app with uvicorn: in the foreground (the CLI) or from a thread (demo, tests).

The one way the connector and the DP agent run a server. The socket is bound before uvicorn
starts, so a caller may ask for port 0, learn the port the kernel chose and hand out the URL
before the first request can arrive; IPv6 hosts and TLS work the same way. Every failure to
start (the address cannot be bound, the server dies or hangs during start-up) is one
:class:`~pavilion.errors.ServerStartFailed`.

Uvicorn keeps no logging configuration of its own (``log_config=None``), so its records reach
whatever redacting pipeline the process set up; access logs are off.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Literal, Protocol

import uvicorn
from starlette.types import ASGIApp

from pavilion.errors import ServerStartFailed

#: Seconds to wait for open requests on shutdown before cancelling them.
GRACEFUL_SHUTDOWN_S: Final = 5
#: Seconds a background server may take to start before it counts as hung.
STARTUP_TIMEOUT_S: Final = 15.0


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


def build_server(
    app: ASGIApp,
    *,
    ssl_context: ssl.SSLContext | None = None,
    lifespan: Literal["on", "off"] = "on",
    log_level: str = "warning",
    graceful_shutdown_s: float = GRACEFUL_SHUTDOWN_S,
) -> uvicorn.Server:
    """A uvicorn server for ``app``: HTTPS (and mutual TLS) when given an SSL context."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            log_config=None,
            access_log=False,
            server_header=False,
            ws="none",
            lifespan=lifespan,
            timeout_graceful_shutdown=int(graceful_shutdown_s),
            ssl_context_factory=_fixed_ssl_context(ssl_context) if ssl_context else None,
        )
    )


def _fixed_ssl_context(context: ssl.SSLContext) -> _SslContextFactory:
    """Uvicorn's TLS hook, answering with a context the caller built (its files already
    loaded, so a bad certificate fails before serving)."""

    def factory(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    return factory


def serve_in_foreground(
    server: Server,
    host: str,
    port: int,
    *,
    tls: bool = False,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; ``on_listening`` gets the base URL once the port is bound."""
    with bind_socket(host, port) as sock:
        if on_listening is not None:
            on_listening(socket_url(sock, tls=tls))
        server.run(sockets=[sock])


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
