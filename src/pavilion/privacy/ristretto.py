"""Thin typed binding to libsodium's ristretto255 group and scalar functions (RFC 9496).

ctypes straight to libsodium (>= 1.0.18, found by ``ctypes.util.find_library("sodium")``, so
any soname works), with every ``argtypes`` set: a call costs well under a microsecond, against
~50 us for one scalar multiplication. The library is loaded on the first call, not at import:
importing this module has no side effect, and the handle is the one the process's dynamic
loader holds anyway (loading it again returns the same library). Elements are
32-byte canonical ristretto255 encodings and scalars 32-byte little-endian integers modulo the
group order L. Every function checks its input lengths before calling C, so libsodium never
reads past a buffer, and turns libsodium's ``-1`` into :class:`RistrettoError`.

libsodium's scalar multiplications (``crypto_scalarmult_ristretto255`` and ``_base``) decode
and validate their point argument and return ``-1`` when the point is not a canonical encoding
*or* when the product is the identity; both surface here as :class:`RistrettoError`. ctypes
releases the GIL for the duration of each call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterable
from typing import Final

from pavilion.errors import CryptoError

ELEMENT_BYTES: Final = 32  # crypto_core_ristretto255_BYTES
SCALAR_BYTES: Final = 32  # crypto_core_ristretto255_SCALARBYTES
HASH_BYTES: Final = 64  # crypto_core_ristretto255_HASHBYTES
NONREDUCED_SCALAR_BYTES: Final = 64  # crypto_core_ristretto255_NONREDUCEDSCALARBYTES
IDENTITY: Final = bytes(ELEMENT_BYTES)  # the canonical encoding of the identity element

#: Debian names the package libsodium23 (1.0.18); other systems ship other sonames.
_INSTALL_HINT: Final = "install libsodium >= 1.0.18 (Debian: apt-get install libsodium23)"


class RistrettoError(CryptoError):
    """libsodium rejected an input (length, encoding, zero scalar) or produced the identity."""


_BUF = ctypes.c_char_p
_SIGNATURES: Final[dict[str, tuple[list[type[_BUF]], type[ctypes.c_int] | None]]] = {
    "crypto_core_ristretto255_is_valid_point": ([_BUF], ctypes.c_int),
    "crypto_core_ristretto255_from_hash": ([_BUF, _BUF], ctypes.c_int),
    "crypto_core_ristretto255_add": ([_BUF, _BUF, _BUF], ctypes.c_int),
    "crypto_scalarmult_ristretto255": ([_BUF, _BUF, _BUF], ctypes.c_int),
    "crypto_scalarmult_ristretto255_base": ([_BUF, _BUF], ctypes.c_int),
    "crypto_core_ristretto255_scalar_random": ([_BUF], None),
    "crypto_core_ristretto255_scalar_invert": ([_BUF, _BUF], ctypes.c_int),
    "crypto_core_ristretto255_scalar_add": ([_BUF, _BUF, _BUF], None),
    "crypto_core_ristretto255_scalar_sub": ([_BUF, _BUF, _BUF], None),
    "crypto_core_ristretto255_scalar_mul": ([_BUF, _BUF, _BUF], None),
    "crypto_core_ristretto255_scalar_reduce": ([_BUF, _BUF], None),
}


class _Sodium:
    """libsodium's ristretto255 functions, typed (argtypes and restype set once)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        for name, (argtypes, restype) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = restype
        self.is_valid_point = lib.crypto_core_ristretto255_is_valid_point
        self.from_hash = lib.crypto_core_ristretto255_from_hash
        self.add = lib.crypto_core_ristretto255_add
        self.scalarmult = lib.crypto_scalarmult_ristretto255
        self.scalarmult_base = lib.crypto_scalarmult_ristretto255_base
        self.scalar_random = lib.crypto_core_ristretto255_scalar_random
        self.scalar_invert = lib.crypto_core_ristretto255_scalar_invert
        self.scalar_add = lib.crypto_core_ristretto255_scalar_add
        self.scalar_sub = lib.crypto_core_ristretto255_scalar_sub
        self.scalar_mul = lib.crypto_core_ristretto255_scalar_mul
        self.scalar_reduce = lib.crypto_core_ristretto255_scalar_reduce


def _library_path() -> str:
    path = ctypes.util.find_library("sodium")
    if path is None:
        raise CryptoError(f"libsodium is not installed: {_INSTALL_HINT}")
    return path


def _load() -> _Sodium:
    lib = ctypes.CDLL(_library_path())
    lib.sodium_init.argtypes = []
    lib.sodium_init.restype = ctypes.c_int
    if lib.sodium_init() < 0:  # 0: initialised now, 1: already initialised
        raise CryptoError("libsodium failed to initialise")
    return _Sodium(lib)


