"""Cross-check of our VOPRF against the independent ``voprf`` PyPI package (0.2.0, Rust core).

What ``voprf`` supports, and therefore what is checked here:

* Only mode 1 (VOPRF) of ristretto255-SHA512 (its ``voprf.ristretto`` module); it has no OPRF
  (mode 0) or POPRF (mode 2) API, so those two modes rest on the RFC vectors alone.
* ``Evaluator.from_seed(seed, info)`` is RFC 9497 DeriveKeyPair in mode 1, and
  ``Evaluator(seed)`` is the same with an empty info; keys are therefore compared through the
  public key, as the private scalar is not exposed.
* Wire formats: ``BlindedInput``/``PublicKey`` are the 32-byte element; ``VerifiableOutput`` is
  ``proof (64) || evaluatedElement (32)`` and ``VerifiableBatchOutput`` is
  ``proof (64) || evaluatedElement_1 || ... || evaluatedElement_m``.
* It draws blinds and proof nonces internally (no injection), so proofs cannot be compared
  byte for byte; instead each side verifies the other's proofs, single and batched.
* ``Client.blind`` rejects an empty input (RFC 9497 allows it), so inputs here are non-empty.

It agrees with RFC 9497 final: it reproduces the mode-1 ``pkSm`` and outputs of Appendix A.1.2.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from voprf import ristretto as voprf_ristretto

from pavilion.privacy import oprf

Pair = tuple[oprf.KeyPair, voprf_ristretto.Evaluator]

VECTORS_FILE = Path(__file__).resolve().parents[2] / "data" / "rfc9497" / "ristretto255-sha512.json"
MODE1 = next(s for s in json.loads(VECTORS_FILE.read_text()) if s["mode"] == 1)
INPUTS = [b"pavilion", b"\x00", b"x" * 1000]


@pytest.fixture
def pair() -> Pair:
    seed, info = secrets.token_bytes(32), b"pavilion cross-check"
    return oprf.derive_key_pair(seed, info, oprf.Mode.VOPRF), voprf_ristretto.Evaluator.from_seed(
        seed, info
    )


def test_voprf_package_matches_the_rfc_vectors() -> None:
    evaluator = voprf_ristretto.Evaluator.from_seed(
        bytes.fromhex(MODE1["seed"]), bytes.fromhex(MODE1["keyInfo"])
    )
    assert evaluator.public_key.serialize().hex() == MODE1["pkSm"]
    for vector in MODE1["vectors"]:
        for x, output in zip(vector["Input"].split(","), vector["Output"].split(","), strict=True):
            assert evaluator.evaluate_known_input(bytes.fromhex(x)).hex() == output


def test_derived_keys_agree(pair: Pair) -> None:
    ours, theirs = pair
    assert ours.pk == theirs.public_key.serialize()
    empty_info_seed = secrets.token_bytes(32)
    assert (
        oprf.derive_key_pair(empty_info_seed, b"", oprf.Mode.VOPRF).pk
        == voprf_ristretto.Evaluator(empty_info_seed).public_key.serialize()
    )


@settings(max_examples=40, deadline=None)
@given(x=st.binary(min_size=1, max_size=200), seed=st.binary(min_size=32, max_size=32))
def test_outputs_agree(x: bytes, seed: bytes) -> None:
    ours = oprf.VOPRFServer(oprf.derive_key_pair(seed, b"", oprf.Mode.VOPRF).sk)
    assert ours.evaluate(x) == voprf_ristretto.Evaluator(seed).evaluate_known_input(x)


@pytest.mark.parametrize("x", INPUTS)
def test_our_proof_verifies_in_voprf(pair: Pair, x: bytes) -> None:
    ours, theirs = pair
    server = oprf.VOPRFServer(ours.sk, ours.pk)
    their_client, blinded = voprf_ristretto.Client.blind(x)
    evaluation = server.blind_evaluate(blinded.serialize())
    wire = voprf_ristretto.VerifiableOutput.deserialize(
        evaluation.proof + evaluation.evaluated_element
    )
    assert their_client.finalize(wire, theirs.public_key) == server.evaluate(x)


@pytest.mark.parametrize("x", INPUTS)
def test_voprf_proof_verifies_in_ours(pair: Pair, x: bytes) -> None:
    ours, theirs = pair
    client = oprf.VOPRFClient(ours.pk)
    state = client.blind(x)
    wire = theirs.evaluate(
        voprf_ristretto.BlindedInput.deserialize(state.blinded_element)
    ).serialize()
    proof, evaluated = wire[: oprf.PROOF_BYTES], wire[oprf.PROOF_BYTES :]
    output = client.finalize(x, state.blind, evaluated, state.blinded_element, proof=proof)
    assert output == theirs.evaluate_known_input(x)


def test_batches_verify_both_ways(pair: Pair) -> None:
    ours, theirs = pair
    server, client = oprf.VOPRFServer(ours.sk), oprf.VOPRFClient(ours.pk)
    expected = [server.evaluate(x) for x in INPUTS]

    their_clients, their_blinded = zip(
        *(voprf_ristretto.Client.blind(x) for x in INPUTS), strict=True
    )
    batch = server.blind_evaluate_batch([b.serialize() for b in their_blinded])
    wire = voprf_ristretto.VerifiableBatchOutput.deserialize(
        batch.proof + b"".join(batch.evaluated_elements)
    )
    outputs = voprf_ristretto.Client.finalize_batch(list(their_clients), wire, theirs.public_key)
    assert outputs == expected

    states = [client.blind(x) for x in INPUTS]
    raw = theirs.evaluate_batch(
        [voprf_ristretto.BlindedInput.deserialize(s.blinded_element) for s in states]
    ).serialize()
    proof = raw[: oprf.PROOF_BYTES]
    elements = [raw[i : i + 32] for i in range(oprf.PROOF_BYTES, len(raw), 32)]
    outputs = client.finalize_batch(
        INPUTS,
        [s.blind for s in states],
        elements,
        [s.blinded_element for s in states],
        proof=proof,
    )
    assert outputs == expected


def test_voprf_rejects_our_proof_under_another_key(pair: Pair) -> None:
    _, theirs = pair
    stranger = oprf.VOPRFServer(oprf.generate_key_pair().sk)
    their_client, blinded = voprf_ristretto.Client.blind(b"pavilion")
    evaluation = stranger.blind_evaluate(blinded.serialize())
    wire = voprf_ristretto.VerifiableOutput.deserialize(
        evaluation.proof + evaluation.evaluated_element
    )
    with pytest.raises(ValueError, match="proof"):
        their_client.finalize(wire, theirs.public_key)
