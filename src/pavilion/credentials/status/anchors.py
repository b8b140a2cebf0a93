"""Which trust anchor covers a foreign status list URL: origins and whole path segments (pure).

A trust anchor is a URL prefix (``status_trust_anchors``: prefix -> JWKS URL). Comparing the
strings with ``startswith`` let ``https://issuer.example`` (no trailing slash) cover
``https://issuer.example.evil/...`` and ``https://issuer.example/lists`` cover
``https://issuer.example/lists-of-someone-else/...``. Here a URL is covered when

* its origin equals the anchor's: scheme and host (both case-insensitive, a trailing dot on
  the host ignored) and port (the scheme's default when absent);
* its path segments begin with the anchor's (a trailing slash on the anchor changes nothing);
* it carries no user information (``https://issuer.example@evil.example/`` names another
  host, and a list URL has no reason to carry credentials) and no dot segment or encoded
  slash that a server might resolve to a path outside the anchor (``/lists/../admin``).

The most specific anchor (the most path segments) wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class Anchor:
    """A parsed trust anchor: the origin and the path segments it covers."""

    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]

    def covers(self, other: Anchor) -> bool:
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port) and (
            other.segments[: len(self.segments)] == self.segments
        )


def parse(url: str) -> Anchor | None:
    """``url`` as an origin and path segments, or None when it cannot be compared safely."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unparsable host or port
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host or _has_userinfo(parts):
        return None
    segments = tuple(segment for segment in parts.path.split("/") if segment)
    for segment in segments:
        decoded = unquote(segment)
        if decoded in {".", ".."} or "/" in decoded or "\\" in decoded:
            return None
    return Anchor(scheme, host, port or _DEFAULT_PORTS[scheme], segments)


def _has_userinfo(parts: SplitResult) -> bool:
    return parts.username is not None or parts.password is not None


class TrustAnchors:
    """Anchors parsed once: prefix -> value (a JWKS URL), looked up by :meth:`find`."""

    def __init__(self, anchors: Mapping[str, str]) -> None:
        parsed: list[tuple[Anchor, str]] = []
        for prefix, value in anchors.items():
            anchor = parse(prefix)
            split = urlsplit(prefix)
            if anchor is None or split.query or split.fragment:
                raise ValueError(
                    f"trust anchor {prefix!r} must be an http(s) URL with a host and a path, "
                    "without user information, query, fragment or dot segments"
                )
            parsed.append((anchor, value))
        # The most specific first: the first anchor that covers a URL is the one that wins.
        self._anchors = sorted(parsed, key=lambda item: -len(item[0].segments))

    def find(self, url: str) -> str | None:
        """The value of the most specific anchor that covers ``url``, or None."""
        target = parse(url)
        if target is None:
            return None
        return next((value for anchor, value in self._anchors if anchor.covers(target)), None)
