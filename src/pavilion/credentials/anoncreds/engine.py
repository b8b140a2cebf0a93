"""A typed, synchronous wrapper over anoncreds-rs (the ``anoncreds`` package): no I/O but tails.

Every AnonCreds object crosses this boundary as its JSON text, so callers store and pass
plain strings and never hold library handles. The calls are CPU-bound (RSA-sized big-number
arithmetic and pairings); async callers run them with ``asyncio.to_thread`` (ctypes releases
the GIL). Library errors become :class:`AnoncredsFailure`, except the two a caller acts on:
:class:`PredicateUnsatisfied` (the prover cannot prove a false predicate) and
:class:`RegistryFull`.

Roles in one process: the connector is the issuer (on behalf of a DP, with the DP's
credential definition), and in the broker-mediated flow also the holder of a one-time
credential, and a verifier for relying parties.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anoncreds  # type: ignore[import-untyped]
from anoncreds import (
    AnoncredsError,
    AnoncredsErrorCode,
    Credential,
    CredentialDefinition,
    CredentialDefinitionPrivate,
    CredentialOffer,
    CredentialRequest,
    CredentialRevocationConfig,
    CredentialRevocationState,
    KeyCorrectnessProof,
    Presentation,
    PresentCredentials,
    RevocationRegistryDefinition,
    RevocationRegistryDefinitionPrivate,
    RevocationStatusList,
    Schema,
)

from pavilion.errors import CryptoError, InvalidRequest, VerificationFailed
from pavilion.parsing import loads_json
from pavilion.store.private_files import private_dir, private_file

SCHEMA_NAME: Final = "pavilion-eligibility"
SCHEMA_VERSION: Final = "1.0"
#: Integer-encoded attributes carry predicates (AnonCreds predicates compare integers).
ATTRIBUTES: Final = ("birthdate_dateint", "student_current", "group", "group_member")
SIGNATURE_TYPE: Final = "CL"
REGISTRY_TYPE: Final = "CL_ACCUM"


class AnoncredsFailure(CryptoError):
    code = "anoncreds"
    title = "AnonCreds operation failed"


class PredicateUnsatisfied(VerificationFailed):
    code = "predicate-unsatisfied"
    title = "The predicate does not hold"


class RegistryFull(AnoncredsFailure):
    code = "revocation-registry-full"
    title = "Revocation registry is full"


#: anoncreds-rs raises one exception class, AnoncredsError, with a code; this table says how a
#: code crosses into the tree (applied once, by ``_translated``). Unlisted codes are an
#: AnoncredsFailure; a prover asked to prove a false predicate is told apart by its message
#: (the library gives it no code of its own).
_BY_CODE: Final[dict[AnoncredsErrorCode, tuple[type[AnoncredsFailure], str]]] = {
    AnoncredsErrorCode.REVOCATION_REGISTRY_FULL: (RegistryFull, "the revocation registry is full"),
}
_PREDICATE_UNSATISFIED: Final = "Predicate is not satisfied"


def _fail(exc: AnoncredsError, doing: str) -> CryptoError:
    if _PREDICATE_UNSATISFIED in str(exc):
        return PredicateUnsatisfied("the credential does not satisfy the requested predicate")
    ours, what = _BY_CODE.get(exc.code, (AnoncredsFailure, str(exc)))
    return ours(f"{doing}: {what}")


@contextmanager
def _translated(doing: str) -> Iterator[None]:
    """Run anoncreds-rs calls; its errors leave as the tree's, ``raise ... from`` the original."""
    try:
        yield
    except AnoncredsError as exc:
        raise _fail(exc, doing) from exc


def _json(obj: Any) -> str:
    text: str = obj.to_json()
    return text


@dataclass(frozen=True)
class IssuerMaterial:
    """A DP's schema and credential definition; ``cred_def_private`` is the issuing secret."""

    issuer_id: str
    schema_id: str
    schema_json: str
    cred_def_id: str
    cred_def_json: str
    key_proof_json: str
    cred_def_private_json: str = field(repr=False)


@dataclass(frozen=True)
class RegistryMaterial:
    """A revocation registry (the accumulator) and its first published status list."""

    rev_reg_def_id: str
    rev_reg_def_json: str
    tails_hash: str
    tails: bytes = field(repr=False)
    max_cred_num: int
    status_list_json: str
    timestamp: int
    private_json: str = field(repr=False)


