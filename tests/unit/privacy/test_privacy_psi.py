"""PSI building blocks: normalisation, encoded sets and their false-positive rate, signed
manifests, and the client's proof check (pure; no network)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import OKPKey

from pavilion.errors import InvalidRequest, VerificationFailed
from pavilion.jose import b64url, b64url_decode
from pavilion.privacy import oprf, psi
from pavilion.privacy.errors import DPProofInvalid


def test_both_sides_normalise_identifiers_alike() -> None:
    assert psi.normalise_identifier("student_id", " s1234567 ") == "S1234567"
    assert psi.normalise_identifier("email", " Ada@Example.ORG") == "ada@example.org"
    assert psi.normalise_identifier("national_id", " AbC ") == "abc"
    a = psi.oprf_input("roster", {"student_id": "s1234567", "email": "A@b.example"})
    b = psi.oprf_input("roster", {"email": " a@B.example ", "student_id": "S1234567"})
    assert a == b
    assert psi.oprf_input("student_status", {"email": "a@b.example"}) != psi.oprf_input(
        "roster", {"email": "a@b.example"}
    )  # sets are domain-separated: their tags cannot be linked
    assert psi.membership_set("  Chess   CLUB ") == "membership:chess club"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: psi.normalise_identifier("Student-ID", "x"), "identifiers.Student-ID"),
        (lambda: psi.normalise_identifier("email", "   "), "identifiers.email"),
        (lambda: psi.oprf_input("roster", {}), "identifiers"),
        (lambda: psi.oprf_input("roster", {"email": "x" * 70_000}), "identifiers"),
        (lambda: psi.check_set_name(" padded"), "set"),
        (lambda: psi.check_set_name("bad\nname"), "set"),
        (lambda: psi.EncodedSet(3, b""), "encoding.tag_bytes"),
        (lambda: psi.EncodedSet(8, b"123"), "data"),
        (lambda: psi.evaluate_tags(b"\x01" * 32, [b"x"], 8, workers=0), "workers"),
    ],
)
def test_bad_input_names_the_field(call: object, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        call()  # type: ignore[operator]
    assert caught.value.field == field


def test_identifier_subsets_cover_every_combination() -> None:
    subsets = psi.identifier_subsets({"student_id": "S1", "email": "e@x.example"})
    assert subsets == [
        {"email": "e@x.example"},
        {"student_id": "S1"},
        {"email": "e@x.example", "student_id": "S1"},
    ]


def test_encoded_set_membership_and_stated_false_positive_rate() -> None:
    key = oprf.generate_key_pair()
    members = [f"member-{i}".encode() for i in range(300)]
    tags = psi.evaluate_tags(key.sk, members, 4)
    encoded = psi.EncodedSet.from_tags(tags, 4)
    encoded.check_sorted()
    server = oprf.VOPRFServer(key.sk)
    assert all(server.evaluate(m) in encoded for m in members)
    assert encoded.fpr == pytest.approx(300 / 2**32)
    assert b"" not in encoded
    assert "not bytes" not in encoded
    # Measured false positives of non-members agree with the stated rate (4-byte tags make
    # the rate observable: 1e5 queries against a 200k set expect ~4.7 hits).
    rng = random.Random(1)
    big = psi.EncodedSet.from_tags((rng.randbytes(4) for _ in range(200_000)), 4)
    hits = sum(rng.randbytes(64) in big for _ in range(100_000))
    assert hits < 25
    assert big.fpr * 100_000 == pytest.approx(4.66, rel=0.01)


def test_unsorted_or_repeated_tags_fail_the_check() -> None:
    with pytest.raises(InvalidRequest, match="ascending at tag 1"):
        psi.EncodedSet(4, b"bbbbaaaa").check_sorted()
    with pytest.raises(InvalidRequest):
        psi.EncodedSet(4, b"aaaaaaaa").check_sorted()
    with pytest.raises(InvalidRequest, match="4 bytes"):
        psi.EncodedSet.from_tags([b"abcd", b"ab"], 4)


def test_parallel_evaluation_matches_the_single_thread_result() -> None:
    key = oprf.generate_key_pair()
    inputs = [f"x{i}".encode() for i in range(60)]
    assert psi.evaluate_tags(key.sk, inputs, 8, workers=2, chunk=20) == psi.evaluate_tags(
        key.sk, inputs, 8
    )


def test_identifier_tags_are_the_tags_of_the_normalised_inputs() -> None:
    """A one-identifier list (a customer list) gets the same tags, in order, as its OPRF
    inputs would, whether evaluated on one thread or spread over several."""
    key = oprf.generate_key_pair()
    emails = [f" Member{i}@Club.example" for i in range(50)]
    inputs = [psi.oprf_input("customers", {"email": e}) for e in emails]
    expected = psi.evaluate_tags(key.sk, inputs, 8)
    assert psi.evaluate_identifier_tags(key.sk, "customers", "email", emails, 8) == expected
    spread = psi.evaluate_identifier_tags(
        key.sk, "customers", "email", emails, 8, workers=2, chunk=16
    )
    assert spread == expected
    with pytest.raises(InvalidRequest) as caught:
        psi.evaluate_identifier_tags(key.sk, "customers", "email", emails, 8, workers=0)
    assert caught.value.field == "workers"


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["email", "student_id", "national_id"]),
    st.sampled_from(["customers", 'membership:chess "club" \u00fc']),
    st.lists(st.text(min_size=1, max_size=40).filter(str.strip), max_size=8),
)
def test_oprf_inputs_are_the_oprf_input_of_each_value(
    kind: str, set_name: str, values: list[str]
) -> None:
    assert psi.oprf_inputs(set_name, kind, values) == [
        psi.oprf_input(set_name, {kind: v}) for v in values
    ]


def test_oprf_inputs_refuse_what_oprf_input_refuses() -> None:
    with pytest.raises(InvalidRequest, match="too long"):
        psi.oprf_inputs("customers", "email", ["a@b.example", "x" * oprf.MAX_INPUT_BYTES])
    with pytest.raises(InvalidRequest, match="empty"):
        psi.oprf_inputs("customers", "email", ["  "])
    with pytest.raises(InvalidRequest) as caught:
        psi.oprf_inputs(" bad set", "email", ["a@b.example"])
    assert caught.value.field == "set"


def _manifest(**changes: object) -> psi.TagSetManifest:
    key = oprf.generate_key_pair()
    encoded = psi.EncodedSet.from_tags([b"\x01" * 8, b"\x02" * 8], 8)
    values: dict[str, object] = {
        "tenant_id": "t",
        "provider_id": "p",
        "set_name": "roster",
        "version": 3,
        "issued_at": datetime(2026, 1, 1, tzinfo=UTC),
        "key_id": "k1",
        "public_key": key.pk,
        "tag_bytes": 8,
        "count": encoded.count,
        "sha256": encoded.sha256,
    } | changes
    return psi.TagSetManifest(**values)  # type: ignore[arg-type]


def test_signed_manifest_round_trips_and_only_verifies_with_the_dp_key() -> None:
    key = OKPKey.generate_key("Ed25519")
    manifest = _manifest()
    token = psi.sign_manifest(manifest, key)
    assert psi.verify_manifest(token, key.as_dict(private=False)) == manifest
    other = OKPKey.generate_key("Ed25519")
    with pytest.raises(VerificationFailed, match="does not verify"):
        psi.verify_manifest(token, other.as_dict(private=False))
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["version"] = 4
    with pytest.raises(VerificationFailed):
        psi.verify_manifest(
            f"{header}.{b64url(json.dumps(claims).encode())}.{signature}",
            key.as_dict(private=False),
        )


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("type", "other", "manifest.type"),
        ("oprf.mode", "OPRF", "manifest.oprf"),
        ("encoding.type", "bloom", "manifest.encoding.type"),
        ("encoding.tag_bytes", 2, "encoding.tag_bytes"),
        ("version", 0, "manifest.version"),
        ("version", True, "manifest.version"),
        ("sha256", "XYZ", "manifest.sha256"),
        ("oprf.public_key", b64url(b"\x00" * 32), "manifest.oprf.public_key"),
        ("fpr", 0.5, "manifest.fpr"),
        ("count", None, "manifest.count"),
    ],
)
def test_manifest_members_are_checked(path: str, value: object, field: str) -> None:
    claims = _manifest().claims()
    target = claims
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    with pytest.raises(InvalidRequest) as caught:
        psi.TagSetManifest.from_claims(claims)
    assert caught.value.field == field


def test_manifest_with_another_typ_or_payload_shape_is_refused() -> None:
    from joserfc import jws

    key = OKPKey.generate_key("Ed25519")
    token = jws.serialize_compact(
        {"alg": "Ed25519", "typ": "JWT"}, b"{}", key, algorithms=["Ed25519"]
    )
    with pytest.raises(VerificationFailed, match="typ"):
        psi.verify_manifest(token, key.as_dict(private=False))
    token = jws.serialize_compact(
        {"alg": "Ed25519", "typ": psi.MANIFEST_TYP}, b"[]", key, algorithms=["Ed25519"]
    )
    with pytest.raises(VerificationFailed, match="JSON object"):
        psi.verify_manifest(token, key.as_dict(private=False))


def test_client_rejects_a_proof_from_a_wrong_key() -> None:
    right, wrong = oprf.generate_key_pair(), oprf.generate_key_pair()
    inputs = [b"a", b"b", b"c"]
    query = psi.blind_inputs(right.pk, inputs)
    honest = oprf.VOPRFServer(right.sk).blind_evaluate_batch(query.blinded_elements)
    outputs = psi.finalize_outputs(query, list(honest.evaluated_elements), honest.proof)
    assert outputs == [oprf.VOPRFServer(right.sk).evaluate(x) for x in inputs]

    cheat = oprf.VOPRFServer(wrong.sk).blind_evaluate_batch(query.blinded_elements)
    with pytest.raises(DPProofInvalid):
        psi.finalize_outputs(query, list(cheat.evaluated_elements), cheat.proof)
    with pytest.raises(DPProofInvalid, match="2 evaluations for 3"):
        psi.finalize_outputs(query, list(honest.evaluated_elements)[:2], honest.proof)
    swapped = [
        honest.evaluated_elements[1],
        honest.evaluated_elements[0],
        honest.evaluated_elements[2],
    ]
    with pytest.raises(DPProofInvalid):
        psi.finalize_outputs(query, swapped, honest.proof)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(min_size=8, max_size=8), max_size=50), st.binary(min_size=8, max_size=8))
def test_membership_is_exact_for_tags(tags: list[bytes], probe: bytes) -> None:
    encoded = psi.EncodedSet.from_tags(tags, 8)
    assert (probe in encoded) == (probe in set(tags))
    assert encoded.count == len(set(tags))
