"""Status lists over the database: allocate, bind, change, publish, resolve.

**Allocation.** :meth:`StatusListService.reserve` hands out a random, never used index of the
tenant's open group. Indices are drawn by :func:`~pavilion.credentials.status.allocation.
allocate_index` over this process's view of the used ones and inserted as ``reserved`` entries,
a batch (``reserve_batch``) per transaction, with ``ON CONFLICT DO NOTHING``: the
``UNIQUE(group_id, idx)`` constraint, not a lock, settles a race with another process (its
index is skipped, and a process that keeps losing re-reads the used set). The batch is then
handed out from memory, so issuance costs no extra transaction most of the time. The
reservation is committed before the credential is signed, because the index is inside the
signed credential; :meth:`StatusListService.bind` then marks it ``valid`` for the credential in
the same transaction that records the credential (and appends its audit leaf). A reserved
index whose credential never gets recorded (a failed issuance, or a process that stops with
part of a batch unused) stays ``reserved`` forever: it publishes 0 like any valid index (a
decoy) and is never handed out again. No list row is locked on the issuance path, so issuance
never waits on a revocation.

When every index of a group is taken (:class:`~pavilion.credentials.status.allocation.
StatusListFull`) the group is marked ``full`` and a new one opens; full lists are still
served and still change.

**Publishing.** A list's bits are derived from its entries (the only source of truth). The
signed list (an IETF Status List Token, or a W3C ``BitstringStatusListCredential`` secured as
``vc+jwt``) is cached in the list row with the ``version`` it reflects; every status change
bumps the version, and a list is re-signed when its version moved or half of its lifetime has
passed. Every node therefore serves the same bytes (one ETag) until something changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.journal import Transition
from pavilion.audit.log import AuditLog, digest
from pavilion.credentials.status.allocation import StatusListFull, allocate_index
from pavilion.credentials.status.bitstring import (
    MIN_ENTRIES,
    BitstringStatusList,
    status_list_credential_subject,
    status_list_entry,
)
from pavilion.credentials.status.models import StatusList, StatusListEntry
from pavilion.credentials.status.resolver import RemoteStatusResolver, StatusUnavailable
from pavilion.credentials.status.states import (
    Action,
    ListKind,
    StatusConflict,
    check_action,
    check_kind,
    list_value,
    published_states,
    supports_suspension,
    transition,
)
from pavilion.credentials.status.token_status_list import (
    TokenStatusList,
    status_list_jwt_header,
)
from pavilion.errors import Conflict, InvalidRequest, NotFound, StorageUnavailable
from pavilion.jose import sign_compact
from pavilion.keystore.base import Keystore
from pavilion.store.base import new_id
from pavilion.store.database import Database

TOKEN_MEDIA_TYPE = "application/statuslist+jwt"  # noqa: S105 - a media type
BITSTRING_MEDIA_TYPE = "application/vc+jwt"
VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
PATHS: dict[str, str] = {"token": "/status/v1/token/", "bitstring": "/status/v1/bitstring/"}
#: Reservation attempts before giving up (each failed one is a race lost to another process).
MAX_RESERVE_ATTEMPTS = 64
#: Random draws before allocate_index scans a nearly full list for its free indices.
DRAWS_BEFORE_SCAN = 1024


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StatusListConfig:
    """How lists are shaped, published and cached."""

    base_url: str
    issuer: str
    token_bits: int = 2
    token_size: int = MIN_ENTRIES
    bitstring_size: int = MIN_ENTRIES
    #: How long a verifier may cache a list (the token's ``ttl``, the bitstring's ``ttl``).
    ttl_seconds: int = 300
    #: ``exp - iat`` of a signed list (``validUntil - validFrom`` for a bitstring).
    lifetime_seconds: int = 86_400
    #: Indices reserved per transaction and handed out from memory. A process that stops
    #: leaves at most this many reserved, unused indices per list: decoys, never reissued.
    reserve_batch: int = 32

    def __post_init__(self) -> None:
        if self.token_bits not in (1, 2, 4, 8):
            raise InvalidRequest("token_bits must be 1, 2, 4 or 8", field="status_list_bits")
        if self.token_size < 1:
            raise InvalidRequest("token_size must be positive", field="status_list_size")
        if self.reserve_batch < 1:
            raise InvalidRequest("reserve_batch must be positive", field="reserve_batch")
        if self.bitstring_size < MIN_ENTRIES:
            raise InvalidRequest(
                f"a bitstring list holds at least {MIN_ENTRIES} entries", field="status_list_size"
            )


@dataclass(frozen=True)
class ReservedList:
    list_id: str
    purpose: str
    uri: str


@dataclass(frozen=True)
class StatusReservation:
    """An index reserved for a credential about to be signed."""

    tenant_id: str
    kind: ListKind
    group_id: str
    idx: int
    entry_id: str
    lists: tuple[ReservedList, ...]

    def token_status(self) -> dict[str, Any]:
        """The value of a JOSE Referenced Token's ``status`` claim (IETF Token Status List)."""
        if self.kind != "token":
            raise InvalidRequest("a bitstring reservation has no token status claim", field="kind")
        return {"status_list": {"idx": self.idx, "uri": self.lists[0].uri}}

    def credential_status(self) -> list[dict[str, Any]]:
        """The ``credentialStatus`` entries of a VC 2.0 credential (W3C Bitstring Status List)."""
        if self.kind != "bitstring":
            raise InvalidRequest("a token reservation has no credentialStatus", field="kind")
        return [status_list_entry(item.uri, self.idx, item.purpose) for item in self.lists]


