"""RFC 9497 Appendix A.1 test vectors for ristretto255-SHA512, all three modes.

The data file is a verbatim copy of the ristretto255-SHA512 entries of the RFC's vector file;
batched vectors join their per-element values with commas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pavilion.privacy import oprf, ristretto
from pavilion.privacy.oprf import suite as oprf_suite

VECTORS_FILE = Path(__file__).resolve().parents[2] / "data" / "rfc9497" / "ristretto255-sha512.json"
SUITES: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text())


def _cases(mode: int) -> list[Any]:
    suite = next(s for s in SUITES if s["mode"] == mode)
    return [
        pytest.param(suite, vector, id=f"mode{mode}-vector{index + 1}")
        for index, vector in enumerate(suite["vectors"])
    ]


def _split(value: str) -> list[bytes]:
    return [bytes.fromhex(part) for part in value.split(",")]


def _key_pair(suite: dict[str, Any]) -> oprf.KeyPair:
    return oprf.derive_key_pair(
        bytes.fromhex(suite["seed"]), bytes.fromhex(suite["keyInfo"]), oprf.Mode(suite["mode"])
    )


def test_the_file_holds_every_mode_and_vector() -> None:
    counts = {suite["mode"]: len(suite["vectors"]) for suite in SUITES}
    assert counts == {0: 2, 1: 3, 2: 3}
    assert all(suite["identifier"] == "ristretto255-SHA512" for suite in SUITES)
    batched = [v for s in SUITES for v in s["vectors"] if v["Batch"] > 1]
    assert len(batched) == 2


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: f"mode{s['mode']}")
def test_derive_key_pair_and_group_dst(suite: dict[str, Any]) -> None:
    mode = oprf.Mode(suite["mode"])
    key_pair = _key_pair(suite)
    assert key_pair.sk.hex() == suite["skSm"]
    assert key_pair.pk == ristretto.scalarmult_base(key_pair.sk)
    if "pkSm" in suite:
        assert key_pair.pk.hex() == suite["pkSm"]
    assert b"HashToGroup-" + oprf.context_string(mode) == bytes.fromhex(suite["groupDST"])


class _Vector:
    """One vector's values, split into per-element lists."""

    def __init__(self, suite: dict[str, Any], vector: dict[str, Any]) -> None:
        self.key_pair = _key_pair(suite)
        self.inputs = _split(vector["Input"])
        self.blinds = _split(vector["Blind"])
        self.blinded = _split(vector["BlindedElement"])
        self.evaluated = _split(vector["EvaluationElement"])
        self.outputs = _split(vector["Output"])
        self.proof = bytes.fromhex(vector["Proof"]["proof"]) if "Proof" in vector else b""
        self.r = bytes.fromhex(vector["Proof"]["r"]) if "Proof" in vector else b""
        self.info = bytes.fromhex(vector.get("Info", ""))
        assert len(self.inputs) == vector["Batch"] == len(self.outputs)


@pytest.mark.parametrize(("suite", "vector"), _cases(0))
def test_oprf_vector(suite: dict[str, Any], vector: dict[str, Any]) -> None:
    v = _Vector(suite, vector)
    client = oprf.OPRFClient()
    server = oprf.OPRFServer(v.key_pair.sk)
    for x, blind, blinded, evaluated, output in zip(
        v.inputs, v.blinds, v.blinded, v.evaluated, v.outputs, strict=True
    ):
        state = client.blind(x, blind=blind)
        assert state.blind == blind
        assert state.blinded_element == blinded
        assert server.blind_evaluate(blinded) == evaluated
        assert client.finalize(x, blind, evaluated) == output
        assert server.evaluate(x) == output
    assert server.evaluate_many(v.inputs) == v.outputs


@pytest.mark.parametrize(("suite", "vector"), _cases(1))
def test_voprf_vector(suite: dict[str, Any], vector: dict[str, Any]) -> None:
    v = _Vector(suite, vector)
    client = oprf.VOPRFClient(v.key_pair.pk)
    server = oprf.VOPRFServer(v.key_pair.sk, v.key_pair.pk)
    states = [client.blind(x, blind=b) for x, b in zip(v.inputs, v.blinds, strict=True)]
    assert [s.blinded_element for s in states] == v.blinded
    if len(v.inputs) == 1:
        single = server.blind_evaluate(v.blinded[0], r=v.r)
        assert (single.evaluated_element, single.proof) == (v.evaluated[0], v.proof)
        output = client.finalize(
            v.inputs[0], v.blinds[0], v.evaluated[0], v.blinded[0], proof=v.proof
        )
        assert output == v.outputs[0]
    batch = server.blind_evaluate_batch(v.blinded, r=v.r)
    assert list(batch.evaluated_elements) == v.evaluated
    assert batch.proof == v.proof
    outputs = client.finalize_batch(v.inputs, v.blinds, v.evaluated, v.blinded, proof=v.proof)
    assert outputs == v.outputs
    assert [server.evaluate(x) for x in v.inputs] == v.outputs
    assert server.evaluate_many(v.inputs) == v.outputs


@pytest.mark.parametrize(("suite", "vector"), _cases(2))
def test_poprf_vector(suite: dict[str, Any], vector: dict[str, Any]) -> None:
    v = _Vector(suite, vector)
    client = oprf.POPRFClient(v.key_pair.pk)
    server = oprf.POPRFServer(v.key_pair.sk, v.key_pair.pk)
    states = [client.blind(x, v.info, blind=b) for x, b in zip(v.inputs, v.blinds, strict=True)]
    assert [s.blinded_element for s in states] == v.blinded
    tweaked_key = states[0].tweaked_key
    m = oprf_suite.SUITES[oprf.Mode.POPRF].tweak(v.info)
    assert tweaked_key == ristretto.scalarmult_base(ristretto.scalar_add(v.key_pair.sk, m))
    if len(v.inputs) == 1:
        single = server.blind_evaluate(v.blinded[0], v.info, r=v.r)
        assert (single.evaluated_element, single.proof) == (v.evaluated[0], v.proof)
        output = client.finalize(
            v.inputs[0],
            v.blinds[0],
            v.evaluated[0],
            v.blinded[0],
            proof=v.proof,
            info=v.info,
            tweaked_key=tweaked_key,
        )
        assert output == v.outputs[0]
    batch = server.blind_evaluate_batch(v.blinded, v.info, r=v.r)
    assert list(batch.evaluated_elements) == v.evaluated
    assert batch.proof == v.proof
    outputs = client.finalize_batch(
        v.inputs,
        v.blinds,
        v.evaluated,
        v.blinded,
        proof=v.proof,
        info=v.info,
        tweaked_key=tweaked_key,
    )
    assert outputs == v.outputs
    assert [server.evaluate(x, v.info) for x in v.inputs] == v.outputs
