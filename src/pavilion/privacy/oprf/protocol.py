"""The three protocol variants of RFC 9497: OPRF, VOPRF and POPRF clients and servers.

Blind, Finalize and Evaluate (§3.3), with the DLEQ proofs of the verifiable modes (§2.2):
GenerateProof and VerifyProof over composites, batched. Every element or scalar that arrives
from the other party is deserialized (validated) before use; on the server's hot path the
validation of a blinded element is fused into the scalar multiplication. The blind and the
proof nonce ``r`` come from libsodium's CSPRNG and can be injected for known-answer tests only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import ClassVar

from pavilion.privacy import ristretto as r255
from pavilion.privacy.oprf.suite import (
    MAX_BATCH,
    PROOF_BYTES,
    SCALAR_BYTES,
    SUITES,
    BatchEvaluation,
    Blinded,
    DeserializeError,
    Evaluation,
    InvalidInput,
    InverseError,
    Mode,
    POPRFBlinded,
    Suite,
    VerifyError,
    check_length,
    deserialize_element,
    deserialize_scalar,
    is_zero,
    lp,
    nonzero_scalar,
)
from pavilion.privacy.ristretto import IDENTITY, RistrettoError


def _finalize_hash(input: bytes, element: bytes, info: bytes | None = None) -> bytes:
    """The Finalize/Evaluate output hash (§3.3.1, §3.3.3)."""
    framed_info = b"" if info is None else lp(info)
    return hashlib.sha512(lp(input) + framed_info + lp(element) + b"Finalize").digest()


def _blind(suite: Suite, input: bytes, blind: bytes | None) -> Blinded:
    """Blind (§3.3.1); ``blind`` overrides the random scalar for known-answer tests."""
    check_length(input, "input")
    scalar = r255.scalar_random() if blind is None else nonzero_scalar(blind, "blind")
    return Blinded(scalar, r255.scalarmult(scalar, suite.hash_to_group(bytes(input))))


def _unblind(blind: bytes, evaluated_element: bytes) -> bytes:
    """``SerializeElement(ScalarInverse(blind) * evaluatedElement)`` (§3.3.1)."""
    return r255.scalarmult(r255.scalar_invert(nonzero_scalar(blind, "blind")), evaluated_element)


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
    suite: Suite,
    k: bytes,
    b: bytes,
    cs: Sequence[bytes],
    ds: Sequence[bytes],
    *,
    r: bytes | None,
) -> bytes:
    """GenerateProof(k, G, B, C, D) with ComputeCompositesFast (§2.2.1); ``r`` is for tests."""
    nonce = r255.scalar_random() if r is None else nonzero_scalar(r, "proof nonce")
    m = _linear_combination(suite.composite_weights(b, cs, ds), cs)
    z = r255.scalarmult(k, m)
    t2 = r255.scalarmult_base(nonce)
    t3 = r255.scalarmult(nonce, m)
    c = suite.challenge(b, m, z, t2, t3)
    s = r255.scalar_sub(nonce, r255.scalar_mul(c, k))
    return c + s


def _verify_proof(
    suite: Suite, b: bytes, cs: Sequence[bytes], ds: Sequence[bytes], proof: bytes
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
    inverses = _invert_all([nonzero_scalar(blind, "blind") for blind in blinds])
    return [
        _finalize_hash(bytes(x), r255.scalarmult(inverse, element), info)
        for x, inverse, element in zip(inputs, inverses, evaluated_elements, strict=True)
    ]


def _invert_all(scalars: Sequence[bytes]) -> list[bytes]:
    """``ScalarInverse`` of every (non-zero) scalar with a single inversion: Montgomery's
    batch inversion (prefix products, one inverse, back-substitution), 3 multiplications
    modulo L per scalar instead of one constant-time inversion each (as costly as a scalar
    multiplication). Every step is a fixed sequence of libsodium calls: no secret-dependent
    branch is added."""
    prefix = [scalars[0]]  # callers pass a checked, non-empty batch
    for s in scalars[1:]:
        prefix.append(r255.scalar_mul(prefix[-1], s))
    inverse = r255.scalar_invert(prefix[-1])  # non-zero: a product of non-zero scalars mod L
    out = [b""] * len(scalars)
    for i in range(len(scalars) - 1, 0, -1):
        out[i] = r255.scalar_mul(inverse, prefix[i - 1])
        inverse = r255.scalar_mul(inverse, scalars[i])
    out[0] = inverse
    return out


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
        check_length(x, "input")
    return (
        [deserialize_element(e) for e in evaluated_elements],
        [deserialize_element(e) for e in blinded_elements],
    )


class OPRFClient:
    """OPRF (mode 0) client (§3.3.1)."""

    mode: ClassVar[Mode] = Mode.OPRF

    def blind(self, input: bytes, *, blind: bytes | None = None) -> Blinded:
        """Blind (§3.3.1); pass ``blind`` only for deterministic known-answer tests."""
        return _blind(SUITES[self.mode], input, blind)

    def finalize(self, input: bytes, blind: bytes, evaluated_element: bytes) -> bytes:
        """Finalize (§3.3.1): the 64-byte PRF output."""
        check_length(input, "input")
        return _finalize_hash(bytes(input), _unblind(blind, deserialize_element(evaluated_element)))


class _Server:
    """Key handling shared by the three servers: ``skS`` and ``pkS = skS * G`` (§3.2)."""

    mode: ClassVar[Mode]

    def __init__(self, sk: bytes, pk: bytes | None = None) -> None:
        """``sk`` is a serialized non-zero scalar; ``pk``, when given, must be ``sk * G``."""
        self._sk = nonzero_scalar(sk, "private key")
        self.public_key = r255.scalarmult_base(self._sk)
        if pk is not None and not hmac.compare_digest(deserialize_element(pk), self.public_key):
            raise InvalidInput("public key does not match the private key")

    def _output(self, k: bytes, input: bytes, info: bytes | None = None) -> bytes:
        """Evaluate (§3.3.1, §3.3.3): hash ``k * HashToGroup(input)`` with input (and info)."""
        check_length(input, "input")
        element = SUITES[self.mode].hash_to_group(bytes(input))
        return _finalize_hash(bytes(input), r255.scalarmult(k, element), info)

    def _outputs(self, inputs: Sequence[bytes]) -> list[bytes]:
        """Evaluate (§3.3.1, §3.3.2) of every input: what ``_output`` gives one at a time,
        with the hash framing and libsodium's buffers set up once per batch."""
        data = [bytes(x) for x in inputs]
        for x in data:
            check_length(x, "input")
        try:
            elements = r255.scalarmult_hashed(self._sk, SUITES[self.mode].group_hashes(data))
        except RistrettoError as exc:  # a non-zero key: only an identity element gets here
            raise InvalidInput("input maps to the identity element") from exc
        return [_finalize_hash(x, e) for x, e in zip(data, elements, strict=True)]


