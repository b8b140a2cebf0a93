"""The MUST rules of the W3C VC Data Model 2.0, sections 4 and 5 (and 11.1), as pure checks.

Each rule is written from the specification's own statement and names the section it comes
from; a violation names the member at fault as a path (``credentialStatus[1].type``), so the
issuer can answer 422 naming it and the verifier can fail its ``schema`` check with the same
reason. What this module checks, by section:

* 4.3 ``@context``: present, an ordered set whose first item is the VC 2.0 context URL; the
  other items URLs or objects (their terms are checked by :mod:`pavilion.credentials.jsonld`);
* 4.4 ``id``: wherever present (the credential, issuer, subjects, status, schema, evidence,
  terms of use, related resources, holder, the presentation), a single URL;
* 4.5 ``type``: a credential's includes ``VerifiableCredential``, a presentation's
  ``VerifiablePresentation``; each type a non-empty string; ``credentialStatus``,
  ``credentialSchema``, ``refreshService``, ``termsOfUse``, ``evidence`` and ``proof`` objects
  have a ``type``;
* 4.6 and 11.1 ``name`` and ``description`` (of the credential and of an issuer object): a
  string or a language value object (or a list of them) with only ``@value`` (a string),
  ``@language`` (a well-formed BCP 47 tag) and ``@direction`` (``ltr`` or ``rtl``);
* 4.7 ``issuer``: present, a URL or an object whose ``id`` is a URL;
* 4.8 ``credentialSubject``: present, an object or a non-empty list of objects, each making
  at least one claim;
* 4.9 ``validFrom``/``validUntil``: XML Schema ``dateTimeStamp`` values, validFrom not later
  than validUntil;
* 4.10 ``credentialStatus`` and 4.11 ``credentialSchema`` (which needs an ``id``): objects,
  one or a list;
* 4.13 presentations: ``verifiableCredential`` items are objects (a credential or an
  ``EnvelopedVerifiableCredential``); ``holder`` is a URL or an object with an ``id`` URL;
  4.13.1 and 4.13.2 enveloped credentials and presentations: the VC 2.0 context first, a
  ``data:`` URL ``id`` and the enveloped type;
* 5.3 ``relatedResource``: objects, each with an ``id`` unique among them and a
  ``digestSRI`` (SRI hash-expression) or ``digestMultibase``;
* 5.4 ``refreshService``, 5.5 ``termsOfUse``, 5.6 ``evidence``: objects, each with a ``type``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pavilion.credentials.jsonld import VC_V2
from pavilion.credentials.report import CheckFailed
from pavilion.credentials.timeutil import parse_date_time_stamp
from pavilion.errors import InvalidRequest

_URL: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
#: RFC 5646 well-formedness, simplified to the shape every valid tag has.
_LANGUAGE_TAG: Final = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
#: W3C Subresource Integrity 3.5: hash-algo "-" base64-value ["?" options].
_SRI: Final = re.compile(r"^(sha256|sha384|sha512)-[A-Za-z0-9+/]+={0,2}(\?[\x21-\x7e]*)?$")
#: A multibase string: a base prefix then at least one character.
_MULTIBASE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+/=_-]+$")
_LANGUAGE_MEMBERS: Final = frozenset({"@value", "@language", "@direction"})
ENVELOPED_CREDENTIAL: Final = "EnvelopedVerifiableCredential"
ENVELOPED_PRESENTATION: Final = "EnvelopedVerifiablePresentation"

#: Members whose objects MUST have a ``type`` (section, whether an ``id`` is required).
_TYPED_MEMBERS: Final[Mapping[str, tuple[str, bool]]] = {
    "credentialStatus": ("4.10", False),
    "credentialSchema": ("4.11", True),
    "refreshService": ("5.4", False),
    "termsOfUse": ("5.5", False),
    "evidence": ("5.6", False),
    "proof": ("4.12", False),
}


@dataclass(frozen=True)
class Violation:
    """One broken MUST: the member at fault, what the rule asks, and its section."""

    member: str
    rule: str
    section: str

    @property
    def message(self) -> str:
        return f"{self.member}: {self.rule} (VC Data Model 2.0, section {self.section})"


class DataModelError(InvalidRequest):
    """A credential or presentation breaks a MUST of the VC Data Model 2.0."""

    code = "vc-data-model"
    title = "Breaks the VC Data Model 2.0"

    def __init__(self, violations: list[Violation]) -> None:
        first = violations[0]
        super().__init__(
            first.message,
            field=first.member,
            errors=[
                {"field": v.member, "message": v.message, "code": f"section-{v.section}"}
                for v in violations
            ],
        )
        self.violations = violations


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_url(value: object) -> bool:
    return isinstance(value, str) and _URL.match(value) is not None


def _items(value: Any, member: str) -> Iterator[tuple[str, Any]]:
    """(path, item) of a one-or-many member."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield f"{member}[{index}]", item
    else:
        yield member, value


