"""Rejections: bad proofs, bad elements and scalars, the zero POPRF tweak, input limits."""

from __future__ import annotations

import pytest

from pavilion.errors import CryptoError, VerificationFailed
from pavilion.privacy import oprf
from pavilion.privacy import ristretto as r255
from pavilion.privacy.oprf.suite import SUITES, Suite

L = 2**252 + 27742317777372353535851937790883648493
INVALID_ELEMENTS = [
    r255.IDENTITY,
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000"),  # negative
    bytes.fromhex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # >= p
    bytes(31),
    bytes(33),
]
NON_CANONICAL_SCALARS = [L.to_bytes(32, "little"), b"\xff" * 32, bytes(31)]
Setup = tuple[oprf.VOPRFServer, oprf.VOPRFClient, oprf.Blinded, oprf.Evaluation]


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1 :]


@pytest.fixture
def voprf() -> Setup:
    key_pair = oprf.generate_key_pair()
    server = oprf.VOPRFServer(key_pair.sk, key_pair.pk)
    client = oprf.VOPRFClient(key_pair.pk)
    state = client.blind(b"input")
    return server, client, state, server.blind_evaluate(state.blinded_element)


def test_error_tree() -> None:
    assert issubclass(oprf.VerifyError, VerificationFailed)
    assert issubclass(oprf.VerifyError, oprf.OPRFError)
    assert issubclass(oprf.InverseError, oprf.InvalidInput)
    for error in (oprf.DeserializeError, oprf.InvalidInput, oprf.DeriveKeyPairError):
        assert issubclass(error, CryptoError)
    assert oprf.VerifyError("x").code == VerificationFailed.code


def test_voprf_proof_from_another_key_is_rejected(voprf: Setup) -> None:
    _, client, state, _ = voprf
    other = oprf.VOPRFServer(oprf.generate_key_pair().sk)
    evaluation = other.blind_evaluate(state.blinded_element)
    with pytest.raises(oprf.VerifyError):
        client.finalize(
            b"input",
            state.blind,
            evaluation.evaluated_element,
            state.blinded_element,
            proof=evaluation.proof,
        )


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_tampered_proof_is_rejected(voprf: Setup, index: int) -> None:
    _, client, state, evaluation = voprf
    tampered = _flip(evaluation.proof, index)
    with pytest.raises((oprf.VerifyError, oprf.DeserializeError)):
        client.finalize(
            b"input",
            state.blind,
            evaluation.evaluated_element,
            state.blinded_element,
            proof=tampered,
        )


def test_low_byte_tampering_is_a_verify_error(voprf: Setup) -> None:
    _, client, state, evaluation = voprf
    for index in (0, 32):
        with pytest.raises(oprf.VerifyError):
            client.finalize(
                b"input",
                state.blind,
                evaluation.evaluated_element,
                state.blinded_element,
                proof=_flip(evaluation.proof, index),
            )


@pytest.mark.parametrize(
    "proof",
    [b"", bytes(63), L.to_bytes(32, "little") + bytes(32), bytes(32) + b"\xff" * 32],
)
def test_malformed_proof_is_a_deserialize_error(voprf: Setup, proof: bytes) -> None:
    _, client, state, evaluation = voprf
    with pytest.raises(oprf.DeserializeError):
        client.finalize(
            b"input", state.blind, evaluation.evaluated_element, state.blinded_element, proof=proof
        )


def test_zero_response_scalar_is_a_verify_error(voprf: Setup) -> None:
    _, client, state, evaluation = voprf
    proof = evaluation.proof[:32] + bytes(32)  # s = 0 makes s * G the identity
    with pytest.raises(oprf.VerifyError):
        client.finalize(
            b"input", state.blind, evaluation.evaluated_element, state.blinded_element, proof=proof
        )


def test_tampered_evaluated_element_is_rejected(voprf: Setup) -> None:
    _, client, state, evaluation = voprf
    doubled = r255.add(evaluation.evaluated_element, evaluation.evaluated_element)
    with pytest.raises(oprf.VerifyError):
        client.finalize(
            b"input", state.blind, doubled, state.blinded_element, proof=evaluation.proof
        )
    other = client.blind(b"other").blinded_element
    with pytest.raises(oprf.VerifyError):  # the proof binds the blinded element as well
        client.finalize(
            b"input", state.blind, evaluation.evaluated_element, other, proof=evaluation.proof
        )


