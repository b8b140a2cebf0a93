"""RFC 9497 oblivious PRFs (OPRF, VOPRF, POPRF) for the ristretto255-SHA512 suite.

Section numbers below are those of RFC 9497 unless another RFC is named. The group is
ristretto255 on libsodium (:mod:`pavilion.privacy.ristretto`), the hash SHA-512 (§4.1).
Everything is pure and synchronous; libsodium releases the GIL during scalar multiplications.

Wire values are ``bytes``: elements are 32-byte ristretto255 encodings, scalars 32 bytes
little-endian, a proof is ``c || s`` (64 bytes) and an output is 64 bytes. Every element or
scalar that arrives from the other party is deserialized (validated) before use. On the server's
hot path the validation of a blinded element is fused into the scalar multiplication:
libsodium decodes the point (rejecting non-canonical encodings) and rejects an identity
product, which for a non-zero key happens exactly when the point is the identity.

The blind of :meth:`OPRFClient.blind` and the proof nonce ``r`` of the servers' ``blind_evaluate``
are drawn from libsodium's CSPRNG; both can be injected for known-answer tests only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Final

from pavilion.errors import CryptoError, VerificationFailed
from pavilion.privacy import ristretto as r255
from pavilion.privacy.ristretto import IDENTITY, RistrettoError

IDENTIFIER: Final = b"ristretto255-SHA512"
ELEMENT_BYTES: Final = r255.ELEMENT_BYTES  # Ne
SCALAR_BYTES: Final = r255.SCALAR_BYTES  # Ns
OUTPUT_BYTES: Final = 64  # Nh
PROOF_BYTES: Final = 2 * SCALAR_BYTES
SEED_BYTES: Final = SCALAR_BYTES
MAX_INPUT_BYTES: Final = 0xFFFF  # §5.1: input and info are length-prefixed with I2OSP(.., 2)
MAX_BATCH: Final = 0xFFFF  # §2.2.1: composite index i is encoded with I2OSP(i, 2)

_ZERO_SCALAR: Final = bytes(SCALAR_BYTES)
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


def _i2osp2(n: int) -> bytes:
    return n.to_bytes(2, "big")


def _lp(data: bytes) -> bytes:
    """``I2OSP(len(data), 2) || data``."""
    return _i2osp2(len(data)) + data


def _check_length(value: bytes, what: str) -> None:
    if len(value) > MAX_INPUT_BYTES:
        raise InvalidInput(f"{what} is longer than {MAX_INPUT_BYTES} bytes")


def _is_zero(s: bytes) -> bool:
    return hmac.compare_digest(s, _ZERO_SCALAR)


@dataclass(frozen=True, slots=True)
class _Suite:
    """The mode-bound functions of ristretto255-SHA512 (§4.1)."""

    mode: Mode
    group_dst: bytes
    scalar_dst: bytes
    seed_dst: bytes
    derive_dst: bytes

    @classmethod
    def of(cls, mode: Mode) -> _Suite:
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

    def hash_to_scalar(self, msg: bytes, dst: bytes | None = None) -> bytes:
        """HashToScalar: 64 uniform bytes, little-endian, reduced modulo L (§4.1)."""
        uniform = expand_message_xmd(msg, self.scalar_dst if dst is None else dst, 64)
        return r255.scalar_reduce(uniform)

    def composite_weights(self, b: bytes, cs: Sequence[bytes], ds: Sequence[bytes]) -> list[bytes]:
        """The per-element weights ``d_i`` of ComputeComposites (§2.2.1)."""
        seed = hashlib.sha512(_lp(b) + _lp(self.seed_dst)).digest()
        prefix = _lp(seed)
        return [
            self.hash_to_scalar(prefix + _i2osp2(i) + _lp(c) + _lp(d) + b"Composite")
            for i, (c, d) in enumerate(zip(cs, ds, strict=True))
        ]

    def challenge(self, b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
        """The Fiat-Shamir challenge of GenerateProof and VerifyProof (§2.2.1, §2.2.2)."""
        return self.hash_to_scalar(_lp(b) + _lp(m) + _lp(z) + _lp(t2) + _lp(t3) + b"Challenge")

    def tweak(self, info: bytes) -> bytes:
        """``m = HashToScalar("Info" || I2OSP(len(info), 2) || info)`` (§3.3.3)."""
        _check_length(info, "info")
        return self.hash_to_scalar(b"Info" + _lp(info))


_SUITES: Final = {mode: _Suite.of(mode) for mode in Mode}


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
        r255.scalar_reduce(data + _ZERO_SCALAR), data
    ):
        raise DeserializeError("not a canonical ristretto255 scalar")
    return data


def _nonzero_scalar(data: bytes, what: str) -> bytes:
    scalar = deserialize_scalar(data)
    if _is_zero(scalar):
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
    _check_length(info, "info")
    suite = _SUITES[mode]
    derive_input = bytes(seed) + _lp(bytes(info))
    for counter in range(256):
        sk = suite.hash_to_scalar(derive_input + bytes((counter,)), suite.derive_dst)
        if not _is_zero(sk):
            return KeyPair(sk, r255.scalarmult_base(sk))
    raise DeriveKeyPairError("no valid key in 256 attempts")


def _finalize_hash(input: bytes, element: bytes, info: bytes | None = None) -> bytes:
    """The Finalize/Evaluate output hash (§3.3.1, §3.3.3)."""
    framed_info = b"" if info is None else _lp(info)
    return hashlib.sha512(_lp(input) + framed_info + _lp(element) + b"Finalize").digest()


def _blind(suite: _Suite, input: bytes, blind: bytes | None) -> Blinded:
    """Blind (§3.3.1); ``blind`` overrides the random scalar for known-answer tests."""
    _check_length(input, "input")
    scalar = r255.scalar_random() if blind is None else _nonzero_scalar(blind, "blind")
    return Blinded(scalar, r255.scalarmult(scalar, suite.hash_to_group(bytes(input))))


def _unblind(blind: bytes, evaluated_element: bytes) -> bytes:
    """``SerializeElement(ScalarInverse(blind) * evaluatedElement)`` (§3.3.1)."""
    return r255.scalarmult(r255.scalar_invert(_nonzero_scalar(blind, "blind")), evaluated_element)


def _evaluate_blinded(k: bytes, blinded_element: bytes) -> bytes:
    """``k * DeserializeElement(blindedElement)``, the decode fused into libsodium's call."""
    try:
        return r255.scalarmult(k, blinded_element)
    except RistrettoError as exc:
        raise DeserializeError("not a valid non-identity ristretto255 element") from exc


