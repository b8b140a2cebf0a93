"""The values of status lists: configuration, reservations, changes, published lists, list ids.

A list id is 32 hex digits of the tenant followed by 32 random hex digits, so a public status
URL names its tenant (and the row-level security scope) without a lookup.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from pavilion.credentials.status.bitstring import MIN_ENTRIES, status_list_entry
from pavilion.credentials.status.states import Action, ListKind
from pavilion.errors import InvalidRequest, NotFound

TOKEN_MEDIA_TYPE = "application/statuslist+jwt"  # noqa: S105 - a media type
BITSTRING_MEDIA_TYPE = "application/vc+jwt"
VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
PATHS: dict[str, str] = {"token": "/status/v1/token/", "bitstring": "/status/v1/bitstring/"}


@dataclass(frozen=True)
class StatusListConfig:
    """How lists are shaped, published and cached."""

    base_url: str
    issuer: str
    token_bits: int = 2
    token_size: int = MIN_ENTRIES
    bitstring_size: int = MIN_ENTRIES
    #: How long a verifier may cache a list (the token's ``ttl``, the bitstring's ``ttl``).
    ttl_seconds: int = 300
    #: ``exp - iat`` of a signed list (``validUntil - validFrom`` for a bitstring).
    lifetime_seconds: int = 86_400
    #: Indices reserved per transaction and handed out from memory: ``reserve_batch`` at
    #: first, doubling up to ``reserve_batch_max`` while batches are handed out within a
    #: second; the next batch is reserved while one is still held. A process that stops leaves
    #: at most twice ``reserve_batch_max`` reserved, unused indices per list: decoys, never
    #: reissued.
    reserve_batch: int = 32
    reserve_batch_max: int = 256
    #: How long a verifier on this connector reads its own lists from memory (seconds; 0:
    #: from the database every time). A change through this worker applies at once.
    cache_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.token_bits not in (1, 2, 4, 8):
            raise InvalidRequest("token_bits must be 1, 2, 4 or 8", field="status_list_bits")
        if self.token_size < 1:
            raise InvalidRequest("token_size must be positive", field="status_list_size")
        if self.cache_seconds < 0:
            raise InvalidRequest("cache_seconds must not be negative", field="cache_seconds")
        if self.reserve_batch < 1:
            raise InvalidRequest("reserve_batch must be positive", field="reserve_batch")
        if self.reserve_batch_max < self.reserve_batch:
            raise InvalidRequest(
                "reserve_batch_max must be at least reserve_batch", field="reserve_batch_max"
            )
        if self.bitstring_size < MIN_ENTRIES:
            raise InvalidRequest(
                f"a bitstring list holds at least {MIN_ENTRIES} entries", field="status_list_size"
            )


@dataclass(frozen=True)
class ReservedList:
    """One list of a reservation's group: its id, purpose and public URI."""

    list_id: str
    purpose: str
    uri: str


@dataclass(frozen=True)
class StatusReservation:
    """An index reserved for a credential about to be signed."""

    tenant_id: str
    kind: ListKind
    group_id: str
    idx: int
    entry_id: str
    lists: tuple[ReservedList, ...]

    def token_status(self) -> dict[str, Any]:
        """The value of a JOSE Referenced Token's ``status`` claim (IETF Token Status List)."""
        if self.kind != "token":
            raise InvalidRequest("a bitstring reservation has no token status claim", field="kind")
        return {"status_list": {"idx": self.idx, "uri": self.lists[0].uri}}

    def credential_status(self) -> list[dict[str, Any]]:
        """The ``credentialStatus`` entries of a VC 2.0 credential (W3C Bitstring Status List)."""
        if self.kind != "bitstring":
            raise InvalidRequest("a token reservation has no credentialStatus", field="kind")
        return [status_list_entry(item.uri, self.idx, item.purpose) for item in self.lists]


@dataclass(frozen=True)
class StatusChange:
    """What a status change did: the states before and after, and its audit leaf."""

    credential_id: str
    action: Action
    previous: str
    state: str
    changed: bool
    audit_index: int | None


class PublishedEntry(TypedDict):
    """Where one list publishes a credential: the list's URI, purpose and the index in it."""

    uri: str
    kind: str
    purpose: str
    idx: int
    value: int


class CredentialStatus(TypedDict):
    """A credential's state and every list entry that publishes it."""

    credential_id: str
    state: str
    lists: list[PublishedEntry]


@dataclass(frozen=True)
class PublishedList:
    """A signed list, ready to serve."""

    list_id: str
    kind: ListKind
    token: str
    media_type: str
    etag: str
    version: int
    expires_at: datetime
    max_age: int


def new_list_id(tenant_id: str) -> str:
    """32 hex digits of the tenant, 32 random hex digits."""
    return tenant_id.replace("-", "") + secrets.token_hex(16)


def tenant_of_list(list_id: str) -> str:
    """The tenant a list id encodes; :class:`NotFound` for anything that is not one."""
    if len(list_id) != 64 or any(c not in "0123456789abcdef" for c in list_id):
        raise NotFound(f"status list {list_id!r} does not exist")
    raw = list_id[:32]
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def list_uri(base: str, kind: str, list_id: str) -> str:
    """The public URI of a list under the connector's base URL (no trailing slash)."""
    return f"{base}{PATHS[kind]}{list_id}"


#: The verifier-side callable's type (``StatusListService.resolve_status`` is one).
StatusLookup = Callable[[str, int], Awaitable[int]]