@pytest.mark.parametrize("element", INVALID_ELEMENTS)
def test_invalid_elements_are_rejected_everywhere(voprf: Setup, element: bytes) -> None:
    server, client, state, evaluation = voprf
    with pytest.raises(oprf.DeserializeError):
        oprf.deserialize_element(element)
    with pytest.raises(oprf.DeserializeError):
        server.blind_evaluate(element)
    with pytest.raises(oprf.DeserializeError):
        oprf.OPRFServer(oprf.generate_key_pair().sk).blind_evaluate(element)
    with pytest.raises(oprf.DeserializeError):
        oprf.POPRFServer(oprf.generate_key_pair().sk).blind_evaluate(element, b"info")
    with pytest.raises(oprf.DeserializeError):
        oprf.OPRFClient().finalize(b"input", state.blind, element)
    with pytest.raises(oprf.DeserializeError):
        client.finalize(
            b"input", state.blind, element, state.blinded_element, proof=evaluation.proof
        )
    with pytest.raises(oprf.DeserializeError):
        client.finalize(
            b"input", state.blind, evaluation.evaluated_element, element, proof=evaluation.proof
        )
    with pytest.raises(oprf.DeserializeError):
        oprf.VOPRFClient(element)
    with pytest.raises(oprf.DeserializeError):
        oprf.POPRFClient(element)


def test_batch_element_order_matters() -> None:
    key_pair = oprf.generate_key_pair()
    server = oprf.VOPRFServer(key_pair.sk)
    client = oprf.VOPRFClient(key_pair.pk)
    states = [client.blind(x) for x in (b"a", b"b")]
    batch = server.blind_evaluate_batch([s.blinded_element for s in states])
    with pytest.raises(oprf.VerifyError):
        client.finalize_batch(
            [b"b", b"a"],
            [s.blind for s in reversed(states)],
            list(reversed(batch.evaluated_elements)),
            [s.blinded_element for s in reversed(states)],
            proof=batch.proof,
        )


@pytest.mark.parametrize("scalar", NON_CANONICAL_SCALARS)
def test_non_canonical_scalars_are_rejected(scalar: bytes) -> None:
    with pytest.raises(oprf.DeserializeError):
        oprf.deserialize_scalar(scalar)
    with pytest.raises(oprf.DeserializeError):
        oprf.OPRFServer(scalar)
    with pytest.raises(oprf.DeserializeError):
        oprf.OPRFClient().blind(b"input", blind=scalar)


def test_zero_scalars_are_invalid_input(voprf: Setup) -> None:
    server, _, state, _ = voprf
    with pytest.raises(oprf.InvalidInput, match="private key"):
        oprf.VOPRFServer(bytes(32))
    with pytest.raises(oprf.InvalidInput, match="blind"):
        oprf.OPRFClient().blind(b"input", blind=bytes(32))
    with pytest.raises(oprf.InvalidInput, match="blind"):
        oprf.OPRFClient().finalize(b"input", bytes(32), state.blinded_element)
    with pytest.raises(oprf.InvalidInput, match="nonce"):
        server.blind_evaluate(state.blinded_element, r=bytes(32))


def test_mismatched_public_key_is_rejected() -> None:
    first, second = oprf.generate_key_pair(), oprf.generate_key_pair()
    with pytest.raises(oprf.InvalidInput, match="public key"):
        oprf.VOPRFServer(first.sk, second.pk)
    with pytest.raises(oprf.InvalidInput, match="public key"):
        oprf.POPRFServer(first.sk, second.pk)
    assert oprf.POPRFServer(first.sk, first.pk).public_key == first.pk


def _zero_tweak_key(info: bytes) -> oprf.KeyPair:
    """A key with ``skS = -m`` for ``info``, so ``skS + m = 0`` and the tweaked key is the
    identity."""
    m = int.from_bytes(SUITES[oprf.Mode.POPRF].tweak(info), "little")
    sk = ((L - m) % L).to_bytes(32, "little")
    return oprf.KeyPair(sk, r255.scalarmult_base(sk))