def _check_batch(count: int) -> None:
    if not 0 < count <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} elements, got {count}")


def _linear_combination(weights: Sequence[bytes], elements: Sequence[bytes]) -> bytes:
    total = IDENTITY
    for weight, element in zip(weights, elements, strict=True):
        total = r255.add(total, r255.scalarmult(weight, element))
    return total


def _generate_proof(
    suite: _Suite,
    k: bytes,
    b: bytes,
    cs: Sequence[bytes],
    ds: Sequence[bytes],
    *,
    r: bytes | None,
) -> bytes:
    """GenerateProof(k, G, B, C, D) with ComputeCompositesFast (§2.2.1); ``r`` is for tests."""
    nonce = r255.scalar_random() if r is None else _nonzero_scalar(r, "proof nonce")
    m = _linear_combination(suite.composite_weights(b, cs, ds), cs)
    z = r255.scalarmult(k, m)
    t2 = r255.scalarmult_base(nonce)
    t3 = r255.scalarmult(nonce, m)
    c = suite.challenge(b, m, z, t2, t3)
    s = r255.scalar_sub(nonce, r255.scalar_mul(c, k))
    return c + s


def _verify_proof(
    suite: _Suite, b: bytes, cs: Sequence[bytes], ds: Sequence[bytes], proof: bytes
) -> None:
    """VerifyProof(G, B, C, D, proof) with ComputeComposites (§2.2.2); raises VerifyError."""
    if len(proof) != PROOF_BYTES:
        raise DeserializeError(f"a proof is {PROOF_BYTES} bytes")
    c = deserialize_scalar(proof[:SCALAR_BYTES])
    s = deserialize_scalar(proof[SCALAR_BYTES:])
    weights = suite.composite_weights(b, cs, ds)
    try:
        m = _linear_combination(weights, cs)
        z = _linear_combination(weights, ds)
        t2 = r255.add(r255.scalarmult_base(s), r255.scalarmult(c, b))
        t3 = r255.add(r255.scalarmult(s, m), r255.scalarmult(c, z))
    except RistrettoError as exc:  # a zero scalar or an identity term: not an honest proof
        raise VerifyError("proof verification failed") from exc
    if not hmac.compare_digest(suite.challenge(b, m, z, t2, t3), c):
        raise VerifyError("proof verification failed")


def _verified_outputs(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    info: bytes | None,
) -> list[bytes]:
    return [
        _finalize_hash(bytes(x), _unblind(blind, element), info)
        for x, blind, element in zip(inputs, blinds, evaluated_elements, strict=True)
    ]


def _client_batch(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    blinded_elements: Sequence[bytes],
) -> tuple[list[bytes], list[bytes]]:
    """Validate a batch the client finalizes: equal lengths, every element deserialized."""
    count = len(evaluated_elements)
    _check_batch(count)
    if not len(inputs) == len(blinds) == len(blinded_elements) == count:
        raise InvalidInput("inputs, blinds and elements differ in number")
    for x in inputs:
        _check_length(x, "input")
    return (
        [deserialize_element(e) for e in evaluated_elements],
        [deserialize_element(e) for e in blinded_elements],
    )


