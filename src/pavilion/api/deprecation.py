"""Deprecated aliases of renamed routes: the old path keeps working for one release, marked
``deprecated`` in OpenAPI, and its responses name the successor (RFC 9745 ``Deprecation``,
RFC 8288 ``Link`` with ``rel="successor-version"``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Depends, Request, Response

#: When the renamed paths were deprecated (the release that renamed them).
DEPRECATED_SINCE: Final = datetime(2026, 12, 7, tzinfo=UTC)


def deprecation_headers(successor: str) -> dict[str, str]:
    """The headers of a deprecated path's response; ``successor`` is the new path."""
    return {
        "deprecation": f"@{int(DEPRECATED_SINCE.timestamp())}",
        "link": f'<{successor}>; rel="successor-version"',
    }


def _mark(successor: str) -> Callable[[Request, Response], None]:
    def mark(request: Request, response: Response) -> None:
        path = successor.format(**request.path_params)
        response.headers.update(deprecation_headers(path))

    return mark


def add_alias(
    router: APIRouter,
    old_path: str,
    new_path: str,
    endpoint: Callable[..., Any],
    *,
    methods: list[str],
    **route: Any,
) -> None:
    """Serve ``endpoint`` at ``old_path`` too, deprecated in favour of ``new_path`` (both
    relative to the router's prefix); ``route`` holds the new route's other settings."""
    route.pop("summary", None)
    router.add_api_route(
        old_path,
        endpoint,
        methods=methods,
        deprecated=True,
        summary=f"Deprecated alias of {methods[0]} {router.prefix}{new_path}",
        dependencies=[Depends(_mark(router.prefix + new_path))],
        **route,
    )
