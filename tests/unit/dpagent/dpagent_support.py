"""Constants shared by the DP agent's unit tests (conftest modules are not importable)."""

from __future__ import annotations

from datetime import UTC, datetime

DP_KEY = "dp-agent-unit-test-key-0123456789"
AS_OF = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