class OPRFClient:
    """OPRF (mode 0) client (§3.3.1)."""

    mode: ClassVar[Mode] = Mode.OPRF

    def blind(self, input: bytes, *, blind: bytes | None = None) -> Blinded:
        """Blind (§3.3.1); pass ``blind`` only for deterministic known-answer tests."""
        return _blind(_SUITES[self.mode], input, blind)

    def finalize(self, input: bytes, blind: bytes, evaluated_element: bytes) -> bytes:
        """Finalize (§3.3.1): the 64-byte PRF output."""
        _check_length(input, "input")
        return _finalize_hash(bytes(input), _unblind(blind, deserialize_element(evaluated_element)))


class _Server:
    """Key handling shared by the three servers: ``skS`` and ``pkS = skS * G`` (§3.2)."""

    mode: ClassVar[Mode]

    def __init__(self, sk: bytes, pk: bytes | None = None) -> None:
        """``sk`` is a serialized non-zero scalar; ``pk``, when given, must be ``sk * G``."""
        self._sk = _nonzero_scalar(sk, "private key")
        self.public_key = r255.scalarmult_base(self._sk)
        if pk is not None and not hmac.compare_digest(deserialize_element(pk), self.public_key):
            raise InvalidInput("public key does not match the private key")

    def _output(self, k: bytes, input: bytes, info: bytes | None = None) -> bytes:
        """Evaluate (§3.3.1, §3.3.3): hash ``k * HashToGroup(input)`` with input (and info)."""
        _check_length(input, "input")
        element = _SUITES[self.mode].hash_to_group(bytes(input))
        return _finalize_hash(bytes(input), r255.scalarmult(k, element), info)


class OPRFServer(_Server):
    """OPRF (mode 0) server holding ``skS`` (§3.3.1)."""

    mode: ClassVar[Mode] = Mode.OPRF

    def blind_evaluate(self, blinded_element: bytes) -> bytes:
        """BlindEvaluate (§3.3.1): ``skS * blindedElement``."""
        return _evaluate_blinded(self._sk, bytes(blinded_element))

    def evaluate(self, input: bytes) -> bytes:
        """Evaluate (§3.3.1): the PRF output computed directly from ``input``."""
        return self._output(self._sk, input)


class VOPRFClient:
    """VOPRF (mode 1) client bound to the server public key ``pkS`` (§3.3.2)."""

    mode: ClassVar[Mode] = Mode.VOPRF

    def __init__(self, pk: bytes) -> None:
        self.public_key = deserialize_element(pk)

    def blind(self, input: bytes, *, blind: bytes | None = None) -> Blinded:
        """Blind (§3.3.1); pass ``blind`` only for deterministic known-answer tests."""
        return _blind(_SUITES[self.mode], input, blind)

    def finalize(
        self,
        input: bytes,
        blind: bytes,
        evaluated_element: bytes,
        blinded_element: bytes,
        *,
        proof: bytes,
    ) -> bytes:
        """Finalize (§3.3.2): verify the proof, then unblind and hash."""
        return self.finalize_batch(
            [input], [blind], [evaluated_element], [blinded_element], proof=proof
        )[0]

    def finalize_batch(
        self,
        inputs: Sequence[bytes],
        blinds: Sequence[bytes],
        evaluated_elements: Sequence[bytes],
        blinded_elements: Sequence[bytes],
        *,
        proof: bytes,
    ) -> list[bytes]:
        """Finalize a batch evaluated under one proof (§2.2.2, §3.3.2)."""
        evaluated, blinded = _client_batch(inputs, blinds, evaluated_elements, blinded_elements)
        _verify_proof(_SUITES[self.mode], self.public_key, blinded, evaluated, proof)
        return _verified_outputs(inputs, blinds, evaluated, None)


class VOPRFServer(_Server):
    """VOPRF (mode 1) server holding ``skS`` and ``pkS = skS * G`` (§3.3.2)."""

    mode: ClassVar[Mode] = Mode.VOPRF

    def blind_evaluate(self, blinded_element: bytes, *, r: bytes | None = None) -> Evaluation:
        """BlindEvaluate (§3.3.2); pass ``r`` only for deterministic known-answer tests."""
        batch = self.blind_evaluate_batch([blinded_element], r=r)
        return Evaluation(batch.evaluated_elements[0], batch.proof)

    def blind_evaluate_batch(
        self, blinded_elements: Sequence[bytes], *, r: bytes | None = None
    ) -> BatchEvaluation:
        """BlindEvaluate over a batch with one proof (§2.2.1, §3.3.2)."""
        _check_batch(len(blinded_elements))
        blinded = [bytes(e) for e in blinded_elements]
        evaluated = [_evaluate_blinded(self._sk, e) for e in blinded]
        proof = _generate_proof(
            _SUITES[self.mode], self._sk, self.public_key, blinded, evaluated, r=r
        )
        return BatchEvaluation(tuple(evaluated), proof)

    def evaluate(self, input: bytes) -> bytes:
        """Evaluate (§3.3.2): the PRF output computed directly from ``input``."""
        return self._output(self._sk, input)


