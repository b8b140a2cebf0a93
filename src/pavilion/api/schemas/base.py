"""The base of every response model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ResponseModel(BaseModel):
    """A response body. A member the model does not name is an error rather than silently
    dropped, so a result that drifts from the contract fails its tests instead of losing
    data; models of open documents say so with ``extra="allow"``."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)
