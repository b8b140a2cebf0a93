"""The base of every response model, and the page of a cursor-paged list."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

#: The largest value of a 32-bit integer column (row numbers, versions, audit indexes): the
#: bound of every integer a request sends that is stored or compared as one.
INT32_MAX = 2**31 - 1
#: The last second of year 9999 as Unix time: the bound of every timestamp a request sends.
UNIX_TIME_MAX = 253_402_300_799


class ResponseModel(BaseModel):
    """A response body. A member the model does not name is an error rather than silently
    dropped, so a result that drifts from the contract fails its tests instead of losing
    data; models of open documents say so with ``extra="allow"``."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class Page(ResponseModel, Generic[T]):
    """One page of a list. Each paged resource names its page (``class TenantPage(Page[
    TenantOut])``), so the OpenAPI document says ``TenantPage``, not ``Page_TenantOut_``."""

    items: list[T]
    next: str | None = Field(description="The cursor of the next page; null at the end.")