@functools.cache
def _sodium() -> _Sodium:
    """The binding, loaded on first use (idempotent: the dynamic loader shares the library)."""
    return _load()


_new = ctypes.create_string_buffer


def _need(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise RistrettoError(f"{what} must be {size} bytes, got {len(value)}")


def is_valid_point(p: bytes) -> bool:
    """Whether ``p`` is a canonical encoding (RFC 9496 §4.3.1 Decode); true for the identity."""
    _need(p, ELEMENT_BYTES, "element")
    return bool(_sodium().is_valid_point(p) == 1)


def from_hash(h: bytes) -> bytes:
    """The element derived from 64 uniform bytes: the one-way map of RFC 9496 §4.3.4."""
    _need(h, HASH_BYTES, "hash")
    out = _new(ELEMENT_BYTES)
    _sodium().from_hash(out, h)
    return out.raw


def add(p: bytes, q: bytes) -> bytes:
    """``p + q``; either may be the identity."""
    _need(p, ELEMENT_BYTES, "element")
    _need(q, ELEMENT_BYTES, "element")
    out = _new(ELEMENT_BYTES)
    if _sodium().add(out, p, q) != 0:
        raise RistrettoError("invalid element encoding")
    return out.raw


def scalarmult(n: bytes, p: bytes) -> bytes:
    """``n * p``; raises if ``p`` is not a canonical encoding or the product is the identity."""
    _need(n, SCALAR_BYTES, "scalar")
    _need(p, ELEMENT_BYTES, "element")
    out = _new(ELEMENT_BYTES)
    if _sodium().scalarmult(out, n, p) != 0:
        raise RistrettoError("invalid element encoding or identity result")
    return out.raw


def scalarmult_hashed(n: bytes, hashes: Iterable[bytes]) -> list[bytes]:
    """``scalarmult(n, from_hash(h))`` of every 64-byte ``h``, through two buffers reused for
    the whole batch (no element leaves C between the two calls); raises if an element derived
    from a hash is the identity (the product is then the identity too)."""
    _need(n, SCALAR_BYTES, "scalar")
    lib = _sodium()
    from_hash_into, scalarmult_into = lib.from_hash, lib.scalarmult
    element, out = _new(ELEMENT_BYTES), _new(ELEMENT_BYTES)
    products = []
    for h in hashes:
        _need(h, HASH_BYTES, "hash")
        from_hash_into(element, h)
        if scalarmult_into(out, n, element) != 0:
            raise RistrettoError("the element derived from the hash is the identity")
        products.append(out.raw)
    return products


def scalarmult_base(n: bytes) -> bytes:
    """``n * G`` for the ristretto255 generator; raises if the product is the identity."""
    _need(n, SCALAR_BYTES, "scalar")
    out = _new(ELEMENT_BYTES)
    if _sodium().scalarmult_base(out, n) != 0:
        raise RistrettoError("identity result")
    return out.raw


def scalar_random() -> bytes:
    """A uniformly random non-zero scalar from libsodium's CSPRNG."""
    out = _new(SCALAR_BYTES)
    _sodium().scalar_random(out)
    return out.raw


def scalar_invert(s: bytes) -> bytes:
    """``s^-1 mod L``; raises for zero."""
    _need(s, SCALAR_BYTES, "scalar")
    out = _new(SCALAR_BYTES)
    if _sodium().scalar_invert(out, s) != 0:
        raise RistrettoError("zero scalar has no inverse")
    return out.raw


def scalar_add(x: bytes, y: bytes) -> bytes:
    """``x + y mod L``."""
    _need(x, SCALAR_BYTES, "scalar")
    _need(y, SCALAR_BYTES, "scalar")
    out = _new(SCALAR_BYTES)
    _sodium().scalar_add(out, x, y)
    return out.raw


def scalar_sub(x: bytes, y: bytes) -> bytes:
    """``x - y mod L``."""
    _need(x, SCALAR_BYTES, "scalar")
    _need(y, SCALAR_BYTES, "scalar")
    out = _new(SCALAR_BYTES)
    _sodium().scalar_sub(out, x, y)
    return out.raw


def scalar_mul(x: bytes, y: bytes) -> bytes:
    """``x * y mod L``."""
    _need(x, SCALAR_BYTES, "scalar")
    _need(y, SCALAR_BYTES, "scalar")
    out = _new(SCALAR_BYTES)
    _sodium().scalar_mul(out, x, y)
    return out.raw


def scalar_reduce(s: bytes) -> bytes:
    """A 64-byte little-endian integer reduced modulo L."""
    _need(s, NONREDUCED_SCALAR_BYTES, "non-reduced scalar")
    out = _new(SCALAR_BYTES)
    _sodium().scalar_reduce(out, s)
    return out.raw
