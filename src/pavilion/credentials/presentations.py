"""VC 2.0 presentations: the data model's rules, and ``vp+jwt`` (VC-JOSE-COSE) held to them.

What a presentation must be, from the specifications' own text:

* VC Data Model 2.0 section 4.13: ``@context`` first the VC 2.0 context, ``id`` (if any) one
  URL, ``type`` including ``VerifiablePresentation``, ``holder`` a URL or an object with an
  ``id`` URL, each ``verifiableCredential`` an object (checked by
  :func:`pavilion.credentials.data_model.presentation_violations`);
* VC-JOSE-COSE, securing presentations with JOSE: the JWS payload IS the presentation, ``typ``
  ``vp+jwt`` (SHOULD; required here, RFC 8725 3.11 explicit typing), ``cty`` ``vp`` when
  present; "Verifiable Credentials secured in verifiable presentations MUST use the Enveloped
  Verifiable Credential type" and "Credentials in verifiable presentations MUST be secured";
  "The JWT Claim Names vc and vp MUST NOT be present"; ``kid`` MUST be present when the
  holder's key is a DID URL, and names the verification method (did:key, or did:web through
  the injectable resolver) whose controller is the holder, listed for ``authentication``;
* a ``holder`` that is given must be that controller, and ``iss``, when present, the holder
  (VC-JOSE-COSE asks JWT claims not to conflict with the properties they mirror);
* the presentation is bound to this verification: ``aud`` names the domain and ``nonce`` is
  the challenge (both required); ``iat`` and ``exp``, when present, time the signature.

A presentation secured with an embedded Data Integrity proof (:func:`verify_di_presentation`)
is held to the same rules: the proof's purpose ``authentication``, its ``challenge`` and
``domain`` this verification's, its verification method's controller the holder.

The holder binding of each credential (:func:`holder_binding`): an SD-JWT VC's ``cnf`` key
must be the key that signed the presentation; a VC 2.0 credential whose subject has an ``id``
must name the holder; a credential naming neither is a bearer credential (not checked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from pavilion.credentials import data_model, jsonld
from pavilion.credentials.data_integrity import proofs
from pavilion.credentials.data_integrity.did import Resolver
from pavilion.credentials.jws import CompactJws, parse_compact, verify_with_jwk
from pavilion.credentials.report import (
    Check,
    CheckFailed,
    CheckName,
    IntegrityReport,
    failed,
    not_checked,
    passed,
)
from pavilion.credentials.timeutil import DEFAULT_LEEWAY, iso, numeric_date, validity_check
from pavilion.jose import jwk_thumbprint
from pavilion.keystore.software_signer import public_jwk_of

VP_TYP: Final = "vp+jwt"
VP_CTY: Final = "vp"
VP_MEDIA_TYPE: Final = "application/vp+jwt"
VP_FORMAT: Final = "vp+jwt"
#: How old a presentation's ``iat`` may be (the SD-JWT Key-Binding JWT's window).
DEFAULT_PRESENTATION_MAX_AGE: Final = timedelta(minutes=5)
_PRESENTATION_CHECKS: Final = (
    CheckName.SIGNATURE,
    CheckName.SCHEMA,
    CheckName.KEY_BINDING,
    CheckName.VALIDITY,
)


@dataclass(frozen=True)
class Expectations:
    """What this verification binds the presentation to."""

    audience: str
    nonce: str
    now: datetime
    leeway: timedelta = DEFAULT_LEEWAY
    max_age: timedelta = DEFAULT_PRESENTATION_MAX_AGE


@dataclass
class VerifiedPresentation:
    """The presentation's own checks, who presented it, and the credentials it carries."""

    report: IntegrityReport
    #: The holder: the controller of the key that signed (a DID), once the signature verified.
    holder: str | None = None
    holder_jwk: dict[str, str] | None = None
    #: Each ``verifiableCredential`` item (an EnvelopedVerifiableCredential), with its path.
    credentials: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.report.verified


#: JWT claims a JOSE payload may carry beside the presentation's own members: VC-JOSE-COSE
#: has them "interpreted as defined by the specifications referenced in the registries" (IANA
#: JSON Web Token Claims), not as JSON-LD terms (the VC 2.0 context defines some, not nonce).
_JWT_CLAIMS: Final = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "nonce", "cnf"})


def presentation_problems(document: Mapping[str, Any], *, path: str) -> str | None:
    """The first rule of VC Data Model 2.0 section 4.13 (and the JSON-LD terms) broken."""
    violations = data_model.presentation_violations(document, path=path)
    if violations:
        return violations[0].message
    terms = {k: v for k, v in document.items() if k not in _JWT_CLAIMS}
    try:
        jsonld.check_document(terms, where=path)
    except jsonld.JsonLdError as exc:
        return exc.detail
    return None


