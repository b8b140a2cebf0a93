"""Serve the agent: in the foreground for the CLI, from a thread for demos and tests.

Both go through :mod:`pavilion.serving`, the one server runner, so the agent binds its socket
before uvicorn starts (port 0 works, the URL is known before the first request), serves IPv6
and TLS, and reports every failure to start as ``ServerStartFailed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn

from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.dpagent.security import agent_ssl_context
from pavilion.serving import GRACEFUL_SHUTDOWN_S, BackgroundServer, build_server
from pavilion.serving import serve_in_foreground as _serve_in_foreground

__all__ = ["GRACEFUL_SHUTDOWN_S", "build_agent_server", "run_agent", "running_agent"]


def build_agent_server(
    config: AgentConfig, records: RecordIndex, *, log_level: str = "warning"
) -> uvicorn.Server:
    """A uvicorn server for the agent (HTTPS / mutual TLS when its security says so)."""
    return build_server(
        create_agent_app(config, records),
        ssl_context=agent_ssl_context(config.security),
        lifespan="off",
        log_level=log_level,
    )


def run_agent(
    config: AgentConfig,
    records: RecordIndex,
    host: str = "127.0.0.1",
    port: int = 8700,
    *,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; ``on_listening`` gets the base URL once the port is bound."""
    _serve_in_foreground(
        build_agent_server(config, records),
        host,
        port,
        tls=_serves_tls(config),
        on_listening=on_listening,
    )


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
    server = BackgroundServer.around(
        build_agent_server(config, records),
        host,
        port,
        tls=_serves_tls(config),
        startup_timeout_s=startup_timeout_s,
    )
    with server:
        yield server.url


def _serves_tls(config: AgentConfig) -> bool:
    return config.security is not None and config.security.tls is not None