class OPRFServer(_Server):
    """OPRF (mode 0) server holding ``skS`` (§3.3.1)."""

    mode: ClassVar[Mode] = Mode.OPRF

    def blind_evaluate(self, blinded_element: bytes) -> bytes:
        """BlindEvaluate (§3.3.1): ``skS * blindedElement``."""
        return _evaluate_blinded(self._sk, bytes(blinded_element))

    def evaluate(self, input: bytes) -> bytes:
        """Evaluate (§3.3.1): the PRF output computed directly from ``input``."""
        return self._output(self._sk, input)

    def evaluate_many(self, inputs: Sequence[bytes]) -> list[bytes]:
        """``evaluate`` of every input, in order (the DP's tags: one call per chunk)."""
        return self._outputs(inputs)


class VOPRFClient:
    """VOPRF (mode 1) client bound to the server public key ``pkS`` (§3.3.2)."""

    mode: ClassVar[Mode] = Mode.VOPRF

    def __init__(self, pk: bytes) -> None:
        self.public_key = deserialize_element(pk)

    def blind(self, input: bytes, *, blind: bytes | None = None) -> Blinded:
        """Blind (§3.3.1); pass ``blind`` only for deterministic known-answer tests."""
        return _blind(SUITES[self.mode], input, blind)

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
        _verify_proof(SUITES[self.mode], self.public_key, blinded, evaluated, proof)
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
            SUITES[self.mode], self._sk, self.public_key, blinded, evaluated, r=r
        )
        return BatchEvaluation(tuple(evaluated), proof)

    def evaluate(self, input: bytes) -> bytes:
        """Evaluate (§3.3.2): the PRF output computed directly from ``input``."""
        return self._output(self._sk, input)

    def evaluate_many(self, inputs: Sequence[bytes]) -> list[bytes]:
        """``evaluate`` of every input, in order (the DP's tags: one call per chunk)."""
        return self._outputs(inputs)


class POPRFClient:
    """POPRF (mode 2) client bound to the server public key ``pkS`` (§3.3.3)."""

    mode: ClassVar[Mode] = Mode.POPRF

    def __init__(self, pk: bytes) -> None:
        self.public_key = deserialize_element(pk)

    def blind(self, input: bytes, info: bytes, *, blind: bytes | None = None) -> POPRFBlinded:
        """Blind (§3.3.3): also the tweaked key ``m * G + pkS``; InvalidInput if it is the
        identity. Pass ``blind`` only for deterministic known-answer tests."""
        suite = SUITES[self.mode]
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
        check_length(info, "info")
        evaluated, blinded = _client_batch(inputs, blinds, evaluated_elements, blinded_elements)
        key = deserialize_element(tweaked_key)
        _verify_proof(SUITES[self.mode], key, evaluated, blinded, proof)
        return _verified_outputs(inputs, blinds, evaluated, bytes(info))


class POPRFServer(_Server):
    """POPRF (mode 2) server holding ``skS`` (§3.3.3)."""

    mode: ClassVar[Mode] = Mode.POPRF

    def _tweaked_key(self, info: bytes) -> bytes:
        """``t = skS + m``; InverseError if zero (§3.3.3)."""
        t = r255.scalar_add(self._sk, SUITES[self.mode].tweak(bytes(info)))
        if is_zero(t):
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
            SUITES[self.mode], t, r255.scalarmult_base(t), evaluated, blinded, r=r
        )
        return BatchEvaluation(tuple(evaluated), proof)

    def evaluate(self, input: bytes, info: bytes) -> bytes:
        """Evaluate (§3.3.3): the PRF output computed directly from ``input`` and ``info``."""
        t_inverse = r255.scalar_invert(self._tweaked_key(info))
        return self._output(t_inverse, input, bytes(info))
