"""Deprecated aliases of renamed routes: the old path keeps working for one release, marked
``deprecated`` in OpenAPI, and its responses name the successor (RFC 9745 ``Deprecation``,
RFC 8288 ``Link`` with ``rel="successor-version"``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, TypedDict, Unpack
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response

#: When the renamed paths were deprecated (the release that renamed them).
DEPRECATED_SINCE: Final = datetime(2026, 12, 7, tzinfo=UTC)


class RouteOptions(TypedDict, total=False):
    """Route settings that a route and its deprecated alias share."""

    status_code: int
    summary: str
    response_model: Any
    response_model_exclude_unset: bool
    responses: dict[int | str, dict[str, Any]]
    openapi_extra: dict[str, Any]


def deprecation_headers(successor: str) -> dict[str, str]:
    """The headers of a deprecated path's response; ``successor`` is the new path."""
    return {
        "deprecation": f"@{int(DEPRECATED_SINCE.timestamp())}",
        "link": f'<{successor}>; rel="successor-version"',
    }


def _mark(successor: str) -> Callable[[Request, Response], Awaitable[None]]:
    async def mark(request: Request, response: Response) -> None:  # async: no thread hop
        # Path parameters percent-encoded: a header is Latin-1, a path parameter any text.
        path = successor.format(
            **{k: quote(str(v), safe="") for k, v in request.path_params.items()}
        )
        response.headers.update(deprecation_headers(path))

    return mark


def add_alias(
    router: APIRouter,
    old_path: str,
    new_path: str,
    endpoint: Callable[..., Any],
    *,
    methods: list[str],
    **route: Unpack[RouteOptions],
) -> None:
    """Serve ``endpoint`` at ``old_path`` too, deprecated in favour of ``new_path`` (both
    relative to the router's prefix); ``route`` holds the new route's other settings."""
    settings = route | RouteOptions(
        summary=f"Deprecated alias of {methods[0]} {router.prefix}{new_path}"
    )
    router.add_api_route(
        old_path,
        endpoint,
        methods=methods,
        deprecated=True,
        dependencies=[Depends(_mark(router.prefix + new_path))],
        **settings,
    )