@dataclass(frozen=True)
class StatusChange:
    credential_id: str
    action: Action
    previous: str
    state: str
    changed: bool
    audit_index: int | None


class PublishedEntry(TypedDict):
    """Where one list publishes a credential: the list's URI, purpose and the index in it."""

    uri: str
    kind: str
    purpose: str
    idx: int
    value: int


class CredentialStatus(TypedDict):
    """A credential's state and every list entry that publishes it."""

    credential_id: str
    state: str
    lists: list[PublishedEntry]


@dataclass(frozen=True)
class PublishedList:
    """A signed list, ready to serve."""

    list_id: str
    kind: ListKind
    token: str
    media_type: str
    etag: str
    version: int
    expires_at: datetime
    max_age: int


@dataclass
class _Group:
    tenant_id: str
    kind: ListKind
    group_id: str
    size: int
    lists: tuple[ReservedList, ...]
    used: set[int] = field(default_factory=set)
    #: Indices reserved in the database and not handed out yet (this process only).
    pool: list[tuple[int, str]] = field(default_factory=list)
    conflicts: int = 0


def new_list_id(tenant_id: str) -> str:
    """32 hex digits of the tenant, 32 random hex digits."""
    return tenant_id.replace("-", "") + secrets.token_hex(16)


def tenant_of_list(list_id: str) -> str:
    """The tenant a list id encodes; :class:`NotFound` for anything that is not one."""
    if len(list_id) != 64 or any(c not in "0123456789abcdef" for c in list_id):
        raise NotFound(f"status list {list_id!r} does not exist")
    raw = list_id[:32]
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


