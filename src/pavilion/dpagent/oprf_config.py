"""Settings of the agent's private set membership endpoints (off unless configured)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class OprfConfig(BaseModel):
    """Where the agent keeps its OPRF and tag-set signing keys, and how much it evaluates.

    ``rate_per_second`` and ``burst`` bound evaluated elements per connector tenant: each one
    is a guess a tenant can test against the roster, so they are the guessing budget.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_dir: Path
    rate_per_second: float = Field(default=20.0, gt=0, le=1_000_000)
    burst: int = Field(default=2_000, ge=1, le=10_000_000)
    max_batch: int = Field(default=10_000, ge=1, le=65_535)
