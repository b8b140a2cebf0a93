"""Property: Finalize(BlindEvaluate(Blind(x))) == Evaluate(x) in every mode (RFC 9497 §3)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pavilion.privacy import oprf

inputs = st.binary(max_size=300)
seeds = st.binary(min_size=32, max_size=32)
infos = st.binary(max_size=100)
PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(x=inputs, seed=seeds)
def test_oprf_round_trip(x: bytes, seed: bytes) -> None:
    key_pair = oprf.derive_key_pair(seed, b"", oprf.Mode.OPRF)
    client, server = oprf.OPRFClient(), oprf.OPRFServer(key_pair.sk)
    state = client.blind(x)
    output = client.finalize(x, state.blind, server.blind_evaluate(state.blinded_element))
    assert output == server.evaluate(x)
    assert len(output) == oprf.OUTPUT_BYTES


@PROPERTY
@given(xs=st.lists(inputs, min_size=1, max_size=4), seed=seeds)
def test_voprf_round_trip(xs: list[bytes], seed: bytes) -> None:
    key_pair = oprf.derive_key_pair(seed, b"", oprf.Mode.VOPRF)
    client, server = oprf.VOPRFClient(key_pair.pk), oprf.VOPRFServer(key_pair.sk)
    states = [client.blind(x) for x in xs]
    single = server.blind_evaluate(states[0].blinded_element)
    output = client.finalize(
        xs[0],
        states[0].blind,
        single.evaluated_element,
        states[0].blinded_element,
        proof=single.proof,
    )
    assert output == server.evaluate(xs[0])
    batch = server.blind_evaluate_batch([s.blinded_element for s in states])
    outputs = client.finalize_batch(
        xs,
        [s.blind for s in states],
        batch.evaluated_elements,
        [s.blinded_element for s in states],
        proof=batch.proof,
    )
    assert outputs == [server.evaluate(x) for x in xs]


@PROPERTY
@given(xs=st.lists(inputs, min_size=1, max_size=4), seed=seeds, info=infos)
def test_poprf_round_trip(xs: list[bytes], seed: bytes, info: bytes) -> None:
    key_pair = oprf.derive_key_pair(seed, b"", oprf.Mode.POPRF)
    client, server = oprf.POPRFClient(key_pair.pk), oprf.POPRFServer(key_pair.sk)
    states = [client.blind(x, info) for x in xs]
    single = server.blind_evaluate(states[0].blinded_element, info)
    output = client.finalize(
        xs[0],
        states[0].blind,
        single.evaluated_element,
        states[0].blinded_element,
        proof=single.proof,
        info=info,
        tweaked_key=states[0].tweaked_key,
    )
    assert output == server.evaluate(xs[0], info)
    batch = server.blind_evaluate_batch([s.blinded_element for s in states], info)
    outputs = client.finalize_batch(
        xs,
        [s.blind for s in states],
        batch.evaluated_elements,
        [s.blinded_element for s in states],
        proof=batch.proof,
        info=info,
        tweaked_key=states[0].tweaked_key,
    )
    assert outputs == [server.evaluate(x, info) for x in xs]


@PROPERTY
@given(x=inputs, seed=seeds)
def test_modes_are_domain_separated(x: bytes, seed: bytes) -> None:
    sk = oprf.derive_key_pair(seed, b"", oprf.Mode.OPRF).sk
    outputs = {
        oprf.OPRFServer(sk).evaluate(x),
        oprf.VOPRFServer(sk).evaluate(x),
        oprf.POPRFServer(sk).evaluate(x, b""),
    }
    assert len(outputs) == 3