def _check_id(node: Mapping[str, Any], path: str, *, required: bool = False) -> Iterator[Violation]:
    if "id" not in node:
        if required:
            yield Violation(f"{path}.id", "an id is required", "4.4")
        return
    if not _is_url(node["id"]):
        yield Violation(f"{path}.id", "id must be a single URL", "4.4")


def _check_types(value: Any, path: str, *, required: str | None = None) -> Iterator[Violation]:
    types = _as_list(value)
    if not types or not all(isinstance(t, str) and t for t in types):
        yield Violation(path, "type must be a string or a list of non-empty strings", "4.5")
    elif required is not None and required not in types:
        yield Violation(path, f"type must include {required}", "4.5")


def language_value_violations(value: Any, path: str) -> Iterator[Violation]:
    """Section 4.6 and 11.1: a string, a language value object, or a list of them."""
    if isinstance(value, str):
        return
    if isinstance(value, list) and not value:
        yield Violation(path, "must be a string or one or more language value objects", "4.6")
    for item_path, item in _items(value, path):
        if not isinstance(item, dict):
            yield Violation(item_path, "must be a string or a language value object", "4.6")
            continue
        extra = sorted(set(item) - _LANGUAGE_MEMBERS)
        if extra:
            yield Violation(
                item_path,
                "a language value object has only @value, @language and @direction "
                f"(found {', '.join(extra)})",
                "11.1",
            )
        if not isinstance(item.get("@value"), str):
            yield Violation(f"{item_path}.@value", "@value must be a string", "11.1")
        language = item.get("@language")
        if language is not None and not (
            isinstance(language, str) and _LANGUAGE_TAG.match(language)
        ):
            yield Violation(
                f"{item_path}.@language", "@language must be a well-formed BCP 47 tag", "11.1"
            )
        if "@direction" in item and item["@direction"] not in ("ltr", "rtl"):
            yield Violation(f"{item_path}.@direction", "@direction must be ltr or rtl", "11.1")


def _check_names(node: Mapping[str, Any], path: str) -> Iterator[Violation]:
    for member in ("name", "description"):
        if member in node:
            yield from language_value_violations(node[member], f"{path}.{member}")


def _check_context(document: Mapping[str, Any], path: str) -> Iterator[Violation]:
    member = f"{path}.@context"
    if "@context" not in document:
        yield Violation(member, "@context is required", "4.3")
        return
    contexts = document["@context"]
    if not isinstance(contexts, list) or not contexts or contexts[0] != VC_V2:
        yield Violation(
            member, f"@context must be an ordered set whose first item is {VC_V2}", "4.3"
        )
        return
    for index, item in enumerate(contexts[1:], start=1):
        if not (_is_url(item) or isinstance(item, dict)):
            yield Violation(f"{member}[{index}]", "each context must be a URL or an object", "4.3")


