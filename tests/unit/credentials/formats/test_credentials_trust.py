"""Trust chains: certificates made through a Signer, checked by pyca; accreditation walks."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from credentials_support import NOW, check, eddsa, es256, issue, make_chain, options
from pavilion.credentials import sd_jwt, vc2, verifier
from pavilion.credentials.report import CheckFailed, CheckName, IntegrityReport
from pavilion.credentials.templates import TEMPLATES, CredentialFormat
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.errors import CryptoError, InvalidRequest
from pavilion.keystore.signer import Signer

ACCREDITATION = TEMPLATES["dp_accreditation@1"]


async def _accreditation(
    root_signer: Signer,
    root: x509.Certificate,
    dp: Signer,
    claim_types: list[str],
    *,
    days: int = 365,
    issuing_key: str | None = None,
) -> str:
    document = vc2.build_document(
        credential_id="urn:uuid:0b7e2a4e-52a3-4a85-a2f4-1f6a3b9f7e10",
        issuer="https://connector.example",
        template=ACCREDITATION,
        subject={
            "id": "urn:pavilion:provider:provider-1",
            "accreditedClaimTypes": claim_types,
            "issuingKey": issuing_key or dp.key_id,
        },
        valid_from=NOW,
        valid_until=NOW + timedelta(days=days),
    )
    return await vc2.sign(document, root_signer, issued_at=NOW, x5c=[trust_x509.to_x5c(root)])


def _reason(report: IntegrityReport) -> str:
    chain = report.get(CheckName.CHAIN)
    assert chain is not None
    return chain.reason


def _lookup(tokens: dict[str, str]) -> verifier.AccreditationLookup:
    async def lookup(key_id: str) -> str | None:
        return tokens.get(key_id)

    return lookup


async def test_root_and_leaf_are_signed_through_the_signer_and_pyca_validates_them() -> None:
    _, root, dp, leaf = await make_chain()
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.issuer == root.subject
    assert trust_x509.provider_of(leaf) == "provider-1"
    assert trust_x509.provider_of(root) is None
    assert trust_x509.public_jwk_of_certificate(leaf)["kid"] == dp.key_id
    # An independent check with pyca's own verifier (not through our helper).
    verified = (
        PolicyBuilder().store(Store([root])).time(NOW).build_client_verifier().verify(leaf, [])
    )
    assert verified.chain[-1] == root
    leaf.verify_directly_issued_by(root)
    assert trust_x509.from_pem(trust_x509.to_pem(leaf)) == leaf
    assert trust_x509.load_pem_bundle(trust_x509.to_pem(root) + trust_x509.to_pem(leaf)) == [
        root,
        leaf,
    ]


async def test_an_ed25519_dp_key_can_be_certified() -> None:
    _, root, dp, leaf = await make_chain(leaf=eddsa())
    assert trust_x509.public_jwk_of_certificate(leaf)["kid"] == dp.key_id
    assert trust_x509.validate_chain([leaf], [root], NOW).root == root


async def test_a_ca_key_must_be_p256() -> None:
    with pytest.raises(InvalidRequest):
        trust_x509.SignerBackedKey(eddsa(), asyncio.get_running_loop())


async def test_the_signer_backed_key_only_signs() -> None:
    key = trust_x509.SignerBackedKey(es256(), asyncio.get_running_loop())
    assert key.key_size == 256
    assert isinstance(key.curve, ec.SECP256R1)
    for call in (
        key.private_numbers,
        lambda: key.exchange(ec.ECDH(), key.public_key()),
        lambda: key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ):
        with pytest.raises(CryptoError):
            call()
    assert key.__copy__() is key
    assert key.__deepcopy__({}) is key
    with pytest.raises(CryptoError):
        key.sign(b"x", ec.ECDSA(hashes.SHA384()))


async def test_chain_validation_reasons() -> None:
    _, root, _, leaf = await make_chain(leaf_days=30)
    assert trust_x509.validate_chain([leaf], [root], NOW).leaf == leaf
    assert trust_x509.validate_chain([leaf, root], [root], NOW).root == root
    assert trust_x509.validate_chain([root], [root], NOW).leaf_is_root
    cases: list[tuple[Any, Any, Any, str]] = [
        ([leaf], [], NOW, "no_trust_anchors"),
        ([leaf], [(await make_chain())[1]], NOW, "unknown_root"),
        ([leaf], [root], NOW + timedelta(days=40), "expired_link"),
        ([leaf], [root], NOW - timedelta(days=1), "not_yet_valid_link"),
        ([root], [root], NOW + timedelta(days=4000), "expired_link"),
    ]
    for chain, anchors, now, code in cases:
        with pytest.raises(CheckFailed) as raised:
            trust_x509.validate_chain(chain, anchors, now)
        assert raised.value.code == code, raised.value.reason
    _, short_root, _, long_leaf = await make_chain(root_days=10, leaf_days=365)
    assert long_leaf.not_valid_after_utc == short_root.not_valid_after_utc  # capped by the root
    with pytest.raises(CheckFailed) as raised:
        trust_x509.validate_chain([long_leaf], [short_root], NOW + timedelta(days=20))
    assert raised.value.code == "expired_link"
    assert "root certificate" in raised.value.reason


async def test_a_chain_that_pyca_rejects_is_invalid_chain() -> None:
    root_signer, root, dp, _ = await make_chain()
    start, end = trust_x509.default_validity(NOW, 30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "no extensions")]))
        .issuer_name(root.subject)
        .public_key(trust_x509._public_key(dp))
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    bad_leaf = await trust_x509.sign_certificate(builder, root_signer)
    with pytest.raises(CheckFailed) as raised:
        trust_x509.validate_chain([bad_leaf], [root], NOW)
    assert raised.value.code == "invalid_chain"


def test_x5c_must_be_base64_der_certificates() -> None:
    for value in (None, [], [1], ["not base64!"], ["AAAA"]):
        with pytest.raises(CheckFailed) as raised:
            trust_x509.parse_x5c(value)
        assert raised.value.code == "bad_x5c"
    with pytest.raises(InvalidRequest):
        trust_x509.load_pem_bundle("not pem")


async def _dp_credential(claim_type: str = "student_status", **chain: Any) -> tuple[Any, ...]:
    root_signer, root, dp, leaf = await make_chain(**chain)
    subject = {"studentStatus": {"current": True}}
    if claim_type == "membership":
        subject = {"membership": {"group": "chess", "member": True}}
    issued = await issue(
        CredentialFormat.SD_JWT_VC,
        dp,
        claim_type=claim_type,
        subject=subject,
        x5c=(trust_x509.to_x5c(leaf),),
    )
    return root_signer, root, dp, leaf, issued


async def test_credential_accreditation_root_walk_passes() -> None:
    root_signer, root, dp, _, issued = await _dp_credential()
    token = await _accreditation(root_signer, root, dp, ["student_status", "age_over"])
    trust = verifier.TrustContext(anchors=[root], accreditation=_lookup({dp.key_id: token}))
    report = await verifier.verify_credential(issued.token, trust, options())
    assert report.verified, report.to_json()
    status, _ = check(report, "chain")
    assert status == "pass"
    chain = report.get(CheckName.CHAIN)
    assert chain is not None
    assert "student_status" in chain.reason
    assert "Test root" in chain.reason


async def test_a_claim_type_outside_the_accreditation_is_rejected() -> None:
    root_signer, root, dp, _, issued = await _dp_credential("membership")
    token = await _accreditation(root_signer, root, dp, ["student_status"])
    trust = verifier.TrustContext(anchors=[root], accreditation=_lookup({dp.key_id: token}))
    report = await verifier.verify_credential(issued.token, trust, options())
    assert check(report, "chain") == ("fail", "claim_type_not_accredited")
    assert "membership" in report.failures()[0].reason


async def test_an_unknown_root_is_rejected() -> None:
    root_signer, root, dp, _, issued = await _dp_credential()
    token = await _accreditation(root_signer, root, dp, ["student_status"])
    other_root = (await make_chain())[1]
    trust = verifier.TrustContext(anchors=[other_root], accreditation=_lookup({dp.key_id: token}))
    report = await verifier.verify_credential(issued.token, trust, options())
    assert check(report, "chain") == ("fail", "unknown_root")


async def test_expired_links_are_rejected_each_with_its_reason() -> None:
    # The DP certificate expired (10 days), while the credential would still be valid.
    root_signer, root, dp, _, issued = await _dp_credential(leaf_days=10)
    token = await _accreditation(root_signer, root, dp, ["student_status"])
    trust = verifier.TrustContext(anchors=[root], accreditation=_lookup({dp.key_id: token}))
    later = NOW + timedelta(days=15)
    report = await verifier.verify_credential(issued.token, trust, options(now=later))
    assert check(report, "chain") == ("fail", "expired_link")
    assert "leaf certificate" in _reason(report)
    # The accreditation expired (10 days) while the certificate did not.
    root_signer, root, dp, _, issued = await _dp_credential()
    token = await _accreditation(root_signer, root, dp, ["student_status"], days=10)
    trust = verifier.TrustContext(anchors=[root], accreditation=_lookup({dp.key_id: token}))
    report = await verifier.verify_credential(issued.token, trust, options(now=later))
    assert check(report, "chain") == ("fail", "expired_link")
    assert "accreditation expired" in _reason(report)


async def test_accreditation_problems_each_have_a_reason() -> None:
    root_signer, root, dp, _, issued = await _dp_credential()
    no_lookup = verifier.TrustContext(anchors=[root])
    report = await verifier.verify_credential(issued.token, no_lookup, options())
    assert check(report, "chain") == ("fail", "accreditation_missing")

    wrong_key = await _accreditation(
        root_signer, root, dp, ["student_status"], issuing_key="A" * 43
    )
    report = await verifier.verify_credential(
        issued.token,
        verifier.TrustContext(anchors=[root], accreditation=_lookup({dp.key_id: wrong_key})),
        options(),
    )
    assert check(report, "chain") == ("fail", "accreditation_key_mismatch")

    other_root_signer, other_root, _, _ = await make_chain()
    foreign = await _accreditation(other_root_signer, other_root, dp, ["student_status"])
    report = await verifier.verify_credential(
        issued.token,
        verifier.TrustContext(anchors=[root], accreditation=_lookup({dp.key_id: foreign})),
        options(),
    )
    assert check(report, "chain") == ("fail", "accreditation_wrong_issuer")

    report = await verifier.verify_credential(
        issued.token,
        verifier.TrustContext(anchors=[root], accreditation=_lookup({dp.key_id: "garbage"})),
        options(),
    )
    assert check(report, "chain") == ("fail", "accreditation_invalid")

    not_an_accreditation = await vc2.sign(
        vc2.build_document(
            credential_id="urn:uuid:1b7e2a4e-52a3-4a85-a2f4-1f6a3b9f7e10",
            issuer="https://connector.example",
            template=TEMPLATES["student_status@1"],
            subject={"studentStatus": {"current": True}},
            valid_from=NOW,
            valid_until=NOW + timedelta(days=1),
        ),
        root_signer,
        issued_at=NOW,
        x5c=[trust_x509.to_x5c(root)],
    )
    report = await verifier.verify_credential(
        issued.token,
        verifier.TrustContext(
            anchors=[root], accreditation=_lookup({dp.key_id: not_an_accreditation})
        ),
        options(),
    )
    assert check(report, "chain") == ("fail", "accreditation_invalid")

    token = await _accreditation(root_signer, root, dp, ["student_status"])
    with pytest.raises(CheckFailed) as raised:
        await verifier.verify_accreditation(token, root, NOW - timedelta(days=2))
    assert raised.value.code == "accreditation_not_yet_valid"


async def test_a_credential_signed_by_the_root_itself_needs_no_accreditation() -> None:
    root_signer, root, _, _ = await make_chain()
    issued = await issue(CredentialFormat.VC2_JOSE, root_signer, x5c=(trust_x509.to_x5c(root),))
    report = await verifier.verify_credential(
        issued.token, verifier.TrustContext(anchors=[root]), options()
    )
    assert check(report, "chain") == ("pass", None)


async def test_an_untemplated_credential_from_a_dp_key_cannot_be_accredited() -> None:
    root_signer, root, dp, leaf = await make_chain()
    issued = await sd_jwt.issue(
        signer=dp,
        issuer="https://connector.example",
        vct="urn:example:other",
        claims={"x": 1},
        issued_at=NOW,
        valid_until=NOW + timedelta(days=1),
        x5c=[trust_x509.to_x5c(leaf)],
    )
    token = await _accreditation(root_signer, root, dp, ["student_status"])
    report = await verifier.verify_credential(
        issued.token,
        verifier.TrustContext(anchors=[root], accreditation=_lookup({dp.key_id: token})),
        options(),
    )
    assert check(report, "chain") == ("fail", "claim_type_unknown")
