"""Errors of the connection layer, as subclasses of the one tree in :mod:`pavilion.errors`.

ProviderUnavailable
├── ResidencyPreventedFailover  every allowed region failed; residency forbids the rest 503
└── TokenEndpointUnavailable    auth.py: the DP's token endpoint is down, no token cached 503
"""

from __future__ import annotations

from pavilion.errors import ProviderUnavailable


class ResidencyPreventedFailover(ProviderUnavailable):
    """Every allowed region failed; others are up, but the subject's residency forbids them.

    A 503 like any unavailable provider (the request may succeed later, when an allowed region
    recovers); its ``type`` and ``reason`` tell that residency, not capacity, stopped failover.
    """

    code = "residency-prevented-failover"
    title = "Residency prevented failover"
