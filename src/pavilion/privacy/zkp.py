"""Zero-knowledge predicates with AnonCreds: what each claim may ask, and nothing more.

A predicate claim (``age_over``, ``birth_date_between``, ``membership``, ``student_status``)
maps to one fixed AnonCreds "circuit": which attributes may be revealed and which integer
predicates are proved over which attributes. A relying party's proof request is checked
against that circuit before any credential is issued or any proof is generated (the "circuit
validation"): a request that reveals the birth date, asks a threshold the claim does not
name, narrows a date range below a year, drops the non-revocation requirement or points at
another issuer's credential definition is refused with the field that breaks the rule.

Attributes (:data:`pavilion.credentials.anoncreds.engine.ATTRIBUTES`), all integers except
``group``: ``birthdate_dateint`` (YYYYMMDD), ``student_current`` (1 when currently enrolled),
``group`` (the normalised club the credential speaks about) and ``group_member`` (1 when
the subject is a member of it).

Everything here is pure except the AnonCreds calls, which are CPU-bound and synchronous.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, NotRequired, TypedDict

from pavilion.credentials.anoncreds import engine
from pavilion.errors import InvalidRequest
from pavilion.privacy.psi import normalise_group
from pavilion.verification.claims import CURRENT_ENROLMENT

#: Ages a relying party may ask about: a fixed ladder, so that asking many thresholds cannot
#: binary-search a birth date.
AGE_THRESHOLDS: Final = (13, 16, 18, 21, 25, 65)
#: The narrowest birth-date range a request may test, for the same reason.
MIN_RANGE_DAYS: Final = 365
#: How far back a request's ``non_revoked`` interval may end (seconds), and how far ahead.
MAX_STALENESS_S: Final = 86_400
MAX_SKEW_S: Final = 300
_NONCE: Final = re.compile(r"^[0-9]{10,80}$")
_REQUEST_KEYS: Final = frozenset(
    {"name", "version", "nonce", "requested_attributes", "requested_predicates", "non_revoked"}
)


class PredicateKind(StrEnum):
    AGE_OVER = "age_over"
    BIRTH_DATE_BETWEEN = "birth_date_between"
    MEMBERSHIP = "membership"
    STUDENT_STATUS = "student_status"


class PredicateClaimView(TypedDict):
    """A predicate as recorded and reported: the parameters its kind takes."""

    type: str
    threshold: NotRequired[int]
    start: NotRequired[str]
    end: NotRequired[str]
    group: NotRequired[str]


@dataclass(frozen=True)
class PredicateClaim:
    kind: PredicateKind
    threshold: int | None = None
    start: date | None = None
    end: date | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if self.kind is PredicateKind.AGE_OVER:
            if self.threshold not in AGE_THRESHOLDS:
                raise InvalidRequest(
                    f"age_over takes a threshold among {', '.join(map(str, AGE_THRESHOLDS))}",
                    field="claim.threshold",
                )
        elif self.threshold is not None:
            raise InvalidRequest("threshold is only for age_over", field="claim.threshold")
        if self.kind is PredicateKind.BIRTH_DATE_BETWEEN:
            if self.start is None or self.end is None:
                raise InvalidRequest(
                    "birth_date_between needs a start and an end date", field="claim.start"
                )
            if (self.end - self.start).days < MIN_RANGE_DAYS - 1:
                raise InvalidRequest(
                    f"the range must span at least {MIN_RANGE_DAYS} days", field="claim.end"
                )
        elif self.start is not None or self.end is not None:
            raise InvalidRequest(
                "start and end are only for birth_date_between", field="claim.start"
            )
        if self.kind is PredicateKind.MEMBERSHIP:
            if not self.group or not normalise_group(self.group):
                raise InvalidRequest("membership needs a group", field="claim.group")
        elif self.group is not None:
            raise InvalidRequest("group is only for membership", field="claim.group")

    def canonical(self) -> PredicateClaimView:
        out = PredicateClaimView(type=self.kind.value)
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.start is not None and self.end is not None:
            out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        if self.group is not None:
            out["group"] = normalise_group(self.group)
        return out


def dateint(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def latest_birth_date(today: date, years: int) -> date:
    """The latest birth date of someone at least ``years`` old today.

    Agrees with :func:`pavilion.verification.claims.age_on`: someone born on 29 February
    turns a year older on 1 March in a year without one.
    """
    year = today.year - years
    if today.month == 2 and today.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, today.month, today.day)


@dataclass(frozen=True)
class Circuit:
    """What a claim proves: revealed attribute names, and (attribute, p_type, p_value)."""

    reveal: tuple[str, ...]
    predicates: tuple[tuple[str, str, int], ...]


def circuit(claim: PredicateClaim, today: date) -> Circuit:
    if claim.kind is PredicateKind.AGE_OVER:
        assert claim.threshold is not None
        cutoff = dateint(latest_birth_date(today, claim.threshold))
        return Circuit((), (("birthdate_dateint", "<=", cutoff),))
    if claim.kind is PredicateKind.BIRTH_DATE_BETWEEN:
        assert claim.start is not None
        assert claim.end is not None
        return Circuit(
            (),
            (
                ("birthdate_dateint", ">=", dateint(claim.start)),
                ("birthdate_dateint", "<=", dateint(claim.end)),
            ),
        )
    if claim.kind is PredicateKind.MEMBERSHIP:
        return Circuit(("group",), (("group_member", ">=", 1),))
    return Circuit((), (("student_current", ">=", 1),))


def build_request(
    claim: PredicateClaim,
    *,
    cred_def_id: str,
    today: date,
    now: int,
    nonce: str,
    window_s: int = 3600,
) -> dict[str, Any]:
    """The proof request the connector proposes for a claim (already a valid circuit)."""
    shape = circuit(claim, today)
    restriction = [{"cred_def_id": cred_def_id}]
    return {
        "name": f"pavilion {claim.kind.value}",
        "version": "1.0",
        "nonce": nonce,
        "requested_attributes": {
            f"attr{i}": {"name": name, "restrictions": restriction}
            for i, name in enumerate(shape.reveal)
        },
        "requested_predicates": {
            f"pred{i}": {
                "name": name,
                "p_type": p_type,
                "p_value": p_value,
                "restrictions": restriction,
            }
            for i, (name, p_type, p_value) in enumerate(shape.predicates)
        },
        # ``to`` a little ahead: a registry opened by a rollover during this request
        # publishes its first state after ``now``.
        "non_revoked": {"from": now - window_s, "to": now + MAX_SKEW_S // 2},
    }


def validate_request(
    claim: PredicateClaim,
    request: Mapping[str, Any],
    *,
    cred_def_id: str,
    today: date,
    now: int,
) -> dict[str, Any]:
    """The circuit validation: refuse anything the claim's circuit does not allow."""
    where = "proof_request"
    unknown = sorted(set(request) - _REQUEST_KEYS)
    if unknown:
        raise InvalidRequest(f"unsupported member {unknown[0]!r}", field=f"{where}.{unknown[0]}")
    for key in ("name", "version"):
        if not isinstance(request.get(key), str) or not request[key]:
            raise InvalidRequest(f"{key} must be a non-empty string", field=f"{where}.{key}")
    nonce = request.get("nonce")
    if not isinstance(nonce, str) or not _NONCE.match(nonce):
        raise InvalidRequest(
            "nonce must be a decimal string of 10 to 80 digits (80 random bits or more)",
            field=f"{where}.nonce",
        )
    shape = circuit(claim, today)
    attributes = _members(request, "requested_attributes")
    revealed = []
    for referent, spec in attributes.items():
        field = f"{where}.requested_attributes.{referent}"
        _only(spec, {"name", "restrictions"}, field)
        name = spec.get("name")
        if name not in shape.reveal:
            allowed = ", ".join(shape.reveal) or "nothing"
            raise InvalidRequest(
                f"{claim.kind.value} may reveal {allowed}, not {name!r}", field=f"{field}.name"
            )
        _restricted(spec, cred_def_id, field)
        revealed.append(name)
    if sorted(revealed) != sorted(shape.reveal):
        raise InvalidRequest(
            f"{claim.kind.value} reveals exactly: {', '.join(shape.reveal) or 'nothing'}",
            field=f"{where}.requested_attributes",
        )
    predicates = _members(request, "requested_predicates")
    asked = []
    for referent, spec in predicates.items():
        field = f"{where}.requested_predicates.{referent}"
        _only(spec, {"name", "p_type", "p_value", "restrictions"}, field)
        triple = (spec.get("name"), spec.get("p_type"), spec.get("p_value"))
        if triple not in shape.predicates:
            raise InvalidRequest(
                f"{claim.kind.value} proves {_describe(shape)}; this predicate is not allowed",
                field=field,
            )
        _restricted(spec, cred_def_id, field)
        asked.append(triple)
    if sorted(asked, key=str) != sorted(shape.predicates, key=str):
        raise InvalidRequest(
            f"{claim.kind.value} proves exactly {_describe(shape)}",
            field=f"{where}.requested_predicates",
        )
    interval = request.get("non_revoked")
    if not isinstance(interval, Mapping):
        raise InvalidRequest(
            "non-revocation must be proved: give non_revoked {from, to}",
            field=f"{where}.non_revoked",
        )
    _only(interval, {"from", "to"}, f"{where}.non_revoked")
    end, start = interval.get("to"), interval.get("from")
    if not isinstance(end, int) or isinstance(end, bool):
        raise InvalidRequest("non_revoked.to must be a Unix time", field=f"{where}.non_revoked.to")
    if not now - MAX_STALENESS_S <= end <= now + MAX_SKEW_S:
        raise InvalidRequest(
            f"non_revoked.to must be within the last {MAX_STALENESS_S} seconds",
            field=f"{where}.non_revoked.to",
        )
    if start is not None and (not isinstance(start, int) or isinstance(start, bool) or start > end):
        raise InvalidRequest(
            "non_revoked.from must be a Unix time not after to", field=f"{where}.non_revoked.from"
        )
    return dict(request)