def _check_typed_objects(document: Mapping[str, Any], path: str) -> Iterator[Violation]:
    for member, (section, id_required) in _TYPED_MEMBERS.items():
        if member not in document:
            continue
        value = document[member]
        if isinstance(value, list) and not value:
            yield Violation(f"{path}.{member}", "must be one or more objects", section)
        for item_path, item in _items(value, f"{path}.{member}"):
            if not isinstance(item, dict):
                yield Violation(item_path, "must be an object", section)
                continue
            if "type" not in item:
                yield Violation(f"{item_path}.type", f"every {member} must have a type", section)
            else:
                yield from _check_types(item["type"], f"{item_path}.type")
            yield from _check_id(item, item_path, required=id_required)


def _check_related_resources(document: Mapping[str, Any], path: str) -> Iterator[Violation]:
    if "relatedResource" not in document:
        return
    value = document["relatedResource"]
    member = f"{path}.relatedResource"
    if isinstance(value, list) and not value:
        yield Violation(member, "must be one or more objects", "5.3")
    seen: set[str] = set()
    for item_path, item in _items(value, member):
        if not isinstance(item, dict):
            yield Violation(item_path, "must be an object with an id and a digest", "5.3")
            continue
        yield from _check_id(item, item_path, required=True)
        resource_id = item.get("id")
        if isinstance(resource_id, str):
            if resource_id in seen:
                yield Violation(
                    f"{item_path}.id", "id must be unique among the related resources", "5.3"
                )
            seen.add(resource_id)
        if "digestSRI" not in item and "digestMultibase" not in item:
            yield Violation(item_path, "needs a digestSRI or a digestMultibase", "5.3")
        for digest_path, digest in _items(item.get("digestSRI", []), f"{item_path}.digestSRI"):
            if not (isinstance(digest, str) and _SRI.match(digest)):
                yield Violation(digest_path, "must be an SRI hash-expression", "5.3")
        for digest_path, digest in _items(
            item.get("digestMultibase", []), f"{item_path}.digestMultibase"
        ):
            if not (isinstance(digest, str) and _MULTIBASE.match(digest)):
                yield Violation(digest_path, "must be a multibase string", "5.3")
        if "mediaType" in item and not (
            isinstance(item["mediaType"], str) and "/" in item["mediaType"]
        ):
            yield Violation(f"{item_path}.mediaType", "must be a media type", "5.3")


def _check_validity(document: Mapping[str, Any], path: str) -> Iterator[Violation]:
    moments = {}
    for member in ("validFrom", "validUntil"):
        if member in document:
            try:
                moments[member] = parse_date_time_stamp(document[member], member)
            except CheckFailed:
                yield Violation(
                    f"{path}.{member}", "must be an XML Schema dateTimeStamp string", "4.9"
                )
    if len(moments) == 2 and moments["validFrom"] > moments["validUntil"]:
        yield Violation(f"{path}.validFrom", "validFrom must not be later than validUntil", "4.9")


def _check_issuer(document: Mapping[str, Any], path: str) -> Iterator[Violation]:
    member = f"{path}.issuer"
    if "issuer" not in document:
        yield Violation(member, "issuer is required", "4.7")
        return
    issuer = document["issuer"]
    if isinstance(issuer, dict):
        if not _is_url(issuer.get("id")):
            yield Violation(f"{member}.id", "an issuer object must have an id that is a URL", "4.7")
        yield from _check_names(issuer, member)
    elif not _is_url(issuer):
        yield Violation(member, "issuer must be a URL or an object whose id is a URL", "4.7")


def _check_subjects(document: Mapping[str, Any], path: str) -> Iterator[Violation]:
    member = f"{path}.credentialSubject"
    if "credentialSubject" not in document:
        yield Violation(member, "credentialSubject is required", "4.8")
        return
    value = document["credentialSubject"]
    if isinstance(value, list) and not value:
        yield Violation(member, "must be one or more objects", "4.8")
    for item_path, item in _items(value, member):
        if not isinstance(item, dict):
            yield Violation(item_path, "each credential subject must be an object", "4.8")
            continue
        if not set(item) - {"id"}:
            yield Violation(item_path, "each credential subject must make a claim", "4.8")
        yield from _check_id(item, item_path)


