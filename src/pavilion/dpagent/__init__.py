"""The DP agent: the process a data provider runs beside its records to answer the connector.

See docs/DP_AGENT.md for its REST API.
"""

from pavilion.dpagent.app import PUBLIC_PATHS, create_agent_app
from pavilion.dpagent.config import AgentConfig, FaultConfig
from pavilion.dpagent.records import (
    IDENTIFIER_KINDS,
    IdentifierKind,
    RecordIndex,
    RecordLoadError,
    load_records,
)
from pavilion.dpagent.runner import (
    bind_socket,
    build_agent_server,
    run_agent,
    running_agent,
    socket_url,
)

__all__ = [
    "IDENTIFIER_KINDS",
    "PUBLIC_PATHS",
    "AgentConfig",
    "FaultConfig",
    "IdentifierKind",
    "RecordIndex",
    "RecordLoadError",
    "bind_socket",
    "build_agent_server",
    "create_agent_app",
    "load_records",
    "run_agent",
    "running_agent",
    "socket_url",
]
