"""W3C Bitstring Status List v1.0 (Recommendation, 15 May 2025): encode and decode, no I/O.

* §2.1 ``BitstringStatusListEntry``: the ``credentialStatus`` of an issued credential.
* §2.2 ``BitstringStatusListCredential``: its subject carries ``encodedList``, the
  multibase base64url (``u`` prefix, no padding) of the GZIP (RFC 1952) bitstring, which
  "MUST be at least 16KB"; index 0 is the left-most (most significant) bit of the first
  byte. ``ttl`` is in milliseconds.
* §3.2 Validate: a list whose length divided by ``statusSize`` is under 131,072 entries
  raises ``STATUS_LIST_LENGTH_ERROR``; §3.3/§3.4 generation and expansion.

Conforming processors "MAY choose to only support bitstring entry sizes of 1" (§1.3); this
one supports ``statusSize`` 1 to 8, enough for the 256 ``statusMessage`` entries that size
8 already demands.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pavilion.credentials.status.allocation import StatusListError
from pavilion.credentials.status.token_status_list import (
    DEFAULT_MAX_LIST_BYTES,
    _b64url_decode,
    _check_int,
    _check_uri,
    _inflate,
)
from pavilion.jose import b64url

#: §3.2 step 2: the minimum number of entries of a list (16 KB of 1-bit entries).
MIN_ENTRIES = 131_072
#: Largest ``statusSize`` supported here (see the module docstring).
MAX_STATUS_SIZE = 8
#: Multibase prefix of base64url without padding.
MULTIBASE_BASE64URL_PREFIX = "u"
#: GZIP level of ``encodedList`` (the spec fixes none; the highest gives the smallest list).
GZIP_LEVEL = 9

_HEX_STATUS = re.compile(r"0x[0-9a-fA-F]+")


class StatusPurpose(StrEnum):
    """The ``statusPurpose`` values this service issues (§2.1, §2.2)."""

    REVOCATION = "revocation"
    SUSPENSION = "suspension"
    REFRESH = "refresh"
    MESSAGE = "message"


def _check_status_size(status_size: object) -> int:
    if (
        isinstance(status_size, bool)
        or not isinstance(status_size, int)
        or not 1 <= status_size <= MAX_STATUS_SIZE
    ):
        raise StatusListError(
            f"statusSize must be an integer in [1, {MAX_STATUS_SIZE}]", field="statusSize"
        )
    return status_size


class BitstringStatusList:
    """A mutable bitstring of ``size`` entries of ``status_size`` bits, all zero at first.

    ``size`` is raised to :data:`MIN_ENTRIES` (the list is padded, §2.2). Entries are packed
    MSB-first: entry ``i`` covers bits ``i * status_size`` onwards, bit 0 being the left-most
    bit of the first byte (§7.1). ``get`` and ``set`` are O(1) on the ``bytearray``.
    """

    __slots__ = ("_data", "_size", "_status_size")

    def __init__(self, size: int = MIN_ENTRIES, status_size: int = 1) -> None:
        self._status_size = _check_status_size(status_size)
        self._size = max(_check_int(size, "size", minimum=1), MIN_ENTRIES)
        self._data = bytearray(-(-self._size * self._status_size // 8))

    @classmethod
    def from_bytes(cls, data: bytes, status_size: int = 1) -> BitstringStatusList:
        """A list over an uncompressed bitstring, as long as the bytes allow (no padding)."""
        status_size = _check_status_size(status_size)
        if not data:
            raise StatusListError("the bitstring holds no entry", field="encodedList")
        status_list = cls.__new__(cls)
        status_list._status_size = status_size
        status_list._size = len(data) * 8 // status_size
        status_list._data = bytearray(data)
        return status_list

    @property
    def size(self) -> int:
        """Number of entries (indices ``0 .. size - 1``)."""
        return self._size

    @property
    def status_size(self) -> int:
        return self._status_size

    def __len__(self) -> int:
        return self._size

    def _span(self, index: int) -> tuple[int, int, int]:
        """Bytes ``[first, end)`` holding entry ``index`` and the entry's right shift in them."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self._size:
            raise StatusListError(
                f"index must be an integer in [0, {self._size})", field="statusListIndex"
            )
        start = index * self._status_size
        stop = start + self._status_size
        end = (stop + 7) >> 3
        return start >> 3, end, (end << 3) - stop

    def get(self, index: int) -> int:
        """The status at ``index`` (its bits read left to right, most significant first)."""
        first, end, shift = self._span(index)
        chunk = int.from_bytes(self._data[first:end], "big")
        return (chunk >> shift) & ((1 << self._status_size) - 1)

    def set(self, index: int, status: int) -> None:
        """Set the status at ``index``; ``status`` must fit in ``status_size`` bits."""
        first, end, shift = self._span(index)
        mask = (1 << self._status_size) - 1
        if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= mask:
            raise StatusListError(
                f"status must be an integer in [0, {mask}] for statusSize {self._status_size}",
                field="status",
            )
        chunk = int.from_bytes(self._data[first:end], "big")
        chunk = (chunk & ~(mask << shift)) | (status << shift)
        self._data[first:end] = chunk.to_bytes(end - first, "big")

    def to_bytes(self) -> bytes:
        """The uncompressed bitstring (for storage)."""
        return bytes(self._data)

    def encode_list(self) -> str:
        """``encodedList`` (§3.3): ``u`` + base64url(GZIP(bitstring)), GZIP ``mtime`` 0 so the
        same list always encodes to the same string."""
        compressed = gzip.compress(self._data, compresslevel=GZIP_LEVEL, mtime=0)
        return MULTIBASE_BASE64URL_PREFIX + b64url(compressed)

    @classmethod
    def decode_list(
        cls,
        encoded_list: str,
        status_size: int = 1,
        *,
        min_entries: int = MIN_ENTRIES,
        max_bytes: int = DEFAULT_MAX_LIST_BYTES,
    ) -> BitstringStatusList:
        """Expand an ``encodedList`` (§3.4) and check its length (§3.2).

        Rejects a missing ``u`` multibase prefix, anything but strict unpadded base64url of
        one complete GZIP member, more than ``max_bytes`` uncompressed, and fewer than
        ``min_entries`` entries (``STATUS_LIST_LENGTH_ERROR``; an ecosystem may set a lower
        bound, §3.2 step 2).
        """
        status_size = _check_status_size(status_size)
        _check_int(min_entries, "min_entries", minimum=1)
        _check_int(max_bytes, "max_bytes", minimum=1)
        if not isinstance(encoded_list, str) or not encoded_list.startswith(
            MULTIBASE_BASE64URL_PREFIX
        ):
            raise StatusListError(
                "encodedList must be multibase base64url without padding ('u' prefix)",
                field="encodedList",
            )
        compressed = _b64url_decode(encoded_list[1:], "encodedList")
        data = _inflate(
            compressed, wbits=16 + zlib.MAX_WBITS, max_bytes=max_bytes, field="encodedList"
        )
        entries = len(data) * 8 // status_size
        if entries < min_entries:
            raise StatusListError(
                f"STATUS_LIST_LENGTH_ERROR: encodedList has {entries} entries of "
                f"{status_size} bit(s), fewer than the minimum {min_entries}",
                field="encodedList",
            )
        return cls.from_bytes(data, status_size)


