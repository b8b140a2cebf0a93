"""IETF Token Status List (draft-ietf-oauth-status-list): encode and decode, no I/O.

Sections are named after the draft's headings (their numbers move between revisions):

* "Status List": one status of 1, 2, 4 or 8 bits per Referenced Token in a byte array;
  the status at index ``i`` sits in byte ``i * bits // 8`` at bit offset ``(i * bits) % 8``,
  bits counted from the least significant ("0") to the most significant ("7"). The array
  is compressed with DEFLATE in the ZLIB format (RFC 1950/1951), "RECOMMENDED to use the
  highest compression level available".
* "Status List in JSON Format": ``{"bits": N, "lst": base64url(zlib bytes)}`` with an
  optional ``aggregation_uri``; base64url is unpadded (RFC 7515 §2).
* "Status List Token in JWT Format": header ``typ`` ``statuslist+jwt``; claims ``sub`` (the
  list URI), ``iat``, optional ``exp`` and ``ttl`` (seconds, positive), ``status_list``.
* "Referenced Token in JOSE": ``{"status": {"status_list": {"idx": i, "uri": uri}}}``.
* "Status Types": 0x00 VALID, 0x01 INVALID, 0x02 SUSPENDED, 0x03 application specific.
"""

from __future__ import annotations

import binascii
import re
import zlib
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from pavilion.credentials.status.allocation import StatusListError
from pavilion.jose import b64url, b64url_decode

#: Allowed ``bits`` per status ("Status List", step 1).
ALLOWED_BITS = (1, 2, 4, 8)
#: JWT ``typ`` of a Status List Token ("Status List Token in JWT Format").
STATUS_LIST_JWT_TYP = "statuslist+jwt"
#: Upper bound on a decompressed list: 16 MiB is 16 million 8-bit statuses (zip-bomb guard).
DEFAULT_MAX_LIST_BYTES = 16 * 1024 * 1024
#: ZLIB level used for ``lst``: the highest, as the draft recommends.
ZLIB_LEVEL = 9

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


class TokenStatus(IntEnum):
    """Status Type values defined by the draft ("Status Types Values")."""

    VALID = 0x00
    INVALID = 0x01
    SUSPENDED = 0x02
    APPLICATION_SPECIFIC = 0x03