def _members(request: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = request.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise InvalidRequest(f"{key} must map referents to objects", field=f"proof_request.{key}")
    return value


def _only(spec: Mapping[str, Any], allowed: set[str], field: str) -> None:
    extra = sorted(set(spec) - allowed)
    if extra:
        raise InvalidRequest(f"unsupported member {extra[0]!r}", field=f"{field}.{extra[0]}")


def _restricted(spec: Mapping[str, Any], cred_def_id: str, field: str) -> None:
    if spec.get("restrictions") != [{"cred_def_id": cred_def_id}]:
        raise InvalidRequest(
            f"restrictions must be exactly [{{'cred_def_id': {cred_def_id!r}}}]: the DP's "
            "credential definition",
            field=f"{field}.restrictions",
        )


def _describe(shape: Circuit) -> str:
    return " and ".join(f"{n} {t} {v}" for n, t, v in shape.predicates)


# --------------------------------------------------------------------------- attributes


def attribute_values(record: Mapping[str, Any], group: str | None) -> dict[str, str]:
    """A credential's attributes from the DP's record (raw values, as strings); ``group``
    is the club the credential speaks about, if any."""
    try:
        birth = date.fromisoformat(str(record["birth_date"]))
    except (KeyError, ValueError) as exc:
        raise InvalidRequest(
            "the provider's record has no ISO birth_date", field="record.birth_date"
        ) from exc
    status = str(record.get("enrolment_status", "")).lower()
    group = normalise_group(group) if group else ""
    memberships = record.get("memberships") or []
    if isinstance(memberships, str):
        memberships = memberships.split(";")
    member = bool(group) and any(normalise_group(str(m)) == group for m in memberships)
    return {
        "birthdate_dateint": str(dateint(birth)),
        "student_current": "1" if status in CURRENT_ENROLMENT else "0",
        "group": group,
        "group_member": "1" if member else "0",
    }


def holds(claim: PredicateClaim, values: Mapping[str, str], today: date) -> bool:
    """Whether the circuit's predicates hold for these attribute values."""
    checks = {"<=": int.__le__, ">=": int.__ge__, "<": int.__lt__, ">": int.__gt__}
    return all(
        checks[p_type](int(values[name]), p_value)
        for name, p_type, p_value in circuit(claim, today).predicates
    )


def present_one_time(
    request: Mapping[str, Any],
    issuer: engine.IssuerMaterial,
    *,
    offer_json: str,
    issue: Callable[[str], str],
    timestamp: int,
    status_list_json: str,
    rev_reg_def_json: str,
    index: int,
    tails_path: Path,
) -> str:
    """The holder side of the broker-mediated flow, start to end, in one call.

    A fresh link secret, a credential request with fresh entropy, the issuer's credential
    (``issue(request_json) -> credential_json``), the revocation witness at ``timestamp``,
    and the presentation. The link secret and the credential live only in this frame.
    """
    holder = engine.Holder.ephemeral()
    request_json, metadata_json = engine.create_request(holder, issuer.cred_def_json, offer_json)
    credential_json = engine.process_credential(
        holder, issue(request_json), metadata_json, issuer.cred_def_json, rev_reg_def_json
    )
    state = engine.revocation_state(rev_reg_def_json, status_list_json, index, tails_path)
    return engine.create_presentation(
        request,
        holder,
        credential_json,
        timestamp=timestamp,
        revocation_state_json=state,
        schemas={issuer.schema_id: issuer.schema_json},
        cred_defs={issuer.cred_def_id: issuer.cred_def_json},
    )