def credential_violations(
    document: Mapping[str, Any], *, path: str = "credential"
) -> list[Violation]:
    """Every MUST of sections 4 and 5 that an unsecured credential breaks (empty when none)."""
    if not isinstance(document, Mapping):
        return [Violation(path, "a credential must be a JSON object", "4.1")]
    out = [*_check_context(document, path), *_check_id(document, path)]
    if "type" not in document:
        out.append(Violation(f"{path}.type", "type is required", "4.5"))
    else:
        out.extend(_check_types(document["type"], f"{path}.type", required="VerifiableCredential"))
    for checks in (
        _check_names(document, path),
        _check_issuer(document, path),
        _check_subjects(document, path),
        _check_validity(document, path),
        _check_typed_objects(document, path),
        _check_related_resources(document, path),
    ):
        out.extend(checks)
    return out


def enveloped_violations(value: Any, path: str, *, kind: str) -> list[Violation]:
    """Sections 4.13.1 and 4.13.2: an enveloped credential or presentation's own shape."""
    if not isinstance(value, dict):
        return [Violation(path, f"an {kind} must be an object", "4.13")]
    out: list[Violation] = []
    contexts = value.get("@context")
    first = contexts[0] if isinstance(contexts, list) and contexts else contexts
    if first != VC_V2:
        out.append(Violation(f"{path}.@context", f"@context must start with {VC_V2}", "4.13.1"))
    if value.get("type") != kind and kind not in _as_list(value.get("type")):
        out.append(Violation(f"{path}.type", f"type must be {kind}", "4.13.1"))
    if not (isinstance(value.get("id"), str) and value["id"].startswith("data:")):
        out.append(Violation(f"{path}.id", "id must be a data: URL", "4.13.1"))
    return out


def presentation_violations(
    document: Mapping[str, Any], *, path: str = "presentation"
) -> list[Violation]:
    """Every MUST of section 4.13 that a presentation breaks; its credentials are checked
    on their own (enveloped ones for their envelope here, their content when opened)."""
    if not isinstance(document, Mapping):
        return [Violation(path, "a presentation must be a JSON object", "4.13")]
    out = [*_check_context(document, path), *_check_id(document, path)]
    if "type" not in document:
        out.append(Violation(f"{path}.type", "type is required", "4.5"))
    else:
        out.extend(
            _check_types(document["type"], f"{path}.type", required="VerifiablePresentation")
        )
    if "holder" in document:
        holder = document["holder"]
        if isinstance(holder, dict):
            if not _is_url(holder.get("id")):
                out.append(
                    Violation(f"{path}.holder.id", "a holder object must have an id URL", "4.13")
                )
        elif not _is_url(holder):
            out.append(
                Violation(f"{path}.holder", "holder must be a URL or an object with an id", "4.13")
            )
    for item_path, item in _items(
        document.get("verifiableCredential", []), f"{path}.verifiableCredential"
    ):
        if not isinstance(item, dict):
            out.append(Violation(item_path, "each verifiable credential must be an object", "4.13"))
        elif ENVELOPED_CREDENTIAL in _as_list(item.get("type")):
            out.extend(enveloped_violations(item, item_path, kind=ENVELOPED_CREDENTIAL))
        else:
            out.extend(credential_violations(item, path=item_path))
    out.extend(
        _check_typed_objects({"proof": document["proof"]}, path) if "proof" in document else []
    )
    return out


def check_credential(document: Mapping[str, Any], *, path: str = "credential") -> None:
    """Raise :class:`DataModelError` naming every broken MUST (the first in ``detail``)."""
    violations = credential_violations(document, path=path)
    if violations:
        raise DataModelError(violations)


def check_presentation(document: Mapping[str, Any], *, path: str = "presentation") -> None:
    """Raise :class:`DataModelError` naming every broken MUST of the presentation."""
    violations = presentation_violations(document, path=path)
    if violations:
        raise DataModelError(violations)