def create_issuer(issuer_id: str, *, tag: str = "default") -> IssuerMaterial:
    """Schema and credential definition with revocation support (slow: safe primes)."""
    schema_id = f"{issuer_id}/schemas/{SCHEMA_NAME}/{SCHEMA_VERSION}"
    cred_def_id = f"{issuer_id}/credential-definitions/{tag}"
    with _translated("creating the credential definition"):
        schema = Schema.create(SCHEMA_NAME, SCHEMA_VERSION, issuer_id, list(ATTRIBUTES))
        cred_def, private, proof = CredentialDefinition.create(
            schema_id, schema, issuer_id, tag, SIGNATURE_TYPE, support_revocation=True
        )
    return IssuerMaterial(
        issuer_id=issuer_id,
        schema_id=schema_id,
        schema_json=_json(schema),
        cred_def_id=cred_def_id,
        cred_def_json=_json(cred_def),
        key_proof_json=_json(proof),
        cred_def_private_json=_json(private),
    )


def create_registry(
    issuer: IssuerMaterial,
    rev_reg_def_id: str,
    *,
    tag: str,
    max_cred_num: int,
    timestamp: int,
    tails_dir: Path,
) -> RegistryMaterial:
    """A revocation registry of ``max_cred_num`` entries, every one issued by default."""
    if max_cred_num < 1:
        raise InvalidRequest("a revocation registry needs at least one entry", field="size")
    private_dir(tails_dir)
    with _translated("creating the revocation registry"):
        cred_def = CredentialDefinition.load(issuer.cred_def_json)
        definition, private = RevocationRegistryDefinition.create(
            issuer.cred_def_id,
            cred_def,
            issuer.issuer_id,
            tag,
            REGISTRY_TYPE,
            max_cred_num,
            tails_dir_path=str(tails_dir),
        )
        status_list = RevocationStatusList.create(
            cred_def, rev_reg_def_id, definition, private, issuer.issuer_id, True, timestamp
        )
    tails_hash = str(definition.tails_hash)
    tails_path = private_file(Path(str(definition.tails_location)))
    return RegistryMaterial(
        rev_reg_def_id=rev_reg_def_id,
        rev_reg_def_json=_json(definition),
        tails_hash=tails_hash,
        tails=tails_path.read_bytes(),
        max_cred_num=max_cred_num,
        status_list_json=_json(status_list),
        timestamp=timestamp,
        private_json=_json(private),
    )


def update_status_list(
    issuer: IssuerMaterial,
    rev_reg_def_json: str,
    rev_reg_private_json: str,
    status_list_json: str,
    *,
    revoked: Sequence[int],
    timestamp: int,
) -> str:
    """The next status list: ``revoked`` indices flipped and a new accumulator, or, with
    nothing revoked, the same state under a new timestamp."""
    with _translated("updating the revocation status list"):
        # ``update_timestamp_only`` of anoncreds 0.2.3's Python wrapper is broken (it passes
        # the wrong handle type), so a timestamp-only publication is an update without changes.
        updated = RevocationStatusList.load(status_list_json).update(
            CredentialDefinition.load(issuer.cred_def_json),
            RevocationRegistryDefinition.load(rev_reg_def_json),
            RevocationRegistryDefinitionPrivate.load(rev_reg_private_json),
            None,
            list(revoked) or None,
            timestamp,
        )
    return _json(updated)


def revocation_list(status_list_json: str) -> list[int]:
    value: list[int] = json.loads(status_list_json)["revocationList"]
    return value


def create_offer(issuer: IssuerMaterial) -> str:
    with _translated("creating the credential offer"):
        offer = CredentialOffer.create(
            issuer.schema_id, issuer.cred_def_id, KeyCorrectnessProof.load(issuer.key_proof_json)
        )
    return _json(offer)


def offer_nonce(offer_json: str) -> str:
    nonce: str = json.loads(offer_json)["nonce"]
    return nonce


@dataclass(frozen=True)
class Holder:
    """A holder's link secret; the broker-mediated flow makes one per request and drops it."""

    link_secret: str = field(repr=False)
    link_secret_id: str = "default"  # noqa: S105  a label, not a secret

    @classmethod
    def ephemeral(cls) -> Holder:
        return cls(anoncreds.create_link_secret(), f"one-time-{secrets.token_hex(8)}")


def create_request(holder: Holder, cred_def_json: str, offer_json: str) -> tuple[str, str]:
    """A credential request (with fresh ``entropy``) and the metadata the holder keeps."""
    with _translated("creating the credential request"):
        request, metadata = CredentialRequest.create(
            secrets.token_hex(16),
            None,
            CredentialDefinition.load(cred_def_json),
            holder.link_secret,
            holder.link_secret_id,
            CredentialOffer.load(offer_json),
        )
    return _json(request), _json(metadata)