async def verify_vp_jwt(
    token: str, resolver: Resolver, expect: Expectations
) -> VerifiedPresentation:
    """Verify a ``vp+jwt``: every check recorded, never an exception for bad input."""
    out = VerifiedPresentation(IntegrityReport(format=VP_FORMAT))
    try:
        parsed = parse_compact(token)
        out.report.header = dict(parsed.header)
        await _signature(parsed, resolver, out)
        document = parsed.claims()
        _schema(parsed, document, out)
        out.report.add(_binding(document, expect, out))
    except CheckFailed as exc:
        out.report.add(exc.as_check())
        out.report.skip_remaining(_PRESENTATION_CHECKS, f"not checked: {exc.check.value} failed")
        return out
    out.report.claims = document
    out.report.add(_timing(document, expect))
    return out


async def _signature(parsed: CompactJws, resolver: Resolver, out: VerifiedPresentation) -> None:
    if parsed.header.get("typ") != VP_TYP:
        raise CheckFailed(
            CheckName.SCHEMA,
            "bad_typ",
            f"typ must be {VP_TYP!r} for a presentation secured with JOSE (VC-JOSE-COSE)",
        )
    cty = parsed.header.get("cty")
    if cty is not None and cty != VP_CTY:
        raise CheckFailed(CheckName.SCHEMA, "bad_cty", f"cty must be {VP_CTY!r} when present")
    kid = parsed.header.get("kid")
    if not isinstance(kid, str) or not kid.startswith("did:"):
        raise CheckFailed(
            CheckName.SIGNATURE,
            "no_holder_key",
            "kid must name the holder's verification method as a DID URL (did:key, did:web)",
        )
    method = await resolver.method(kid)
    if "authentication" not in method.relationships:
        raise CheckFailed(
            CheckName.SIGNATURE,
            "not_for_authentication",
            f"{kid} is not listed for authentication by {method.controller}",
        )
    jwk = public_jwk_of(method.key)
    verify_with_jwk(parsed, jwk, where=f"holder key {kid}")
    out.holder, out.holder_jwk = method.controller, jwk
    out.report.add(
        passed(CheckName.SIGNATURE, f"{parsed.alg} signature verified with the holder key {kid}")
    )


def _schema(parsed: CompactJws, document: dict[str, Any], out: VerifiedPresentation) -> None:
    for forbidden in ("vc", "vp"):
        if forbidden in document:
            raise CheckFailed(
                CheckName.SCHEMA,
                "jwt_vc_claim",
                f"the '{forbidden}' JWT claim must not appear in a vp+jwt presentation",
            )
    problem = presentation_problems(document, path="presentation")
    if problem is not None:
        raise CheckFailed(CheckName.SCHEMA, "data_model", problem)
    if "proof" in document:
        raise CheckFailed(
            CheckName.SCHEMA, "embedded_proof", "a vp+jwt must not also carry an embedded proof"
        )
    items = document.get("verifiableCredential", [])
    for index, item in enumerate(items if isinstance(items, list) else [items]):
        types = item.get("type")
        if data_model.ENVELOPED_CREDENTIAL not in (types if isinstance(types, list) else [types]):
            raise CheckFailed(
                CheckName.SCHEMA,
                "not_enveloped",
                f"presentation.verifiableCredential[{index}]: credentials in a vp+jwt MUST be "
                "secured EnvelopedVerifiableCredential objects (VC-JOSE-COSE)",
            )
        out.credentials.append((f"verifiablePresentation.verifiableCredential[{index}]", item))
    _holder_signed(document, out)
    issuer = document.get("iss")
    if issuer is not None and issuer != out.holder:
        raise CheckFailed(CheckName.SCHEMA, "iss_mismatch", "iss is not the presentation's holder")
    out.report.add(
        passed(CheckName.SCHEMA, "VC Data Model 2.0 presentation: context, type, holder, terms")
    )


