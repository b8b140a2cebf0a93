"""Cursor pagination: ``?limit=&after=`` in, ``{"items": [...], "next": cursor|null}`` out.

Each paged resource names its page (``class TenantPage(Page[TenantOut])``), so the OpenAPI
document calls it ``TenantPage`` rather than pydantic's ``Page_TenantOut_``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import Field

from pavilion.api.schemas.base import ResponseModel

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
After = Annotated[str | None, Query(max_length=100, description="Cursor from 'next'.")]


class Page(ResponseModel, Generic[T]):
    items: list[T]
    next: str | None = Field(description="The cursor of the next page; null at the end.")


def next_cursor(items: list[T], limit: int, cursor_of: Callable[[T], str]) -> str | None:
    """The cursor after a page: set only when the page is full (there may be more)."""
    return cursor_of(items[-1]) if len(items) == limit else None
