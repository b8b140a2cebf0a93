"""Cursor pagination: ``?limit=&after=`` in, ``{"items": [...], "next": cursor|null}`` out
(each paged resource names its page model in ``api/schemas``, e.g. ``TenantPage``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Query

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
After = Annotated[str | None, Query(max_length=100, description="Cursor from 'next'.")]


def next_cursor(items: list[T], limit: int, cursor_of: Callable[[T], str]) -> str | None:
    """The cursor after a page: set only when the page is full (there may be more)."""
    return cursor_of(items[-1]) if len(items) == limit else None
