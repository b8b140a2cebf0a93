"""The DP agent: the process a data provider runs beside its records to answer the connector.

See docs/DP_AGENT.md for its REST API. Errors the agent adds to the tree of
:mod:`pavilion.errors`, where they live (the agent answers them as problem+json itself):

    PavilionError
    ├── RecordLoadError         records.py: a records file the agent cannot serve from
    ├── InjectedFault           faults.py: the 500 answer of an ``error_rate`` fault
    ├── UnknownOprfKey          oprf_keys.py: an evaluation named a key the agent lacks
    ├── OprfRateLimited         oprf_routes.py: too many evaluations for one tenant       429
    └── TagSetPushFailed        tag_set_push.py: the connector refused a tag set push
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
from pavilion.dpagent.runner import build_agent_server, run_agent, running_agent

__all__ = [
    "IDENTIFIER_KINDS",
    "PUBLIC_PATHS",
    "AgentConfig",
    "FaultConfig",
    "IdentifierKind",
    "RecordIndex",
    "RecordLoadError",
    "build_agent_server",
    "create_agent_app",
    "load_records",
    "run_agent",
    "running_agent",
]
