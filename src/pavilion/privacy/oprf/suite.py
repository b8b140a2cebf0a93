"""The ristretto255-SHA512 ciphersuite of RFC 9497 and what every protocol variant shares.

Constants and modes (§3.1, §4.1), the errors of §5.3, the wire values, expand_message_xmd
(RFC 9380 §5.3.1), the mode-bound hashes of :class:`Suite` (HashToGroup, HashToScalar, the
composite weights and challenge of the DLEQ proof, the POPRF tweak), element and scalar
deserialization, and key pairs (§3.2). The group is ristretto255 on libsodium
(:mod:`pavilion.privacy.ristretto`). Pure and synchronous.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from pavilion.errors import CryptoError, VerificationFailed
from pavilion.privacy import ristretto as r255
from pavilion.privacy.ristretto import IDENTITY

IDENTIFIER: Final = b"ristretto255-SHA512"
ELEMENT_BYTES: Final = r255.ELEMENT_BYTES  # Ne
SCALAR_BYTES: Final = r255.SCALAR_BYTES  # Ns
OUTPUT_BYTES: Final = 64  # Nh
PROOF_BYTES: Final = 2 * SCALAR_BYTES
SEED_BYTES: Final = SCALAR_BYTES
MAX_INPUT_BYTES: Final = 0xFFFF  # §5.1: input and info are length-prefixed with I2OSP(.., 2)
MAX_BATCH: Final = 0xFFFF  # §2.2.1: composite index i is encoded with I2OSP(i, 2)

ZERO_SCALAR: Final = bytes(SCALAR_BYTES)
_SHA512_BLOCK: Final = 128  # s_in_bytes of SHA-512 (RFC 9380 §5.3.1)
_SHA512_DIGEST: Final = 64  # b_in_bytes of SHA-512
_XMD_Z_PAD: Final = hashlib.sha512(bytes(_SHA512_BLOCK))  # state after Z_pad, copied per call


class Mode(IntEnum):
    """Protocol variants and their identifiers (§3.1)."""

    OPRF = 0x00
    VOPRF = 0x01
    POPRF = 0x02


class OPRFError(CryptoError):
    """Root of the RFC 9497 errors (§5.3)."""


class DeserializeError(OPRFError):
    """An element or scalar failed to deserialize (§4.1): wrong length, non-canonical, identity."""


class InvalidInput(OPRFError):
    """An input maps to the identity, the POPRF tweaked key is the identity, or a value is
    out of range (InvalidInputError, §3.3.1, §3.3.3)."""


class InverseError(InvalidInput):
    """The POPRF tweaked private key ``skS + m`` is zero and has no inverse (§3.3.3)."""


class DeriveKeyPairError(OPRFError):
    """DeriveKeyPair found no non-zero scalar in 256 attempts (§3.2.1)."""


class VerifyError(OPRFError, VerificationFailed):
    """A VOPRF or POPRF proof failed to verify (§2.2.2)."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A server key pair: ``sk`` serialized scalar, ``pk = sk * G`` serialized element."""

    sk: bytes = field(repr=False)
    pk: bytes


@dataclass(frozen=True, slots=True)
class Blinded:
    """The output of Blind (§3.3.1): the secret blind the client keeps, the element it sends."""

    blind: bytes = field(repr=False)
    blinded_element: bytes