class StatusListService:
    """Status lists of every tenant: the issuance, admin, publishing and verifier sides."""

    def __init__(
        self,
        db: Database,
        keystore: Keystore,
        audit: AuditLog,
        config: StatusListConfig,
        *,
        remote: RemoteStatusResolver | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._db = db
        self._keystore = keystore
        self._audit = audit
        self._config = config
        self._remote = remote or RemoteStatusResolver({})
        self._clock = clock
        self._groups: dict[tuple[str, str], _Group] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._base = config.base_url.rstrip("/")

    @property
    def config(self) -> StatusListConfig:
        return self._config

    async def aclose(self) -> None:
        await self._remote.aclose()

    def list_uri(self, kind: str, list_id: str) -> str:
        return f"{self._base}{PATHS[kind]}{list_id}"

    # -- allocation ---------------------------------------------------------------------------

    async def reserve(self, tenant_id: str, kind: str = "token") -> StatusReservation:
        """Reserve a random, never used index of the tenant's open list of ``kind``.

        Served from this process's pool of reserved indices; an empty pool is refilled with
        one batch (one transaction) of random free indices.
        """
        checked = check_kind(kind)
        key = (tenant_id, checked)
        for _ in range(MAX_RESERVE_ATTEMPTS):
            group = await self._open_group(tenant_id, checked)
            if group.pool:
                idx, entry_id = group.pool.pop()
                return StatusReservation(
                    tenant_id, checked, group.group_id, idx, entry_id, group.lists
                )
            async with self._lock(key):
                if self._groups.get(key) is not group or group.pool:
                    continue  # another caller refilled it, or rolled the list over
                if not await self._refill(group):
                    await self._close_group(group)
        raise StorageUnavailable(  # contention that a retry resolves
            f"could not reserve a status list index after {MAX_RESERVE_ATTEMPTS} attempts"
        )

    async def _refill(self, group: _Group) -> bool:
        """Reserve a batch of random free indices; ``False`` when the group has none left."""
        wanted: list[int] = []
        for _ in range(self._config.reserve_batch):
            try:
                idx = allocate_index(group.size, group.used, max_attempts=DRAWS_BEFORE_SCAN)
            except StatusListFull:
                break
            group.used.add(idx)
            wanted.append(idx)
        if not wanted:
            return False
        reserved = await self._insert_reserved(group, wanted)
        group.pool.extend(reserved)
        group.conflicts += len(wanted) - len(reserved)  # taken by another process first
        if group.conflicts >= 16:
            group.conflicts = 0
            await self._resync(group)
        return True

    async def bind(
        self,
        session: AsyncSession,
        tenant_id: str,
        reservation: StatusReservation,
        credential_id: str,
    ) -> None:
        """Mark a reserved index ``valid`` for ``credential_id``, in the caller's transaction."""
        if reservation.tenant_id != tenant_id:
            raise InvalidRequest("the reservation belongs to another tenant", field="tenant_id")
        result = await session.execute(
            update(StatusListEntry)
            .where(
                StatusListEntry.tenant_id == tenant_id,
                StatusListEntry.id == reservation.entry_id,
                StatusListEntry.state == "reserved",
            )
            .values(credential_id=credential_id, state="valid", updated_at=self._clock())
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"status index {reservation.idx} of group {reservation.group_id} is not reserved "
                "(already bound to a credential)"
            )

    def binding(
        self, tenant_id: str, reservation: StatusReservation, credential_id: str
    ) -> Transition:
        """``bind`` as a guarded change that the journal applies with its batch."""
        if reservation.tenant_id != tenant_id:
            raise InvalidRequest("the reservation belongs to another tenant", field="tenant_id")
        return Transition(
            model=StatusListEntry,
            row_id=reservation.entry_id,
            guard="state",
            expected="reserved",
            values={"credential_id": credential_id, "state": "valid", "updated_at": self._clock()},
            conflict=f"status index {reservation.idx} of group {reservation.group_id} is not "
            "reserved (already bound to a credential)",
        )

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _open_group(self, tenant_id: str, kind: ListKind) -> _Group:
        key = (tenant_id, kind)
        group = self._groups.get(key)
        if group is not None:
            return group
        async with self._lock(key):
            group = self._groups.get(key)
            if group is None:
                group = await self._load_open_group(tenant_id, kind) or await self._create_group(
                    tenant_id, kind
                )
                self._groups[key] = group
            return group

    async def _load_open_group(self, tenant_id: str, kind: ListKind) -> _Group | None:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            newest = (
                await session.execute(
                    select(StatusList.group_id)
                    .where(
                        StatusList.tenant_id == tenant_id,
                        StatusList.kind == kind,
                        StatusList.state == "open",
                    )
                    .order_by(StatusList.created_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if newest is None:
                return None
            rows = await self._group_lists(session, tenant_id, newest)
            used = await self._used(session, tenant_id, newest)
        return self._group_of(tenant_id, kind, rows, used)

    async def _group_lists(
        self, session: AsyncSession, tenant_id: str, group_id: str
    ) -> list[StatusList]:
        rows = (
            await session.execute(
                select(StatusList).where(
                    StatusList.tenant_id == tenant_id, StatusList.group_id == group_id
                )
            )
        ).scalars()
        order = {"status": 0, "revocation": 0, "suspension": 1}
        return sorted(rows, key=lambda r: order[r.purpose])

    async def _used(self, session: AsyncSession, tenant_id: str, group_id: str) -> set[int]:
        rows = await session.execute(
            select(StatusListEntry.idx).where(
                StatusListEntry.tenant_id == tenant_id, StatusListEntry.group_id == group_id
            )
        )
        return set(rows.scalars())

    def _group_of(
        self, tenant_id: str, kind: ListKind, rows: list[StatusList], used: set[int]
    ) -> _Group:
        lists = tuple(ReservedList(r.id, r.purpose, self.list_uri(kind, r.id)) for r in rows)
        return _Group(tenant_id, kind, rows[0].group_id, rows[0].size, lists, used)

    async def _create_group(self, tenant_id: str, kind: ListKind) -> _Group:
        now = self._clock()
        specs: list[tuple[str, int, int]]
        if kind == "token":
            specs = [("status", self._config.token_bits, self._config.token_size)]
        else:
            size = self._config.bitstring_size
            specs = [("revocation", 1, size), ("suspension", 1, size)]
        ids = [new_list_id(tenant_id) for _ in specs]
        rows = [
            StatusList(
                id=list_id,
                tenant_id=tenant_id,
                group_id=ids[0],
                kind=kind,
                purpose=purpose,
                bits=bits,
                size=size,
                state="open",
                version=0,
                created_at=now,
                updated_at=now,
            )
            for list_id, (purpose, bits, size) in zip(ids, specs, strict=True)
        ]
        async with self._db.transaction(tenant_id) as session:
            session.add_all(rows)
        return self._group_of(tenant_id, kind, rows, set())

    async def _close_group(self, group: _Group) -> None:
        """Mark a group full and forget it (the caller holds the group's lock)."""
        async with self._db.transaction(group.tenant_id) as session:
            await session.execute(
                update(StatusList)
                .where(
                    StatusList.tenant_id == group.tenant_id,
                    StatusList.group_id == group.group_id,
                )
                .values(state="full", updated_at=self._clock())
            )
        key = (group.tenant_id, group.kind)
        if self._groups.get(key) is group:
            del self._groups[key]

    async def _resync(self, group: _Group) -> None:
        async with self._db.transaction(group.tenant_id, readonly=True) as session:
            group.used |= await self._used(session, group.tenant_id, group.group_id)

    async def _insert_reserved(self, group: _Group, indices: list[int]) -> list[tuple[int, str]]:
        """Insert ``reserved`` entries; the ones another process took already are skipped."""
        now = self._clock()
        dialect_insert = postgresql.insert if self._db.is_postgres else sqlite.insert
        statement = (
            dialect_insert(StatusListEntry)
            .values(
                [
                    {
                        "id": new_id(),
                        "tenant_id": group.tenant_id,
                        "group_id": group.group_id,
                        "idx": idx,
                        "state": "reserved",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for idx in indices
                ]
            )
            .on_conflict_do_nothing(index_elements=["group_id", "idx"])
            .returning(StatusListEntry.idx, StatusListEntry.id)
        )
        async with self._db.transaction(group.tenant_id) as session:
            rows = (await session.execute(statement)).all()
        order = {idx: position for position, idx in enumerate(indices)}
        return sorted(((row[0], row[1]) for row in rows), key=lambda item: order[item[0]])

    # -- status changes -----------------------------------------------------------------------

    async def change_status(
        self,
        tenant_id: str,
        credential_id: str,
        action: str,
        *,
        actor: str,
        reason: str | None = None,
    ) -> StatusChange:
        """Revoke, suspend or reinstate a credential; audited in the tenant's log."""
        checked = check_action(action)
        if reason is not None and len(reason) > 500:
            raise InvalidRequest("reason must be at most 500 characters", field="reason")
        now = self._clock()
        async with self._db.transaction(tenant_id) as session:
            entries = list(
                (
                    await session.execute(
                        select(StatusListEntry)
                        .where(
                            StatusListEntry.tenant_id == tenant_id,
                            StatusListEntry.credential_id == credential_id,
                        )
                        .with_for_update()
                    )
                ).scalars()
            )
            if not entries:
                raise NotFound(
                    f"credential {credential_id} has no status list entry (unknown, or issued "
                    "without a status)"
                )
            lists = list(
                (
                    await session.execute(
                        select(StatusList).where(
                            StatusList.tenant_id == tenant_id,
                            StatusList.group_id.in_({e.group_id for e in entries}),
                        )
                    )
                ).scalars()
            )
            previous = entries[0].state
            target = transition(previous, checked)
            if checked == "suspend" and not all(
                supports_suspension(row.kind, row.bits) for row in lists
            ):
                raise StatusConflict(
                    f"credential {credential_id} is listed in a 1-bit token status list, which "
                    "cannot express suspension (use 2-bit lists: PAVILION_STATUS_LIST_BITS=2)"
                )
            if target == previous:
                return StatusChange(credential_id, checked, previous, target, False, None)
            for entry in entries:
                entry.state = target
                entry.updated_at = now
            await session.execute(
                update(StatusList)
                .where(
                    StatusList.tenant_id == tenant_id,
                    StatusList.id.in_([row.id for row in lists]),
                )
                .values(version=StatusList.version + 1, updated_at=now)
            )
            receipt = await self._audit.append(
                session,
                tenant_id,
                {
                    "kind": "credential-status",
                    "credential_id": credential_id,
                    "action": checked,
                    "from": previous,
                    "to": target,
                    "entries": sorted(
                        [{"group": e.group_id, "idx": e.idx} for e in entries],
                        key=lambda item: (str(item["group"]), int(item["idx"])),
                    ),
                    "reason_sha256": digest(reason) if reason else None,
                    "actor": actor,
                    "at": now.isoformat(),
                },
            )
        return StatusChange(credential_id, checked, previous, target, True, receipt.index)

    async def credential_status(self, tenant_id: str, credential_id: str) -> CredentialStatus:
        """A credential's state and where it is published."""
        async with self._db.transaction(tenant_id, readonly=True) as session:
            entries = list(
                (
                    await session.execute(
                        select(StatusListEntry).where(
                            StatusListEntry.tenant_id == tenant_id,
                            StatusListEntry.credential_id == credential_id,
                        )
                    )
                ).scalars()
            )
            if not entries:
                raise NotFound(f"credential {credential_id} has no status list entry")
            lists = (
                await session.execute(
                    select(StatusList).where(
                        StatusList.tenant_id == tenant_id,
                        StatusList.group_id.in_({e.group_id for e in entries}),
                    )
                )
            ).scalars()
            by_group: dict[str, list[StatusList]] = {}
            for row in lists:
                by_group.setdefault(row.group_id, []).append(row)
        return CredentialStatus(
            credential_id=credential_id,
            state=entries[0].state,
            lists=[
                PublishedEntry(
                    uri=self.list_uri(row.kind, row.id),
                    kind=row.kind,
                    purpose=row.purpose,
                    idx=entry.idx,
                    value=list_value(row.kind, row.purpose, entry.state),
                )
                for entry in entries
                for row in sorted(by_group[entry.group_id], key=lambda r: r.purpose)
            ],
        )

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, kind: str, list_id: str) -> PublishedList:
        """The signed list (cached while its version holds and half its lifetime is left)."""
        checked = check_kind(kind)
        tenant_id = tenant_of_list(list_id)
        now = self._clock()
        async with self._db.transaction(tenant_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(StatusList).where(
                        StatusList.tenant_id == tenant_id,
                        StatusList.id == list_id,
                        StatusList.kind == checked,
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"status list {list_id} does not exist")
            signed_expires_at = _aware(row.signed_expires_at or now)
            fresh_until = signed_expires_at - timedelta(seconds=self._config.lifetime_seconds / 2)
            if row.signed_token and row.signed_version == row.version and fresh_until > now:
                return self._published(row, row.signed_token, signed_expires_at, now)
            version = row.version
            values = (
                await session.execute(
                    select(StatusListEntry.idx, StatusListEntry.state).where(
                        StatusListEntry.tenant_id == tenant_id,
                        StatusListEntry.group_id == row.group_id,
                        StatusListEntry.state.in_(published_states(row.kind, row.purpose)),
                    )
                )
            ).all()
        expires_at = now + timedelta(seconds=self._config.lifetime_seconds)
        if checked == "token":
            token = await self._sign_token_list(row, values, now, expires_at)
        else:
            token = await self._sign_bitstring_list(row, values, now, expires_at)
        async with self._db.transaction(tenant_id) as session:
            await session.execute(
                update(StatusList)
                .where(
                    StatusList.tenant_id == tenant_id,
                    StatusList.id == list_id,
                    StatusList.version == version,
                )
                .values(
                    signed_token=token,
                    signed_version=version,
                    signed_at=now,
                    signed_expires_at=expires_at,
                )
            )
        row.version = version
        return self._published(row, token, expires_at, now)

    def _published(
        self, row: StatusList, token: str, expires_at: datetime, now: datetime
    ) -> PublishedList:
        left = int((expires_at - now).total_seconds())
        return PublishedList(
            list_id=row.id,
            kind=row.kind,  # type: ignore[arg-type]
            token=token,
            media_type=TOKEN_MEDIA_TYPE if row.kind == "token" else BITSTRING_MEDIA_TYPE,
            etag='"' + hashlib.sha256(token.encode("ascii")).hexdigest()[:32] + '"',
            version=row.version,
            expires_at=expires_at,
            max_age=max(0, min(self._config.ttl_seconds, left)),
        )

    async def _sign_token_list(
        self, row: StatusList, values: Any, now: datetime, expires_at: datetime
    ) -> str:
        status_list = TokenStatusList(row.size, row.bits)
        for idx, state in values:
            status_list.set(idx, list_value("token", row.purpose, state))
        claims = status_list.to_jwt_claims(
            sub=self.list_uri("token", row.id),
            iat=int(now.timestamp()),
            exp=int(expires_at.timestamp()),
            ttl_seconds=self._config.ttl_seconds,
        )
        signer = self._keystore.signer("credential-signing")
        header = status_list_jwt_header(signer.algorithm, signer.key_id)
        return await sign_compact(header, claims, signer)

    async def _sign_bitstring_list(
        self, row: StatusList, values: Any, now: datetime, expires_at: datetime
    ) -> str:
        status_list = BitstringStatusList(row.size, row.bits)
        for idx, state in values:
            status_list.set(idx, list_value("bitstring", row.purpose, state))
        uri = self.list_uri("bitstring", row.id)
        credential = {
            "@context": [VC_V2_CONTEXT],
            "id": uri,
            "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": self._config.issuer,
            "validFrom": _xsd(now),
            "validUntil": _xsd(expires_at),
            "credentialSubject": status_list_credential_subject(
                status_list,
                subject_id=f"{uri}#list",
                status_purpose=row.purpose,
                ttl_ms=self._config.ttl_seconds * 1000,
            ),
        }
        signer = self._keystore.signer("credential-signing")
        return await sign_compact({"typ": "vc+jwt", "cty": "vc"}, credential, signer)

    # -- resolution ---------------------------------------------------------------------------

    def _local(self, list_uri: str) -> tuple[ListKind, str] | None:
        for kind, path in PATHS.items():
            prefix = self._base + path
            if list_uri.startswith(prefix):
                return kind, list_uri[len(prefix) :]  # type: ignore[return-value]
        return None

    async def resolve_status(self, list_uri: str, index: int) -> int:
        """The status value at ``index`` of the list at ``list_uri`` (a verifier's callable).

        This connector's own lists are read from the database (the freshest answer); any other
        list is fetched, its signature checked against a trust anchor, and cached for its
        ``ttl``. Token lists give 0 valid, 1 invalid, 2 suspended; bitstring lists give the bit
        of their purpose. Raises :class:`StatusUnavailable` with the reason otherwise.
        """
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidRequest("index must be a non-negative integer", field="idx")
        local = self._local(list_uri)
        if local is None:
            return await self._remote.resolve(list_uri, index)
        kind, list_id = local
        try:
            tenant_id = tenant_of_list(list_id)
        except NotFound as exc:
            raise StatusUnavailable(f"status list {list_uri} does not exist") from exc
        async with self._db.transaction(tenant_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(StatusList).where(
                        StatusList.tenant_id == tenant_id,
                        StatusList.id == list_id,
                        StatusList.kind == kind,
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                raise StatusUnavailable(f"status list {list_uri} does not exist")
            if index >= row.size:
                raise StatusUnavailable(
                    f"index {index} is outside the status list (size {row.size})"
                )
            state = (
                await session.execute(
                    select(StatusListEntry.state).where(
                        StatusListEntry.tenant_id == tenant_id,
                        StatusListEntry.group_id == row.group_id,
                        StatusListEntry.idx == index,
                    )
                )
            ).scalar_one_or_none()
        return list_value(row.kind, row.purpose, state or "valid")


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _xsd(moment: datetime) -> str:
    """An XML Schema dateTimeStamp in UTC with a ``Z``, seconds precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The verifier-side callable's type (``StatusListService.resolve_status`` is one).
StatusLookup = Callable[[str, int], Awaitable[int]]