async def verify_di_presentation(
    document: Mapping[str, Any], resolver: Resolver, expect: Expectations
) -> VerifiedPresentation:
    """Verify a presentation secured with an embedded Data Integrity proof: every check
    recorded, never an exception for bad input.

    VC Data Integrity 1.0: the proof's purpose is ``authentication``, its ``challenge`` and
    ``domain`` are the verifier's (section 4.3), its verification method is listed for
    authentication by its controller, who is the holder (a ``holder`` given must be it);
    ``created``, when present, times the signature as a vp+jwt's ``iat`` does.
    """
    out = VerifiedPresentation(IntegrityReport(format=proofs.FORMAT_NAME))
    proof = document.get("proof")
    if isinstance(proof, dict):
        out.report.header = {k: v for k, v in proof.items() if k != "proofValue"}
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    try:
        problem = presentation_problems(unsecured, path="presentation")
        if problem is not None:
            raise CheckFailed(CheckName.SCHEMA, "data_model", problem)
        verified = await proofs.verify_proof(
            document,
            resolver,
            now=expect.now,
            purpose="authentication",
            challenge=expect.nonce,
            domain=expect.audience,
        )
        out.holder, out.holder_jwk = verified.controller, public_jwk_of(verified.key)
        out.report.add(
            passed(
                CheckName.SIGNATURE,
                f"{verified.cryptosuite} proof verified with the holder key "
                f"{verified.verification_method}",
            )
        )
        _holder_signed(document, out)
        out.report.add(
            passed(CheckName.SCHEMA, "VC Data Model 2.0 presentation: context, type, holder, terms")
        )
        out.report.add(
            passed(CheckName.KEY_BINDING, f"signed by {out.holder} for this domain and challenge")
        )
    except CheckFailed as exc:
        out.report.add(exc.as_check())
        out.report.skip_remaining(_PRESENTATION_CHECKS, f"not checked: {exc.check.value} failed")
        return out
    items = document.get("verifiableCredential", [])
    for index, item in enumerate(items if isinstance(items, list) else [items]):
        out.credentials.append((f"verifiablePresentation.verifiableCredential[{index}]", item))
    out.report.claims = dict(document)
    created = verified.created
    out.report.add(_timing({"iat": int(created.timestamp())} if created else {}, expect))
    return out


def _holder_signed(document: Mapping[str, Any], out: VerifiedPresentation) -> None:
    """A ``holder`` the presentation names must be the key that signed it."""
    holder = document.get("holder")
    holder_id = holder.get("id") if isinstance(holder, dict) else holder
    if holder_id is not None and holder_id != out.holder:
        raise CheckFailed(
            CheckName.KEY_BINDING,
            "holder_key_mismatch",
            f"the presentation's holder {holder_id} does not control the key that signed it "
            f"({out.holder})",
        )


def _binding(document: dict[str, Any], expect: Expectations, out: VerifiedPresentation) -> Check:
    audience = document.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if expect.audience not in audiences:
        return failed(
            CheckName.KEY_BINDING,
            "vp_wrong_audience",
            "the presentation's aud does not name this verifier (options.domain)",
        )
    if document.get("nonce") != expect.nonce:
        return failed(
            CheckName.KEY_BINDING,
            "vp_wrong_nonce",
            "the presentation's nonce is not the challenge (options.challenge)",
        )
    return passed(
        CheckName.KEY_BINDING,
        f"signed by {out.holder} for this audience and challenge",
    )


def _timing(document: dict[str, Any], expect: Expectations) -> Check:
    """``iat``/``exp`` time the signature (VC-JOSE-COSE): not in the future, not too old."""
    try:
        issued = numeric_date(document, "iat")
        expires = numeric_date(document, "exp")
    except CheckFailed as exc:
        return failed(CheckName.VALIDITY, exc.code, exc.reason)
    if issued is not None and expect.now - issued > expect.max_age + expect.leeway:
        return failed(
            CheckName.VALIDITY,
            "vp_too_old",
            f"the presentation was signed at {iso(issued)}, more than "
            f"{int(expect.max_age.total_seconds())} s ago",
        )
    return validity_check(issued, expires, expect.now, expect.leeway, what="presentation")


def holder_binding(
    report: IntegrityReport, holder: str | None, holder_jwk: Mapping[str, str] | None
) -> Check:
    """Whether a presented credential belongs to the holder who signed the presentation."""
    claims = report.claims
    if claims is None or holder is None or holder_jwk is None:
        return not_checked(CheckName.KEY_BINDING, "the holder could not be established")
    cnf = claims.get("cnf")
    bound_key = cnf.get("jwk") if isinstance(cnf, dict) else None
    if isinstance(bound_key, dict):
        if jwk_thumbprint(dict(bound_key)) == jwk_thumbprint(dict(holder_jwk)):
            return passed(CheckName.KEY_BINDING, f"cnf binds the credential to {holder}'s key")
        return failed(
            CheckName.KEY_BINDING,
            "holder_not_bound",
            "the credential is bound (cnf) to another key than the one that signed the "
            "presentation",
        )
    subjects = claims.get("credentialSubject", claims.get("sub"))
    ids = {
        s.get("id") if isinstance(s, dict) else s
        for s in (subjects if isinstance(subjects, list) else [subjects])
    } - {None}
    if ids:
        if holder in ids:
            return passed(CheckName.KEY_BINDING, f"the credential's subject is {holder}")
        return failed(
            CheckName.KEY_BINDING,
            "holder_not_subject",
            f"the credential is about another subject than the holder {holder}",
        )
    return not_checked(
        CheckName.KEY_BINDING,
        "a bearer credential: it names no subject id and no holder key to bind to",
    )
