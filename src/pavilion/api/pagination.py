"""Cursor pagination: ``?limit=&after=`` in, ``{"items": [...], "next": cursor|null}`` out."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
After = Annotated[str | None, Query(max_length=100, description="Cursor from 'next'.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None


def page_of(items: list[Any], limit: int, cursor_of: Any) -> dict[str, Any]:
    """One page; ``next`` is set only when the page is full (there may be more)."""
    return {"items": items, "next": cursor_of(items[-1]) if len(items) == limit else None}