def _check_int(value: object, field: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StatusListError(f"{field} must be an integer >= {minimum}", field=field)
    return value


def _check_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in ALLOWED_BITS:
        raise StatusListError("bits must be 1, 2, 4 or 8", field="bits")
    return bits


def _check_uri(uri: object, field: str) -> str:
    """An absolute URI (RFC 3986 §4.3: a scheme, ``:``, then the rest), without whitespace."""
    if not isinstance(uri, str) or not _ABSOLUTE_URI.fullmatch(uri):
        raise StatusListError(f"{field} must be an absolute URI", field=field)
    return uri


def _b64url_decode(text: object, field: str) -> bytes:
    """Strict unpadded base64url: no padding, no whitespace, nothing outside the alphabet."""
    if not isinstance(text, str) or not _BASE64URL.fullmatch(text):
        raise StatusListError(f"{field} must be unpadded base64url", field=field)
    try:
        return b64url_decode(text)
    except binascii.Error as exc:
        raise StatusListError(f"{field} is not valid base64url: {exc}", field=field) from exc


def _inflate(data: bytes, *, wbits: int, max_bytes: int, field: str) -> bytes:
    """Decompress exactly one complete stream of at most ``max_bytes``, with nothing after it."""
    inflater = zlib.decompressobj(wbits=wbits)
    try:
        out = inflater.decompress(data, max_bytes)
    except zlib.error as exc:
        raise StatusListError(f"{field} does not decompress: {exc}", field=field) from exc
    if inflater.unconsumed_tail:
        raise StatusListError(f"{field} decompresses to more than {max_bytes} bytes", field=field)
    if not inflater.eof:
        raise StatusListError(f"{field} is a truncated compressed stream", field=field)
    if inflater.unused_data:
        raise StatusListError(f"{field} has data after the compressed stream", field=field)
    if not out:
        raise StatusListError(f"{field} holds an empty status list", field=field)
    return out


class TokenStatusList:
    """A mutable Token Status List of ``size`` statuses of ``bits`` bits each, all VALID at first.

    ``get`` and ``set`` are O(1) on the underlying ``bytearray``.
    """

    __slots__ = ("_bits", "_data", "_size")

    def __init__(self, size: int, bits: int = 1) -> None:
        self._bits = _check_bits(bits)
        self._size = _check_int(size, "size", minimum=1)
        self._data = bytearray(-(-size * self._bits // 8))

    @classmethod
    def from_bytes(cls, data: bytes, bits: int) -> TokenStatusList:
        """A list over an uncompressed byte array; its size is every slot the array holds."""
        if not data:
            raise StatusListError("the status list byte array is empty", field="lst")
        status_list = cls(len(data) * 8 // _check_bits(bits), bits)
        status_list._data = bytearray(data)
        return status_list

    @property
    def size(self) -> int:
        """Number of statuses (indices ``0 .. size - 1``)."""
        return self._size

    @property
    def bits(self) -> int:
        return self._bits

    def __len__(self) -> int:
        return self._size

    def _check_index(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self._size:
            raise StatusListError(f"index must be an integer in [0, {self._size})", field="index")

    def get(self, index: int) -> int:
        """The status at ``index`` ("Status List", step 2: LSB-first within each byte)."""
        self._check_index(index)
        position = index * self._bits
        return (self._data[position >> 3] >> (position & 7)) & ((1 << self._bits) - 1)

    def set(self, index: int, status: int) -> None:
        """Set the status at ``index``; ``status`` must fit in ``bits`` bits."""
        self._check_index(index)
        mask = (1 << self._bits) - 1
        if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= mask:
            raise StatusListError(
                f"status must be an integer in [0, {mask}] for a {self._bits}-bit list",
                field="status",
            )
        position = index * self._bits
        byte, shift = position >> 3, position & 7
        self._data[byte] = (self._data[byte] & ~(mask << shift)) | (status << shift)

    def to_bytes(self) -> bytes:
        """The uncompressed byte array (for storage; unused trailing slots are zero)."""
        return bytes(self._data)

    def encode(self, *, aggregation_uri: str | None = None) -> dict[str, Any]:
        """The JSON Status List ``{"bits", "lst"[, "aggregation_uri"]}`` ("Status List in JSON
        Format"), ``lst`` being ZLIB at the highest level, unpadded base64url."""
        encoded: dict[str, Any] = {
            "bits": self._bits,
            "lst": b64url(zlib.compress(self._data, ZLIB_LEVEL)),
        }
        if aggregation_uri is not None:
            encoded["aggregation_uri"] = _check_uri(aggregation_uri, "aggregation_uri")
        return encoded

    @classmethod
    def decode(
        cls, status_list: Mapping[str, Any], *, max_bytes: int = DEFAULT_MAX_LIST_BYTES
    ) -> TokenStatusList:
        """Parse a JSON Status List; its size is ``len(bytes) * 8 // bits``.

        Rejects a wrong ``bits``, a ``lst`` that is not strict unpadded base64url of one
        complete ZLIB stream, a list over ``max_bytes`` uncompressed, and a non-string
        ``aggregation_uri``.
        """
        _check_int(max_bytes, "max_bytes", minimum=1)
        if not isinstance(status_list, Mapping):
            raise StatusListError("status_list must be a JSON object", field="status_list")
        bits = _check_bits(status_list.get("bits"))
        if "aggregation_uri" in status_list:
            _check_uri(status_list["aggregation_uri"], "aggregation_uri")
        compressed = _b64url_decode(status_list.get("lst"), "lst")
        return cls.from_bytes(
            _inflate(compressed, wbits=zlib.MAX_WBITS, max_bytes=max_bytes, field="lst"), bits
        )

    def to_jwt_claims(
        self,
        sub: str,
        iat: int,
        exp: int | None = None,
        ttl_seconds: int | None = None,
        *,
        aggregation_uri: str | None = None,
    ) -> dict[str, Any]:
        """The Status List Token payload ("Status List Token in JWT Format").

        ``sub`` is the URI of this list (equal to ``uri`` in the Referenced Tokens); ``iat``
        and ``exp`` are NumericDates; ``exp`` and ``ttl`` are OPTIONAL and left out when
        ``None``; ``ttl`` MUST be positive.
        """
        claims: dict[str, Any] = {
            "sub": _check_uri(sub, "sub"),
            "iat": _check_int(iat, "iat", minimum=0),
        }
        if exp is not None:
            if _check_int(exp, "exp", minimum=0) <= iat:
                raise StatusListError("exp must be later than iat", field="exp")
            claims["exp"] = exp
        if ttl_seconds is not None:
            claims["ttl"] = _check_int(ttl_seconds, "ttl", minimum=1)
        claims["status_list"] = self.encode(aggregation_uri=aggregation_uri)
        return claims


def status_list_jwt_header(alg: str, kid: str) -> dict[str, str]:
    """Protected header of a Status List Token: ``alg``, ``kid`` and ``typ: statuslist+jwt``."""
    if not isinstance(alg, str) or not alg or alg.lower() == "none":
        raise StatusListError("alg must name a signature algorithm", field="alg")
    if not isinstance(kid, str) or not kid:
        raise StatusListError("kid must be a non-empty string", field="kid")
    return {"alg": alg, "kid": kid, "typ": STATUS_LIST_JWT_TYP}


def referenced_token_status_claim(idx: int, uri: str) -> dict[str, Any]:
    """The ``status`` claim of a Referenced Token ("Referenced Token in JOSE")."""
    return {
        "status": {
            "status_list": {
                "idx": _check_int(idx, "idx", minimum=0),
                "uri": _check_uri(uri, "uri"),
            }
        }
    }