@dataclass(frozen=True, slots=True)
class POPRFBlinded(Blinded):
    """The output of POPRF Blind (§3.3.3), with the tweaked key the client verifies against."""

    tweaked_key: bytes


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A verifiable BlindEvaluate result: the evaluated element and its proof (§3.3.2)."""

    evaluated_element: bytes
    proof: bytes


@dataclass(frozen=True, slots=True)
class BatchEvaluation:
    """Evaluated elements of a batch with one proof over all of them (§2.2.1 batching)."""

    evaluated_elements: tuple[bytes, ...]
    proof: bytes


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """expand_message_xmd with SHA-512 (RFC 9380 §5.3.1)."""
    ell = -(-len_in_bytes // _SHA512_DIGEST)
    if not 0 < len_in_bytes <= 0xFFFF or ell > 255:
        raise InvalidInput(f"len_in_bytes {len_in_bytes} is out of range for expand_message_xmd")
    if len(dst) > 255:
        raise InvalidInput("a DST longer than 255 bytes is not supported")
    dst_prime = dst + bytes((len(dst),))
    h = _XMD_Z_PAD.copy()
    h.update(msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime)
    b_0 = h.digest()
    b_i = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    blocks = [b_i]
    x_0 = int.from_bytes(b_0, "big")
    for i in range(2, ell + 1):
        mixed = (x_0 ^ int.from_bytes(b_i, "big")).to_bytes(_SHA512_DIGEST, "big")
        b_i = hashlib.sha512(mixed + bytes((i,)) + dst_prime).digest()
        blocks.append(b_i)
    return b"".join(blocks)[:len_in_bytes]


def context_string(mode: Mode) -> bytes:
    """``"OPRFV1-" || I2OSP(mode, 1) || "-" || identifier`` (§3.1)."""
    return b"OPRFV1-" + bytes((mode,)) + b"-" + IDENTIFIER


def i2osp2(n: int) -> bytes:
    return n.to_bytes(2, "big")


def lp(data: bytes) -> bytes:
    """``I2OSP(len(data), 2) || data``."""
    return i2osp2(len(data)) + data


def check_length(value: bytes, what: str) -> None:
    if len(value) > MAX_INPUT_BYTES:
        raise InvalidInput(f"{what} is longer than {MAX_INPUT_BYTES} bytes")


def is_zero(s: bytes) -> bool:
    return hmac.compare_digest(s, ZERO_SCALAR)


@dataclass(frozen=True, slots=True)
class Suite:
    """The mode-bound functions of ristretto255-SHA512 (§4.1)."""

    mode: Mode
    group_dst: bytes
    scalar_dst: bytes
    seed_dst: bytes
    derive_dst: bytes

    @classmethod
    def of(cls, mode: Mode) -> Suite:
        context = context_string(mode)
        return cls(
            mode=mode,
            group_dst=b"HashToGroup-" + context,
            scalar_dst=b"HashToScalar-" + context,
            seed_dst=b"Seed-" + context,
            derive_dst=b"DeriveKeyPair" + context,
        )

    def hash_to_group(self, msg: bytes) -> bytes:
        """HashToGroup: hash_to_ristretto255 (RFC 9380 App. B) with the suite DST; the
        identity is an InvalidInputError (§3.3.1)."""
        element = r255.from_hash(expand_message_xmd(msg, self.group_dst, r255.HASH_BYTES))
        if hmac.compare_digest(element, IDENTITY):
            raise InvalidInput("input maps to the identity element")
        return element

    def group_hashes(self, msgs: Iterable[bytes]) -> Iterator[bytes]:
        """The uniform bytes HashToGroup maps, ``expand_message_xmd(msg, group_dst, 64)``, of
        every message, with the DST's framing built once (one SHA-512 block of output: ell 1)."""
        dst_prime = self.group_dst + bytes((len(self.group_dst),))
        framing = r255.HASH_BYTES.to_bytes(2, "big") + b"\x00" + dst_prime
        second = b"\x01" + dst_prime
        sha512 = hashlib.sha512
        for msg in msgs:
            h = _XMD_Z_PAD.copy()
            h.update(msg)
            h.update(framing)
            yield sha512(h.digest() + second).digest()

    def hash_to_scalar(self, msg: bytes, dst: bytes | None = None) -> bytes:
        """HashToScalar: 64 uniform bytes, little-endian, reduced modulo L (§4.1)."""
        uniform = expand_message_xmd(msg, self.scalar_dst if dst is None else dst, 64)
        return r255.scalar_reduce(uniform)

    def composite_weights(self, b: bytes, cs: Sequence[bytes], ds: Sequence[bytes]) -> list[bytes]:
        """The per-element weights ``d_i`` of ComputeComposites (§2.2.1)."""
        seed = hashlib.sha512(lp(b) + lp(self.seed_dst)).digest()
        prefix = lp(seed)
        return [
            self.hash_to_scalar(prefix + i2osp2(i) + lp(c) + lp(d) + b"Composite")
            for i, (c, d) in enumerate(zip(cs, ds, strict=True))
        ]

    def challenge(self, b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
        """The Fiat-Shamir challenge of GenerateProof and VerifyProof (§2.2.1, §2.2.2)."""
        return self.hash_to_scalar(lp(b) + lp(m) + lp(z) + lp(t2) + lp(t3) + b"Challenge")

    def tweak(self, info: bytes) -> bytes:
        """``m = HashToScalar("Info" || I2OSP(len(info), 2) || info)`` (§3.3.3)."""
        check_length(info, "info")
        return self.hash_to_scalar(b"Info" + lp(info))


SUITES: Final = {mode: Suite.of(mode) for mode in Mode}


def deserialize_element(data: bytes) -> bytes:
    """DeserializeElement (§4.1): a canonical ristretto255 encoding that is not the identity."""
    data = bytes(data)
    if (
        len(data) != ELEMENT_BYTES
        or not r255.is_valid_point(data)
        or hmac.compare_digest(data, IDENTITY)
    ):
        raise DeserializeError("not a valid non-identity ristretto255 element")
    return data


def deserialize_scalar(data: bytes) -> bytes:
    """DeserializeScalar (§4.1): 32 bytes little-endian, in [0, L - 1] (constant time)."""
    data = bytes(data)
    if len(data) != SCALAR_BYTES or not hmac.compare_digest(
        r255.scalar_reduce(data + ZERO_SCALAR), data
    ):
        raise DeserializeError("not a canonical ristretto255 scalar")
    return data


def nonzero_scalar(data: bytes, what: str) -> bytes:
    scalar = deserialize_scalar(data)
    if is_zero(scalar):
        raise InvalidInput(f"{what} is zero")
    return scalar


def generate_key_pair() -> KeyPair:
    """A random key pair (§3.2): ``sk`` from libsodium's CSPRNG, never zero."""
    sk = r255.scalar_random()
    return KeyPair(sk, r255.scalarmult_base(sk))


def derive_key_pair(seed: bytes, info: bytes, mode: Mode) -> KeyPair:
    """DeriveKeyPair (§3.2.1): deterministic key pair from a 32-byte seed and public info."""
    if len(seed) != SEED_BYTES:
        raise InvalidInput(f"seed must be {SEED_BYTES} bytes")
    check_length(info, "info")
    suite = SUITES[mode]
    derive_input = bytes(seed) + lp(bytes(info))
    for counter in range(256):
        sk = suite.hash_to_scalar(derive_input + bytes((counter,)), suite.derive_dst)
        if not is_zero(sk):
            return KeyPair(sk, r255.scalarmult_base(sk))
    raise DeriveKeyPairError("no valid key in 256 attempts")
