"""The ctypes binding to libsodium's ristretto255 functions (RFC 9496)."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from pavilion.errors import CryptoError
from pavilion.privacy import ristretto as r255

L = 2**252 + 27742317777372353535851937790883648493  # the ristretto255 group order

# RFC 9496 Appendix A.1: encodings of small multiples of the generator.
GENERATOR = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
TWICE_GENERATOR = bytes.fromhex("6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919")

# RFC 9496 Appendix A.2: invalid encodings (non-canonical, negative).
BAD_ENCODINGS = [
    bytes.fromhex("00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    bytes.fromhex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def _scalar(n: int) -> bytes:
    return (n % L).to_bytes(32, "little")


def _int(s: bytes) -> int:
    return int.from_bytes(s, "little")


def test_generator_multiples() -> None:
    assert r255.scalarmult_base(_scalar(1)) == GENERATOR
    assert r255.scalarmult_base(_scalar(2)) == TWICE_GENERATOR
    assert r255.scalarmult(_scalar(2), GENERATOR) == TWICE_GENERATOR
    assert r255.add(GENERATOR, GENERATOR) == TWICE_GENERATOR
    assert r255.add(r255.IDENTITY, GENERATOR) == GENERATOR


def test_validity() -> None:
    assert r255.is_valid_point(GENERATOR)
    assert r255.is_valid_point(r255.IDENTITY)  # callers reject the identity themselves
    for bad in BAD_ENCODINGS:
        assert not r255.is_valid_point(bad)
        with pytest.raises(r255.RistrettoError):
            r255.scalarmult(_scalar(3), bad)
        with pytest.raises(r255.RistrettoError):
            r255.add(GENERATOR, bad)


def test_identity_results_raise() -> None:
    with pytest.raises(r255.RistrettoError):
        r255.scalarmult(_scalar(5), r255.IDENTITY)
    with pytest.raises(r255.RistrettoError):
        r255.scalarmult(_scalar(0), GENERATOR)
    with pytest.raises(r255.RistrettoError):
        r255.scalarmult_base(_scalar(0))
    with pytest.raises(r255.RistrettoError):
        r255.scalar_invert(_scalar(0))


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (r255.is_valid_point, (bytes(31),)),
        (r255.from_hash, (bytes(32),)),
        (r255.add, (bytes(32), bytes(33))),
        (r255.add, (bytes(31), bytes(32))),
        (r255.scalarmult, (bytes(31), GENERATOR)),
        (r255.scalarmult, (_scalar(1), bytes(64))),
        (r255.scalarmult_base, (bytes(64),)),
        (r255.scalar_invert, (bytes(16),)),
        (r255.scalar_add, (bytes(32), bytes(31))),
        (r255.scalar_add, (bytes(33), bytes(32))),
        (r255.scalar_sub, (bytes(32), bytes(31))),
        (r255.scalar_sub, (bytes(31), bytes(32))),
        (r255.scalar_mul, (bytes(32), b"")),
        (r255.scalar_mul, (b"", bytes(32))),
        (r255.scalar_reduce, (bytes(32),)),
    ],
)
def test_lengths_are_checked_before_calling_c(call: object, args: tuple[bytes, ...]) -> None:
    assert callable(call)
    with pytest.raises(r255.RistrettoError, match="must be"):
        call(*args)


def test_scalarmult_hashed_is_scalarmult_of_from_hash() -> None:
    n = _scalar(123456789)
    hashes = [bytes([i]) * 64 for i in range(1, 6)]
    expected = [r255.scalarmult(n, r255.from_hash(h)) for h in hashes]
    assert r255.scalarmult_hashed(n, hashes) == expected
    assert r255.scalarmult_hashed(n, iter(hashes)) == expected
    with pytest.raises(r255.RistrettoError, match="identity"):
        r255.scalarmult_hashed(n, [hashes[0], bytes(64)])  # all-zero bytes map to the identity
    with pytest.raises(r255.RistrettoError, match="must be"):
        r255.scalarmult_hashed(n, [bytes(63)])
    with pytest.raises(r255.RistrettoError, match="must be"):
        r255.scalarmult_hashed(bytes(31), hashes)


def test_scalar_arithmetic_matches_integers() -> None:
    x, y = r255.scalar_random(), r255.scalar_random()
    assert x != y
    assert 0 < _int(x) < L
    assert _int(r255.scalar_add(x, y)) == (_int(x) + _int(y)) % L
    assert _int(r255.scalar_sub(x, y)) == (_int(x) - _int(y)) % L
    assert _int(r255.scalar_mul(x, y)) == (_int(x) * _int(y)) % L
    assert _int(r255.scalar_invert(x)) == pow(_int(x), -1, L)
    wide = bytes(range(64))
    assert _int(r255.scalar_reduce(wide)) == int.from_bytes(wide, "little") % L


def test_from_hash_is_deterministic_and_valid() -> None:
    element = r255.from_hash(bytes(range(64)))
    assert element == r255.from_hash(bytes(range(64)))
    assert r255.is_valid_point(element)
    assert element != r255.IDENTITY


def test_errors_are_crypto_errors() -> None:
    assert issubclass(r255.RistrettoError, CryptoError)


class _FailingInit:
    """Stands in for a libsodium whose ``sodium_init`` fails."""

    def __init__(self, _name: str) -> None:
        self.sodium_init = self._init

    @staticmethod
    def _init() -> int:
        return -1


def test_failed_initialisation_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes, "CDLL", _FailingInit)
    with pytest.raises(CryptoError, match="initialise"):
        r255._load()


def test_a_missing_libsodium_is_named_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda _name: None)
    with pytest.raises(CryptoError, match="libsodium is not installed"):
        r255._load()