class POPRFClient:
    """POPRF (mode 2) client bound to the server public key ``pkS`` (§3.3.3)."""

    mode: ClassVar[Mode] = Mode.POPRF

    def __init__(self, pk: bytes) -> None:
        self.public_key = deserialize_element(pk)

    def blind(self, input: bytes, info: bytes, *, blind: bytes | None = None) -> POPRFBlinded:
        """Blind (§3.3.3): also the tweaked key ``m * G + pkS``; InvalidInput if it is the
        identity. Pass ``blind`` only for deterministic known-answer tests."""
        suite = _SUITES[self.mode]
        m = suite.tweak(bytes(info))
        try:
            t = r255.scalarmult_base(m)
        except RistrettoError:  # m == 0: T is the identity
            t = IDENTITY
        tweaked_key = r255.add(t, self.public_key)
        if hmac.compare_digest(tweaked_key, IDENTITY):
            raise InvalidInput("the tweaked key is the identity for this info")
        blinded = _blind(suite, input, blind)
        return POPRFBlinded(blinded.blind, blinded.blinded_element, tweaked_key)

    def finalize(
        self,
        input: bytes,
        blind: bytes,
        evaluated_element: bytes,
        blinded_element: bytes,
        *,
        proof: bytes,
        info: bytes,
        tweaked_key: bytes,
    ) -> bytes:
        """Finalize (§3.3.3): verify the proof against the tweaked key, unblind and hash."""
        return self.finalize_batch(
            [input],
            [blind],
            [evaluated_element],
            [blinded_element],
            proof=proof,
            info=info,
            tweaked_key=tweaked_key,
        )[0]

    def finalize_batch(
        self,
        inputs: Sequence[bytes],
        blinds: Sequence[bytes],
        evaluated_elements: Sequence[bytes],
        blinded_elements: Sequence[bytes],
        *,
        proof: bytes,
        info: bytes,
        tweaked_key: bytes,
    ) -> list[bytes]:
        """Finalize a batch evaluated under one proof and one info (§2.2.2, §3.3.3)."""
        _check_length(info, "info")
        evaluated, blinded = _client_batch(inputs, blinds, evaluated_elements, blinded_elements)
        key = deserialize_element(tweaked_key)
        _verify_proof(_SUITES[self.mode], key, evaluated, blinded, proof)
        return _verified_outputs(inputs, blinds, evaluated, bytes(info))


class POPRFServer(_Server):
    """POPRF (mode 2) server holding ``skS`` (§3.3.3)."""

    mode: ClassVar[Mode] = Mode.POPRF

    def _tweaked_key(self, info: bytes) -> bytes:
        """``t = skS + m``; InverseError if zero (§3.3.3)."""
        t = r255.scalar_add(self._sk, _SUITES[self.mode].tweak(bytes(info)))
        if _is_zero(t):
            raise InverseError("skS + m is zero for this info")
        return t

    def blind_evaluate(
        self, blinded_element: bytes, info: bytes, *, r: bytes | None = None
    ) -> Evaluation:
        """BlindEvaluate (§3.3.3); pass ``r`` only for deterministic known-answer tests."""
        batch = self.blind_evaluate_batch([blinded_element], info, r=r)
        return Evaluation(batch.evaluated_elements[0], batch.proof)

    def blind_evaluate_batch(
        self, blinded_elements: Sequence[bytes], info: bytes, *, r: bytes | None = None
    ) -> BatchEvaluation:
        """BlindEvaluate over a batch with one proof (§2.2.1, §3.3.3): ``t^-1 * blinded``."""
        _check_batch(len(blinded_elements))
        t = self._tweaked_key(info)
        t_inverse = r255.scalar_invert(t)
        blinded = [bytes(e) for e in blinded_elements]
        evaluated = [_evaluate_blinded(t_inverse, e) for e in blinded]
        proof = _generate_proof(
            _SUITES[self.mode], t, r255.scalarmult_base(t), evaluated, blinded, r=r
        )
        return BatchEvaluation(tuple(evaluated), proof)

    def evaluate(self, input: bytes, info: bytes) -> bytes:
        """Evaluate (§3.3.3): the PRF output computed directly from ``input`` and ``info``."""
        t_inverse = r255.scalar_invert(self._tweaked_key(info))
        return self._output(t_inverse, input, bytes(info))
