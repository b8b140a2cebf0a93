"""The ingest stores' decisions over a fake session (the database paths run in the
integration tests; these pin the answers of the error paths)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest_support import ec_key, public_jwk
from pavilion.errors import Conflict, NotFound, VerificationFailed
from pavilion.ingest import batch_store, profile_store
from pavilion.ingest.models import RosterBatch

AT = datetime(2026, 1, 1, tzinfo=UTC)


class _Result:
    def __init__(self, value: Any) -> None:
        self.value = value

    def scalar_one_or_none(self) -> Any:
        return self.value

    def scalar_one(self) -> Any:
        return self.value

    def scalars(self) -> Iterable[Any]:
        return iter(self.value or [])

    def all(self) -> list[Any]:
        return list(self.value or [])


class FakeSession:
    """Answers each ``execute`` with the next prepared value."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.added: list[Any] = []

    async def execute(self, *_args: Any, **_kw: Any) -> _Result:
        return _Result(self.answers.pop(0))

    def add(self, row: Any) -> None:
        self.added.append(row)


async def test_unknown_providers_and_profiles() -> None:
    with pytest.raises(NotFound, match="provider p1 does not exist"):
        await profile_store.provider_exists(FakeSession(None), "t", "p1")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="POST one to /v1/providers/p1/mappings first"):
        await profile_store.get_profile(FakeSession(None, "p1"), "t", "p1")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no mapping version 3"):
        await profile_store.get_profile(FakeSession(None, "p1"), "t", "p1", 3)  # type: ignore[arg-type]
    assert await profile_store.list_profiles(FakeSession("p1", []), "t", "p1") == []  # type: ignore[arg-type]
    assert await batch_store.list_batches(FakeSession("p1", []), "t", "p1", limit=5) == []  # type: ignore[arg-type]


async def test_a_key_is_registered_once() -> None:
    jwk = public_jwk(ec_key())
    with pytest.raises(Conflict, match="already registered"):
        await profile_store.add_upload_key(FakeSession("p1", "existing"), "t", "p1", jwk, AT)  # type: ignore[arg-type]
    session = FakeSession("p1", None)
    added = await profile_store.add_upload_key(session, "t", "p1", jwk, AT)  # type: ignore[arg-type]
    assert added["kty"] == "EC"
    assert session.added[0].kid == added["kid"]


class _Store:
    def __init__(self, count: int, digest: str, batches: set[str]) -> None:
        self.answer = (count, digest, batches)

    async def digest(self, *_args: Any) -> tuple[int, str, set[str]]:
        return self.answer


async def test_batch_verification_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    row = RosterBatch(
        id="b1",
        provider_id="p1",
        status="applied",
        input_sha256="i",
        input_bytes=1,
        output_sha256="o",
        rows_total=1,
        rows_valid=1,
        rows_invalid=0,
        rows_applied=1,
        manifest={},
        manifest_jws="x",
    )
    signed = {
        "batch_id": "b1",
        "provider_id": "p1",
        "status": "applied",
        "input_sha256": "i",
        "input_bytes": 1,
        "output_sha256": "o",
        "rows_total": 1,
        "rows_valid": 1,
        "rows_invalid": 0,
        "rows_applied": 1,
    }
    monkeypatch.setattr(batch_store, "verify_manifest", lambda *_: dict(signed))

    async def verify(session: FakeSession, store: _Store) -> str:
        return await batch_store.verify_batch(session, "t", row, [], store)  # type: ignore[arg-type]

    assert await verify(FakeSession("b2"), _Store(1, "o", {"b2"})) == (
        "verified (manifest; records since replaced by a later batch)"
    )
    assert await verify(FakeSession("b1"), _Store(1, "o", {"b1"})) == (
        "verified (manifest and stored records)"
    )
    with pytest.raises(VerificationFailed, match="0 records stored, 1 signed"):
        await verify(FakeSession("b1"), _Store(0, "e", set()))
    with pytest.raises(VerificationFailed, match="output digest differs"):
        await verify(FakeSession("b1"), _Store(1, "forged", {"b1"}))
    row.rows_valid = 2
    with pytest.raises(VerificationFailed, match="rows_valid"):
        await verify(FakeSession("b1"), _Store(1, "o", {"b1"}))
