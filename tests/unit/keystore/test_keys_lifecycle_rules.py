"""Pure lifecycle rules, the signing counters and the audited signer wrapper."""

from __future__ import annotations

import threading

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pavilion.errors import Conflict, CryptoError, InvalidRequest, NotFound
from pavilion.keystore.base import (
    AuditedSigner,
    KeyLifecycleError,
    KeyMeta,
    KeyUsage,
    check_activation,
    check_algorithm,
    check_creation,
    check_retirement,
    choose_active,
    find_key,
    new_key_name,
)
from pavilion.keystore.software_signer import SoftwareSigner


def meta(key_id: str, state: str, created: str, purpose: str = "credential-signing") -> KeyMeta:
    return KeyMeta(key_id, f"name-{key_id}", purpose, "ES256", state, created, "software")  # type: ignore[arg-type]


def test_algorithms_must_fit_the_purpose_and_errors_name_the_field() -> None:
    assert check_algorithm("credential-signing", "EdDSA") == ("credential-signing", "EdDSA")
    with pytest.raises(InvalidRequest) as wrong:
        check_algorithm("audit-signing", "ES256")
    assert wrong.value.field == "algorithm"
    with pytest.raises(InvalidRequest) as purpose:
        check_algorithm("signing", "ES256")
    assert purpose.value.field == "purpose"
    with pytest.raises(CryptoError, match="unsupported key algorithm 'RS256'"):
        check_algorithm("credential-signing", "RS256")


def test_the_active_key_cannot_be_retired_and_a_retired_key_never_returns() -> None:
    with pytest.raises(KeyLifecycleError, match="rotate to a new key first"):
        check_retirement(meta("a", "active", "1"))
    check_retirement(meta("a", "inactive", "1"))
    check_retirement(meta("a", "pending", "1"))
    with pytest.raises(KeyLifecycleError, match="never used again"):
        check_activation(meta("a", "retired", "1"))
    check_activation(meta("a", "inactive", "1"))
    assert issubclass(KeyLifecycleError, Conflict)


def test_audit_keys_are_pinned_because_checkpoints_verify_with_one_key() -> None:
    audit = meta("a", "inactive", "1", purpose="audit-signing")
    for step in (check_activation, check_retirement):
        with pytest.raises(KeyLifecycleError, match="audit key history"):
            step(audit)
    with pytest.raises(KeyLifecycleError, match="audit-signing"):
        check_creation("audit-signing")
    check_creation("credential-signing")


def test_the_newest_active_key_wins_a_race_and_lookups_take_kid_or_name() -> None:
    keys = [meta("old", "active", "2026-01-01"), meta("new", "active", "2026-02-01")]
    assert choose_active(keys, "credential-signing", "ES256").key_id == "new"
    with pytest.raises(CryptoError, match="no active credential-signing EdDSA key"):
        choose_active(keys, "credential-signing", "EdDSA")
    assert find_key(keys, "old").key_id == "old"
    assert find_key(keys, "name-new").key_id == "new"
    with pytest.raises(NotFound, match="no key 'x'"):
        find_key(keys, "x")
    assert new_key_name("ES256", "abcd").startswith("es256-")


def test_usage_counts_per_key_and_purpose_and_survives_a_failed_flush() -> None:
    usage = KeyUsage()
    for _ in range(3):
        usage.record("k1", "credential-signing", "ES256")
    usage.record("k2", "audit-signing", "EdDSA")
    usage.event("created-default", meta("k1", "active", "1"))
    assert usage.pending() == 5
    counts, events = usage.drain()
    assert usage.pending() == 0
    assert {(c.key_id, c.count) for c in counts} == {("k1", 3), ("k2", 1)}
    usage.record("k1", "credential-signing", "ES256")  # arrives while the flush fails
    usage.restore(counts, events)
    merged, kept = usage.drain()
    assert {(c.key_id, c.count) for c in merged} == {("k1", 4), ("k2", 1)}
    assert [e.action for e in kept] == ["created-default"]


def test_counting_is_thread_safe() -> None:
    usage = KeyUsage()

    def sign_many() -> None:
        for _ in range(2000):
            usage.record("k", "credential-signing", "ES256")

    threads = [threading.Thread(target=sign_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert usage.drain()[0][0].count == 8000


async def test_the_audited_signer_counts_and_signs_what_the_key_signs() -> None:
    usage = KeyUsage()
    inner = SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))
    signer = AuditedSigner(inner, "credential-signing", usage)
    assert (signer.key_id, signer.algorithm, signer.purpose) == (
        inner.key_id,
        "ES256",
        "credential-signing",
    )
    assert signer.inner is inner
    assert signer.public_jwk() == inner.public_jwk()
    assert "credential-signing" in repr(signer)
    signature = await signer.sign(b"payload")
    public = jwt.PyJWK(inner.public_jwk()).key
    assert jwt.get_algorithm_by_name("ES256").verify(b"payload", public, signature)
    counts, _ = usage.drain()
    assert [(c.key_id, c.purpose, c.count) for c in counts] == [
        (inner.key_id, "credential-signing", 1)
    ]