def _check_purpose(status_purpose: StatusPurpose | str) -> StatusPurpose:
    try:
        return StatusPurpose(status_purpose)
    except ValueError:
        allowed = ", ".join(purpose.value for purpose in StatusPurpose)
        raise StatusListError(
            f"statusPurpose must be one of {allowed}", field="statusPurpose"
        ) from None


def _check_messages(
    messages: Sequence[Mapping[str, str]], status_size: int
) -> list[dict[str, str]]:
    """``statusMessage(s)``: one ``{"status": "0x..", "message": ..}`` per possible value."""
    count = 1 << status_size
    seen: set[int] = set()
    checked: list[dict[str, str]] = []
    for item in messages:
        status, message = item.get("status"), item.get("message")
        if (
            not isinstance(status, str)
            or not _HEX_STATUS.fullmatch(status)
            or not isinstance(message, str)
        ):
            raise StatusListError(
                'each status message needs "status" ("0x" hex) and "message" strings',
                field="statusMessage",
            )
        seen.add(int(status, 16))
        checked.append(dict(item))
    if len(checked) != count or seen != set(range(count)):
        raise StatusListError(
            f"statusMessage must give exactly one message for each of the {count} values",
            field="statusMessage",
        )
    return checked


def status_list_credential_subject(
    status_list: BitstringStatusList,
    *,
    subject_id: str,
    status_purpose: StatusPurpose | str,
    ttl_ms: int | None = None,
    status_messages: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """``credentialSubject`` of a ``BitstringStatusListCredential`` (§2.2).

    ``{"id", "type": "BitstringStatusList", "statusPurpose", "encodedList"[, "ttl"]}``;
    ``ttl`` is in milliseconds. The ``message`` purpose also carries ``statusSize`` and
    ``statusMessages``, which it requires and only it accepts.
    """
    purpose = _check_purpose(status_purpose)
    subject: dict[str, Any] = {
        "id": _check_uri(subject_id, "id"),
        "type": "BitstringStatusList",
        "statusPurpose": purpose.value,
        "encodedList": status_list.encode_list(),
    }
    if ttl_ms is not None:
        subject["ttl"] = _check_int(ttl_ms, "ttl", minimum=1)
    if purpose is StatusPurpose.MESSAGE:
        if status_messages is None:
            raise StatusListError(
                "the message purpose needs statusMessages", field="statusMessages"
            )
        subject["statusSize"] = status_list.status_size
        subject["statusMessages"] = _check_messages(status_messages, status_list.status_size)
    elif status_messages is not None:
        raise StatusListError(
            "statusMessages only go with the message purpose", field="statusMessages"
        )
    return subject


def status_list_entry(
    list_url: str,
    index: int,
    status_purpose: StatusPurpose | str,
    *,
    status_size: int = 1,
    status_messages: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """A credential's ``credentialStatus`` entry, type ``BitstringStatusListEntry`` (§2.1).

    ``id`` is ``{list_url}#{index}``; ``statusListIndex`` is the index in base 10 as a
    string. ``statusSize`` is written only when above 1, and then ``statusMessage`` (one
    per possible value) is required.
    """
    url = _check_uri(list_url, "statusListCredential")
    if "#" in url:
        raise StatusListError(
            "statusListCredential must not carry a fragment", field="statusListCredential"
        )
    position = _check_int(index, "statusListIndex", minimum=0)
    size = _check_status_size(status_size)
    entry: dict[str, Any] = {
        "id": f"{url}#{position}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": _check_purpose(status_purpose).value,
        "statusListIndex": str(position),
        "statusListCredential": url,
    }
    if size > 1:
        entry["statusSize"] = size
        if status_messages is None:
            raise StatusListError("statusSize above 1 needs statusMessage", field="statusMessage")
    if status_messages is not None:
        entry["statusMessage"] = _check_messages(status_messages, size)
    return entry