def issue_credential(
    issuer: IssuerMaterial,
    offer_json: str,
    request_json: str,
    values: Mapping[str, str],
    *,
    rev_reg_def_json: str,
    rev_reg_private_json: str,
    status_list_json: str,
    index: int,
) -> str:
    """Sign ``values`` into a credential bound to the request's link secret, at ``index``."""
    missing = set(ATTRIBUTES) - set(values)
    if missing or set(values) - set(ATTRIBUTES):
        raise InvalidRequest(
            f"the credential needs exactly the attributes {', '.join(ATTRIBUTES)}",
            field="values",
        )
    with _translated("issuing the credential"):
        credential = Credential.create(
            CredentialDefinition.load(issuer.cred_def_json),
            CredentialDefinitionPrivate.load(issuer.cred_def_private_json),
            CredentialOffer.load(offer_json),
            CredentialRequest.load(request_json),
            dict(values),
            revocation_config=CredentialRevocationConfig(
                RevocationRegistryDefinition.load(rev_reg_def_json),
                RevocationRegistryDefinitionPrivate.load(rev_reg_private_json),
                RevocationStatusList.load(status_list_json),
                index,
            ),
        )
    return _json(credential)


def process_credential(
    holder: Holder, credential_json: str, metadata_json: str, cred_def_json: str, rev_reg_def: str
) -> str:
    """The holder's check and storage form of a received credential."""
    with _translated("processing the credential"):
        processed = Credential.load(credential_json).process(
            metadata_json,
            holder.link_secret,
            CredentialDefinition.load(cred_def_json),
            RevocationRegistryDefinition.load(rev_reg_def),
        )
    return _json(processed)


def revocation_state(
    rev_reg_def_json: str, status_list_json: str, index: int, tails_path: Path
) -> str:
    """The holder's witness that ``index`` is in the accumulator of this status list."""
    with _translated("computing the revocation witness"):
        state = CredentialRevocationState.create(
            RevocationRegistryDefinition.load(rev_reg_def_json),
            RevocationStatusList.load(status_list_json),
            index,
            str(tails_path),
        )
    return _json(state)


def create_presentation(
    request: Mapping[str, Any],
    holder: Holder,
    credential_json: str,
    *,
    timestamp: int,
    revocation_state_json: str,
    schemas: Mapping[str, str],
    cred_defs: Mapping[str, str],
) -> str:
    """Prove the request's predicates (and reveal its attributes) from one credential."""
    with _translated("creating the presentation"):
        credential = Credential.load(credential_json)
        present = PresentCredentials()
        for referent in request.get("requested_attributes", {}):
            present.add_attributes(
                credential,
                referent,
                reveal=True,
                timestamp=timestamp,
                rev_state=revocation_state_json,
            )
        for referent in request.get("requested_predicates", {}):
            present.add_predicates(
                credential, referent, timestamp=timestamp, rev_state=revocation_state_json
            )
        presentation = Presentation.create(
            json.dumps(request),
            present,
            {},
            holder.link_secret,
            {k: Schema.load(v) for k, v in schemas.items()},
            {k: CredentialDefinition.load(v) for k, v in cred_defs.items()},
        )
    return _json(presentation)


def verify_presentation(
    presentation_json: str,
    request: Mapping[str, Any],
    *,
    schemas: Mapping[str, str],
    cred_defs: Mapping[str, str],
    rev_reg_defs: Mapping[str, str],
    status_lists: Sequence[str],
) -> bool:
    """Whether the presentation proves the request, non-revocation included."""
    try:
        ok: bool = Presentation.load(presentation_json).verify(
            json.dumps(request),
            {k: Schema.load(v) for k, v in schemas.items()},
            {k: CredentialDefinition.load(v) for k, v in cred_defs.items()},
            {k: RevocationRegistryDefinition.load(v) for k, v in rev_reg_defs.items()},
            [RevocationStatusList.load(s) for s in status_lists],
        )
    except AnoncredsError as exc:
        raise VerificationFailed(f"the presentation does not verify: {exc}") from exc
    return bool(ok)


def generate_nonce() -> str:
    nonce: str = anoncreds.generate_nonce()
    return nonce


def presentation_identifiers(presentation_json: str) -> list[dict[str, Any]]:
    """The schema, credential definition, registry ids and timestamps a presentation uses."""
    try:
        identifiers = loads_json(presentation_json)["identifiers"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(
            "not an AnonCreds presentation (no identifiers)", field="presentation"
        ) from exc
    if not isinstance(identifiers, list) or not all(isinstance(i, dict) for i in identifiers):
        raise InvalidRequest("the presentation's identifiers are malformed", field="presentation")
    return identifiers
