"""Status and freshness checks, and the integrity report that carries every check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from credentials_support import NOW, check, es256, issue, options, resign, split_jws, trust_for
from pavilion.credentials import issuance, verifier
from pavilion.credentials.report import (
    CheckFailed,
    CheckName,
    CheckStatus,
    IntegrityReport,
    failed,
    not_checked,
    passed,
)
from pavilion.credentials.templates import CredentialFormat

TOKEN_LIST = "https://connector.example/status/token/1"
BITSTRING = "https://connector.example/status/bitstring/1"


def _statuses(values: dict[tuple[str, int], int]) -> verifier.StatusLookup:
    async def lookup(uri: str, index: int) -> int:
        return values[uri, index]

    return lookup


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, ("pass", None)),
        (1, ("fail", "revoked")),
        (2, ("fail", "suspended")),
        (3, ("fail", "status_unknown")),
    ],
)
@pytest.mark.parametrize("fmt", [CredentialFormat.SD_JWT_VC, CredentialFormat.JWT_VC])
async def test_token_status_list_values_decide_the_status_check(
    fmt: CredentialFormat, value: int, expected: tuple[str, str | None]
) -> None:
    signer = es256()
    issued = await issue(fmt, signer, status=issuance.StatusReference(TOKEN_LIST, 41))
    trust = trust_for(signer, status=_statuses({(TOKEN_LIST, 41): value}))
    report = await verifier.verify_credential(issued.token, trust, options())
    assert check(report, "status") == expected
    assert report.verified is (expected[0] == "pass")


@pytest.mark.parametrize(
    ("purpose", "value", "expected"),
    [
        ("revocation", 0, ("pass", None)),
        ("revocation", 1, ("fail", "revoked")),
        ("suspension", 1, ("fail", "suspended")),
        ("message", 1, ("pass", None)),
    ],
)
async def test_bitstring_entries_decide_by_purpose(
    purpose: str, value: int, expected: tuple[str, str | None]
) -> None:
    signer = es256()
    status = issuance.StatusReference(BITSTRING, 131_000, purpose)
    issued = await issue(CredentialFormat.VC2_JOSE, signer, status=status)
    assert split_jws(issued.token)[1]["credentialStatus"][0] == {
        "id": f"{BITSTRING}#131000",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": "131000",
        "statusListCredential": BITSTRING,
    }
    trust = trust_for(signer, status=_statuses({(BITSTRING, 131_000): value}))
    report = await verifier.verify_credential(issued.token, trust, options())
    assert check(report, "status") == expected


async def test_status_is_not_checked_without_a_lookup_or_without_an_entry() -> None:
    signer = es256()
    with_entry = await issue(
        CredentialFormat.SD_JWT_VC, signer, status=issuance.StatusReference(TOKEN_LIST, 1)
    )
    report = await verifier.verify_credential(with_entry.token, trust_for(signer), options())
    assert check(report, "status") == ("not_checked", "no_status_lookup")
    assert report.verified  # not checked is not a failure
    without = await issue(CredentialFormat.SD_JWT_VC, signer)
    report = await verifier.verify_credential(
        without.token, trust_for(signer, status=_statuses({})), options()
    )
    assert check(report, "status") == ("not_checked", None)


async def test_an_unreadable_status_list_fails_closed() -> None:
    async def broken(uri: str, index: int) -> int:
        raise ConnectionError("list unreachable")

    signer = es256()
    issued = await issue(
        CredentialFormat.JWT_VC, signer, status=issuance.StatusReference(TOKEN_LIST, 1)
    )
    report = await verifier.verify_credential(
        issued.token, trust_for(signer, status=broken), options()
    )
    assert check(report, "status") == ("fail", "status_unavailable")
    assert "ConnectionError" in report.failures()[0].reason


@pytest.mark.parametrize(
    "status",
    [
        {"status_list": {"idx": "1", "uri": TOKEN_LIST}},
        {"status_list": {"idx": -1, "uri": TOKEN_LIST}},
        {"status_list": {"idx": True, "uri": TOKEN_LIST}},
        {"status_list": {"idx": 1}},
    ],
)
async def test_malformed_token_status_references_fail_the_schema(status: dict[str, Any]) -> None:
    signer = es256()
    issued = await issue(CredentialFormat.JWT_VC, signer)
    header, claims, _ = split_jws(issued.token)
    token = await resign(header, {**claims, "status": status}, signer)
    report = await verifier.verify_credential(token, trust_for(signer), options())
    assert check(report, "schema") == ("fail", "bad_status")


async def test_malformed_bitstring_entries_fail_the_schema() -> None:
    signer = es256()
    issued = await issue(
        CredentialFormat.VC2_JOSE, signer, status=issuance.StatusReference(BITSTRING, 5)
    )
    header, claims, _ = split_jws(issued.token)
    claims["credentialStatus"][0]["statusListIndex"] = "five"
    token = await resign(header, claims, signer)
    report = await verifier.verify_credential(token, trust_for(signer), options())
    assert check(report, "schema") == ("fail", "bad_status")


async def test_other_token_status_shapes_are_ignored() -> None:
    signer = es256()
    issued = await issue(CredentialFormat.JWT_VC, signer)
    header, claims, _ = split_jws(issued.token)
    token = await resign(header, {**claims, "status": {"other_mechanism": {}}}, signer)
    report = await verifier.verify_credential(
        token, trust_for(signer, status=_statuses({})), options()
    )
    assert check(report, "status") == ("not_checked", None)


# -- freshness ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(CredentialFormat))
async def test_freshness_reports_fresh_then_stale_with_the_reason(fmt: CredentialFormat) -> None:
    signer = es256()
    issued = await issue(fmt, signer, vouched=timedelta(days=20))
    fresh = await verifier.verify_credential(issued.token, trust_for(signer), options())
    assert check(fresh, "freshness") == ("pass", None)
    reason = fresh.get(CheckName.FRESHNESS).reason  # type: ignore[union-attr]
    assert "20 days ago" in reason
    assert "student_status allows 30 days" in reason
    # 11 days later the DP's answer is 31 days old: stale, though the credential is still valid.
    later = NOW + timedelta(days=11)
    stale = await verifier.verify_credential(issued.token, trust_for(signer), options(now=later))
    assert check(stale, "freshness") == ("fail", "stale")
    assert check(stale, "validity") == ("pass", None)
    assert "stale" in stale.get(CheckName.FRESHNESS).reason  # type: ignore[union-attr]


async def test_a_verifier_may_demand_fresher_data_but_not_accept_older() -> None:
    signer = es256()
    issued = await issue(CredentialFormat.VC2_JOSE, signer, vouched=timedelta(days=3))
    strict = await verifier.verify_credential(
        issued.token, trust_for(signer), options(max_age=timedelta(days=2))
    )
    assert check(strict, "freshness") == ("fail", "stale")
    lax = await verifier.verify_credential(
        issued.token,
        trust_for(signer),
        options(now=NOW + timedelta(days=29), max_age=timedelta(days=100)),
    )
    assert check(lax, "freshness") == ("fail", "stale")


async def test_a_templated_credential_without_an_attestation_fails_freshness() -> None:
    signer = es256()
    issued = await issue(CredentialFormat.JWT_VC, signer)
    header, claims, _ = split_jws(issued.token)
    del claims["vc"]["evidence"]
    token = await resign(header, claims, signer)
    report = await verifier.verify_credential(token, trust_for(signer), options())
    assert check(report, "freshness") == ("fail", "vouched_at_missing")


async def test_the_age_over_template_allows_a_year() -> None:
    signer = es256()
    issued = await issue(
        CredentialFormat.SD_JWT_VC,
        signer,
        claim_type="age_over",
        subject={"ageOver": {"threshold": 21, "over": True}},
        vouched=timedelta(days=200),
    )
    report = await verifier.verify_credential(issued.token, trust_for(signer), options())
    assert check(report, "freshness") == ("pass", None)
    assert report.claims is not None
    assert report.claims["age_equal_or_over"] == {"21": True}


# -- the report ---------------------------------------------------------------------------------


def test_the_report_is_verified_only_without_failures() -> None:
    report = IntegrityReport(format="vc2_jose")
    assert not report.verified  # nothing checked is not verified
    report.add(passed(CheckName.SIGNATURE, "ok"))
    report.add(not_checked(CheckName.STATUS, "no lookup", code="no_status_lookup"))
    assert report.verified
    report.add(failed(CheckName.VALIDITY, "expired", "expired at ..."))
    assert not report.verified
    report.add(passed(CheckName.VALIDITY, "valid now"))  # a check is replaced, not duplicated
    assert report.verified
    assert [c.name for c in report.checks] == [
        CheckName.SIGNATURE,
        CheckName.STATUS,
        CheckName.VALIDITY,
    ]
    report.skip_remaining([CheckName.SIGNATURE, CheckName.CHAIN], "because")
    assert report.get(CheckName.CHAIN) == not_checked(CheckName.CHAIN, "because")
    assert report.to_json() == {
        "verified": True,
        "format": "vc2_jose",
        "checks": [
            {"check": "signature", "status": "pass", "reason": "ok"},
            {
                "check": "status",
                "status": "not_checked",
                "reason": "no lookup",
                "code": "no_status_lookup",
            },
            {"check": "validity", "status": "pass", "reason": "valid now"},
            {"check": "chain", "status": "not_checked", "reason": "because"},
        ],
    }
    error = CheckFailed(CheckName.CHAIN, "unknown_root", "unknown root")
    assert error.as_check().status is CheckStatus.FAIL
    assert error.extra == {"check": "chain", "code": "unknown_root"}


async def test_detect_format_by_structure_and_typ() -> None:
    signer = es256()
    issued = await issue(CredentialFormat.VC2_JOSE, signer)
    header, claims, _ = split_jws(issued.token)
    untyped = await resign(
        {k: v for k, v in header.items() if k not in ("typ", "cty")}, claims, signer
    )
    assert verifier.detect_format(untyped) is CredentialFormat.VC2_JOSE
    sd_typed = await resign({**header, "typ": "dc+sd-jwt"}, claims, signer)
    assert verifier.detect_format(sd_typed) is CredentialFormat.SD_JWT_VC
    nothing = await resign({"alg": "ES256", "kid": signer.key_id}, {"a": 1}, signer)
    with pytest.raises(CheckFailed) as raised:
        verifier.detect_format(nothing)
    assert raised.value.code == "unknown_format"
    weird_typ = await resign({**header, "typ": "at+jwt"}, {"vc": {}}, signer)
    report = await verifier.verify_credential(weird_typ, trust_for(signer), options())
    assert check(report, "schema") == ("fail", "bad_typ")
