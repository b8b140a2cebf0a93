"""AnonCreds through anoncreds-rs: false predicates, revocation, and what a proof reveals."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest

from pavilion.credentials.anoncreds import engine
from pavilion.errors import InvalidRequest, VerificationFailed
from pavilion.privacy import zkp
from pavilion.privacy.zkp import PredicateClaim, PredicateKind
from privacy_support import fixture_material

TODAY = date(2026, 6, 15)
VALUES = {
    "birthdate_dateint": "20010203",
    "student_current": "1",
    "group": "chess club",
    "group_member": "1",
}


class Wallet:
    """An issuer with one small registry, and a holder with one credential in it."""

    def __init__(self, tails: Path, index: int = 1) -> None:
        self.issuer = fixture_material()
        self.now = int(time.time())
        self.registry = engine.create_registry(
            self.issuer,
            f"{self.issuer.issuer_id}/revocation-registries/unit-{index}",
            tag=f"u{index}",
            max_cred_num=4,
            timestamp=self.now - 60,
            tails_dir=tails,
        )
        self.tails = tails / self.registry.tails_hash
        self.index = index
        self.holder = engine.Holder.ephemeral()
        offer = engine.create_offer(self.issuer)
        request, metadata = engine.create_request(self.holder, self.issuer.cred_def_json, offer)
        issued = engine.issue_credential(
            self.issuer,
            offer,
            request,
            VALUES,
            rev_reg_def_json=self.registry.rev_reg_def_json,
            rev_reg_private_json=self.registry.private_json,
            status_list_json=self.registry.status_list_json,
            index=index,
        )
        self.credential = engine.process_credential(
            self.holder, issued, metadata, self.issuer.cred_def_json, self.registry.rev_reg_def_json
        )

    def request(self, claim: PredicateClaim, *, start: int | None = None) -> dict[str, object]:
        request = zkp.build_request(
            claim,
            cred_def_id=self.issuer.cred_def_id,
            today=TODAY,
            now=self.now,
            nonce=engine.generate_nonce(),
        )
        if start is not None:
            request["non_revoked"] = {"from": start, "to": self.now + 5}
        return request

    def present(self, request: dict[str, object], status_list: str, timestamp: int) -> str:
        state = engine.revocation_state(
            self.registry.rev_reg_def_json, status_list, self.index, self.tails
        )
        return engine.create_presentation(
            request,
            self.holder,
            self.credential,
            timestamp=timestamp,
            revocation_state_json=state,
            schemas={self.issuer.schema_id: self.issuer.schema_json},
            cred_defs={self.issuer.cred_def_id: self.issuer.cred_def_json},
        )

    def verify(self, presentation: str, request: dict[str, object], status_list: str) -> bool:
        return engine.verify_presentation(
            presentation,
            request,
            schemas={self.issuer.schema_id: self.issuer.schema_json},
            cred_defs={self.issuer.cred_def_id: self.issuer.cred_def_json},
            rev_reg_defs={self.registry.rev_reg_def_id: self.registry.rev_reg_def_json},
            status_lists=[status_list],
        )


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    return Wallet(tmp_path)


def test_a_true_predicate_proves_and_reveals_no_birth_date(wallet: Wallet) -> None:
    request = wallet.request(PredicateClaim(PredicateKind.AGE_OVER, threshold=21))
    status = wallet.registry.status_list_json
    presentation = wallet.present(request, status, wallet.registry.timestamp)
    assert wallet.verify(presentation, request, status)
    for secret in ("20010203", "2001-02-03", "chess club"):
        assert secret not in presentation
    proof = json.loads(presentation)
    assert proof["requested_proof"]["revealed_attrs"] == {}
    assert list(proof["requested_proof"]["predicates"]) == ["pred0"]
    assert proof["identifiers"][0]["timestamp"] == wallet.registry.timestamp


def test_membership_reveals_the_club_and_nothing_else(wallet: Wallet) -> None:
    request = wallet.request(PredicateClaim(PredicateKind.MEMBERSHIP, group="Chess Club"))
    status = wallet.registry.status_list_json
    presentation = wallet.present(request, status, wallet.registry.timestamp)
    assert wallet.verify(presentation, request, status)
    revealed = json.loads(presentation)["requested_proof"]["revealed_attrs"]
    assert [entry["raw"] for entry in revealed.values()] == ["chess club"]
    assert "20010203" not in presentation


def test_a_false_predicate_cannot_be_proved(wallet: Wallet) -> None:
    request = wallet.request(PredicateClaim(PredicateKind.AGE_OVER, threshold=65))
    with pytest.raises(engine.PredicateUnsatisfied):
        wallet.present(request, wallet.registry.status_list_json, wallet.registry.timestamp)


def test_a_revoked_credential_fails_verification(wallet: Wallet) -> None:
    claim = PredicateClaim(PredicateKind.STUDENT_STATUS)
    before = wallet.registry.status_list_json
    revoked_at = wallet.now
    after = engine.update_status_list(
        wallet.issuer,
        wallet.registry.rev_reg_def_json,
        wallet.registry.private_json,
        before,
        revoked=[wallet.index],
        timestamp=revoked_at,
    )
    assert engine.revocation_list(after)[wallet.index] == 1
    request = wallet.request(claim, start=revoked_at)
    presentation = wallet.present(request, after, revoked_at)
    assert not wallet.verify(presentation, request, after)
    # A timestamp-only publication keeps the state and moves the time.
    later = engine.update_status_list(
        wallet.issuer,
        wallet.registry.rev_reg_def_json,
        wallet.registry.private_json,
        after,
        revoked=[],
        timestamp=revoked_at + 1,
    )
    assert engine.revocation_list(later) == engine.revocation_list(after)
    assert json.loads(later)["timestamp"] == revoked_at + 1


def test_engine_errors_are_typed(wallet: Wallet, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="at least one entry"):
        engine.create_registry(
            wallet.issuer, "x", tag="t", max_cred_num=0, timestamp=1, tails_dir=tmp_path
        )
    with pytest.raises(InvalidRequest, match="exactly the attributes"):
        engine.issue_credential(
            wallet.issuer,
            "{}",
            "{}",
            {"group": "x"},
            rev_reg_def_json="",
            rev_reg_private_json="",
            status_list_json="",
            index=1,
        )
    offer = engine.create_offer(wallet.issuer)
    request, _ = engine.create_request(wallet.holder, wallet.issuer.cred_def_json, offer)
    with pytest.raises(engine.AnoncredsFailure):  # slot 0 is reserved by anoncreds-rs
        engine.issue_credential(
            wallet.issuer,
            offer,
            request,
            VALUES,
            rev_reg_def_json=wallet.registry.rev_reg_def_json,
            rev_reg_private_json=wallet.registry.private_json,
            status_list_json=wallet.registry.status_list_json,
            index=0,
        )
    with pytest.raises(VerificationFailed):
        engine.verify_presentation(
            "{}", {}, schemas={}, cred_defs={}, rev_reg_defs={}, status_lists=[]
        )
    with pytest.raises(InvalidRequest, match="identifiers"):
        engine.presentation_identifiers("[]")
    with pytest.raises(InvalidRequest, match="malformed"):
        engine.presentation_identifiers('{"identifiers": [1]}')
    assert engine.offer_nonce(offer).isdigit()


def test_library_failures_become_typed_errors(wallet: Wallet, tmp_path: Path) -> None:
    broken = engine.IssuerMaterial(
        issuer_id="not a uri",
        schema_id="s",
        schema_json="{}",
        cred_def_id="c",
        cred_def_json="{}",
        key_proof_json="{}",
        cred_def_private_json="{}",
    )
    calls = [
        lambda: engine.create_issuer("not a valid issuer id"),
        lambda: engine.create_registry(
            broken, "r", tag="t", max_cred_num=2, timestamp=1, tails_dir=tmp_path
        ),
        lambda: engine.update_status_list(broken, "{}", "{}", "{}", revoked=[1], timestamp=1),
        lambda: engine.create_offer(broken),
        lambda: engine.create_request(wallet.holder, "{}", "{}"),
        lambda: engine.process_credential(wallet.holder, "{}", "{}", "{}", "{}"),
        lambda: engine.revocation_state("{}", "{}", 1, tmp_path / "none"),
        lambda: engine.create_presentation(
            {},
            wallet.holder,
            "{}",
            timestamp=1,
            revocation_state_json="{}",
            schemas={},
            cred_defs={},
        ),
    ]
    for call in calls:
        with pytest.raises(engine.AnoncredsFailure):
            call()
