"""Serve the agent with uvicorn: in the foreground for the CLI, in a thread for demos and tests.

Binding the socket before uvicorn starts lets a caller ask for port 0, learn the port the
kernel chose, and hand out the URL before the first request can arrive.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import uvicorn

from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.dpagent.security import uvicorn_tls_options

#: Seconds to wait for open requests on shutdown before cancelling them.
GRACEFUL_SHUTDOWN_S: Final = 5


def build_agent_server(
    config: AgentConfig, records: RecordIndex, *, log_level: str = "warning"
) -> uvicorn.Server:
    """A uvicorn server for the agent.

    Access logs are off (noise), and uvicorn keeps no logging config of its own, so its
    records reach whatever redacting pipeline the process set up.
    """
    app = create_agent_app(config, records)
    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            log_config=None,
            access_log=False,
            server_header=False,
            ws="none",
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            **uvicorn_tls_options(config.security),  # HTTPS / mutual TLS when configured
        )
    )


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket; port 0 lets the kernel pick a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def socket_url(sock: socket.socket) -> str:
    """The base URL (``http://host:port``) a client uses to reach ``sock``."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_agent(
    config: AgentConfig,
    records: RecordIndex,
    host: str = "127.0.0.1",
    port: int = 8700,
    *,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; ``on_listening`` gets the base URL once the port is bound."""
    server = build_agent_server(config, records)
    with bind_socket(host, port) as sock:
        if on_listening is not None:
            on_listening(socket_url(sock))
        server.run(sockets=[sock])


@contextmanager
def running_agent(
    config: AgentConfig,
    records: RecordIndex,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout_s: float = 10.0,
) -> Iterator[str]:
    """Serve from a background thread for the ``with`` block; yields the base URL."""
    server = build_agent_server(config, records)
    with bind_socket(host, port) as sock:
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="pavilion-dp-agent", daemon=True
        )
        thread.start()
        try:
            _wait_until_started(server, thread, startup_timeout_s)
            yield socket_url(sock)
        finally:
            server.should_exit = True
            thread.join(timeout=GRACEFUL_SHUTDOWN_S + startup_timeout_s)


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the DP agent stopped during start-up; see its log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the DP agent did not start within {timeout_s} s")
        time.sleep(0.01)