def test_poprf_zero_tweaked_key() -> None:
    info = b"pavilion zero tweak"
    key_pair = _zero_tweak_key(info)
    client = oprf.POPRFClient(key_pair.pk)
    server = oprf.POPRFServer(key_pair.sk)
    with pytest.raises(oprf.InvalidInput, match="tweaked key"):
        client.blind(b"input", info)
    blinded = client.blind(b"input", b"another info").blinded_element
    with pytest.raises(oprf.InverseError):
        server.blind_evaluate(blinded, info)
    with pytest.raises(oprf.InvalidInput):  # InverseError is an InvalidInput
        server.evaluate(b"input", info)
    assert len(server.evaluate(b"input", b"another info")) == oprf.OUTPUT_BYTES


def test_poprf_zero_info_scalar_uses_the_public_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key_pair = oprf.generate_key_pair()
    monkeypatch.setattr(Suite, "tweak", lambda _self, _info: bytes(32))
    state = oprf.POPRFClient(key_pair.pk).blind(b"input", b"info")
    assert state.tweaked_key == key_pair.pk  # m = 0: T is the identity, T + pkS = pkS


def test_poprf_wrong_info_is_rejected() -> None:
    key_pair = oprf.generate_key_pair()
    client = oprf.POPRFClient(key_pair.pk)
    server = oprf.POPRFServer(key_pair.sk)
    state = client.blind(b"input", b"client info")
    evaluation = server.blind_evaluate(state.blinded_element, b"server info")
    with pytest.raises(oprf.VerifyError):
        client.finalize(
            b"input",
            state.blind,
            evaluation.evaluated_element,
            state.blinded_element,
            proof=evaluation.proof,
            info=b"client info",
            tweaked_key=state.tweaked_key,
        )


def test_input_and_info_limits() -> None:
    key_pair = oprf.generate_key_pair()
    longest, too_long = bytes(0xFFFF), bytes(0x10000)
    assert len(oprf.OPRFServer(key_pair.sk).evaluate(longest)) == oprf.OUTPUT_BYTES
    with pytest.raises(oprf.InvalidInput, match="input"):
        oprf.OPRFClient().blind(too_long)
    with pytest.raises(oprf.InvalidInput, match="input"):
        oprf.VOPRFServer(key_pair.sk).evaluate(too_long)
    with pytest.raises(oprf.InvalidInput, match="input"):
        oprf.OPRFClient().finalize(too_long, key_pair.sk, key_pair.pk)
    with pytest.raises(oprf.InvalidInput, match="info"):
        oprf.POPRFClient(key_pair.pk).blind(b"input", too_long)
    with pytest.raises(oprf.InvalidInput, match="info"):
        oprf.POPRFServer(key_pair.sk).evaluate(b"input", too_long)
    client = oprf.POPRFClient(key_pair.pk)
    with pytest.raises(oprf.InvalidInput, match="info"):
        client.finalize_batch(
            [b"x"], [key_pair.sk], [key_pair.pk], [key_pair.pk],
            proof=bytes(64), info=too_long, tweaked_key=key_pair.pk,
        )  # fmt: skip
    with pytest.raises(oprf.InvalidInput, match="input"):
        oprf.VOPRFClient(key_pair.pk).finalize_batch(
            [too_long], [key_pair.sk], [key_pair.pk], [key_pair.pk], proof=bytes(64)
        )


def test_batch_shape_checks() -> None:
    key_pair = oprf.generate_key_pair()
    server = oprf.VOPRFServer(key_pair.sk)
    client = oprf.VOPRFClient(key_pair.pk)
    with pytest.raises(oprf.InvalidInput, match="batch"):
        server.blind_evaluate_batch([])
    with pytest.raises(oprf.InvalidInput, match="batch"):
        server.blind_evaluate_batch([key_pair.pk] * (oprf.MAX_BATCH + 1))
    with pytest.raises(oprf.InvalidInput, match="batch"):
        oprf.POPRFServer(key_pair.sk).blind_evaluate_batch([], b"info")
    with pytest.raises(oprf.InvalidInput, match="batch"):
        client.finalize_batch([], [], [], [], proof=bytes(64))
    with pytest.raises(oprf.InvalidInput, match="differ"):
        client.finalize_batch([b"x", b"y"], [key_pair.sk], [key_pair.pk], [key_pair.pk], proof=b"")


def test_secrets_stay_out_of_reprs() -> None:
    state = oprf.OPRFClient().blind(b"input")
    assert state.blind.hex() not in repr(state)
    assert repr(state.blinded_element) in repr(state)
