"""VC Data Model 2.0 sections 4, 5 and 11.1: one case per MUST statement, from the spec's text.

Each case breaks one rule of a credential that otherwise conforms, and expects the violation
to name the member at fault and the section that states the rule.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from pavilion.credentials import data_model
from pavilion.credentials.data_model import DataModelError, Violation
from pavilion.errors import InvalidRequest

VC2 = "https://www.w3.org/ns/credentials/v2"
EXAMPLES = "https://www.w3.org/ns/credentials/examples/v2"


def credential() -> dict[str, Any]:
    """The spec's own minimal example (section 4, Example 1's shape), with every optional
    member that the rules below touch, each conforming."""
    return {
        "@context": [VC2, EXAMPLES],
        "id": "http://university.example/credentials/3732",
        "type": ["VerifiableCredential", "ExampleDegreeCredential"],
        "name": "Example University Degree",
        "description": {"@value": "Un diplôme", "@language": "fr", "@direction": "ltr"},
        "issuer": {
            "id": "https://university.example/issuers/565049",
            "name": [
                {"@value": "Example University", "@language": "en"},
                {"@value": "Université Exemple", "@language": "fr-CA"},
            ],
        },
        "validFrom": "2010-01-01T00:00:00Z",
        "validUntil": "2030-01-01T19:23:24Z",
        "credentialSubject": {
            "id": "did:example:ebfeb1f712ebc6f1c276e12ec21",
            "degree": {"type": "ExampleBachelorDegree", "name": "Bachelor of Science"},
        },
        "credentialStatus": {
            "id": "https://university.example/credentials/status/3#94567",
            "type": "BitstringStatusListEntry",
        },
        "credentialSchema": [
            {"id": "https://example.org/examples/degree.json", "type": "JsonSchema"}
        ],
        "refreshService": {"type": "VerifiableCredentialRefreshService2021"},
        "termsOfUse": [{"type": "TrustFrameworkPolicy", "id": "https://policy.example/1"}],
        "evidence": [{"type": ["Evidence"], "id": "https://university.example/evidence/1"}],
        "relatedResource": [
            {
                "id": "https://www.w3.org/ns/credentials/v2",
                "digestSRI": "sha384-Ml/HrjlBCNWyAX91hr6LFV2Y3heB5Tcr6IeE4/Tje8YyzYBM8IhqjHWiWpr8+ZbYU",
            },
            {
                "id": "https://example.org/photo.png",
                "digestMultibase": "uEiBZlVztZpfWHgPyslVv6-UwirFoQoRvW1htfx963sknNA",
            },
        ],
    }


def violations(document: dict[str, Any]) -> list[Violation]:
    return data_model.credential_violations(document)


def test_a_conforming_credential_has_no_violation() -> None:
    assert violations(credential()) == []
    data_model.check_credential(credential())  # does not raise


Mutation = Callable[[dict[str, Any]], None]


def _set(member: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        doc[member] = value

    return mutate


def _drop(member: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        del doc[member]

    return mutate


def _nested(*path: str | int, value: Any = None, delete: bool = False) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        if delete:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return mutate


MUSTS: list[tuple[str, Mutation, str, str]] = [
    # 4.3 Contexts
    ("@context MUST be present", _drop("@context"), "credential.@context", "4.3"),
    (
        "first item MUST be the v2 URL",
        _set("@context", [EXAMPLES, VC2]),
        "credential.@context",
        "4.3",
    ),
    ("@context MUST be an ordered set", _set("@context", VC2), "credential.@context", "4.3"),
    ("later items URLs or objects", _set("@context", [VC2, 7]), "credential.@context[1]", "4.3"),
    # 4.4 Identifiers
    ("id MUST be a single URL (null)", _set("id", None), "credential.id", "4.4"),
    ("id MUST be a single URL (list)", _set("id", ["urn:a", "urn:b"]), "credential.id", "4.4"),
    ("id MUST be a URL", _set("id", "not a url"), "credential.id", "4.4"),
    (
        "subject id MUST be a URL",
        _nested("credentialSubject", "id", value=""),
        "credential.credentialSubject.id",
        "4.4",
    ),
    (
        "status id MUST be a URL",
        _nested("credentialStatus", "id", value=3),
        "credential.credentialStatus.id",
        "4.4",
    ),
    # 4.5 Types
    ("type MUST be present", _drop("type"), "credential.type", "4.5"),
    (
        "type MUST include VerifiableCredential",
        _set("type", ["ExampleDegreeCredential"]),
        "credential.type",
        "4.5",
    ),
    ("types are strings", _set("type", ["VerifiableCredential", ""]), "credential.type", "4.5"),
    (
        "credentialStatus MUST have a type",
        _nested("credentialStatus", "type", delete=True),
        "credential.credentialStatus.type",
        "4.10",
    ),
    (
        "credentialSchema MUST have a type",
        _nested("credentialSchema", 0, "type", delete=True),
        "credential.credentialSchema[0].type",
        "4.11",
    ),
    (
        "refreshService MUST have a type",
        _set("refreshService", {"id": "https://r.example"}),
        "credential.refreshService.type",
        "5.4",
    ),
    (
        "termsOfUse MUST have a type",
        _set("termsOfUse", [{"id": "https://t.example"}]),
        "credential.termsOfUse[0].type",
        "5.5",
    ),
    (
        "evidence MUST have a type",
        _set("evidence", [{"id": "https://e.example"}]),
        "credential.evidence[0].type",
        "5.6",
    ),
    (
        "evidence entries are objects",
        _set("evidence", ["https://e.example"]),
        "credential.evidence[0]",
        "5.6",
    ),
    # 4.6 Names and descriptions, 11.1 language value objects
    ("name MUST be a string or language object", _set("name", 42), "credential.name", "4.6"),
    (
        "language objects: only @value/@language/@direction",
        _set("description", {"@value": "x", "@language": "en", "extra": 1}),
        "credential.description",
        "11.1",
    ),
    ("@value MUST be a string", _set("name", {"@value": 3}), "credential.name.@value", "11.1"),
    (
        "@language MUST be BCP 47",
        _set("name", {"@value": "x", "@language": "en_US!"}),
        "credential.name.@language",
        "11.1",
    ),
    (
        "@direction ltr or rtl",
        _set("name", {"@value": "x", "@direction": "up"}),
        "credential.name.@direction",
        "11.1",
    ),
    (
        "issuer name too",
        _nested("issuer", "name", 1, value={"@value": "x", "foo": "bar"}),
        "credential.issuer.name[1]",
        "11.1",
    ),
    # 4.7 Issuer
    ("issuer MUST be present", _drop("issuer"), "credential.issuer", "4.7"),
    ("issuer MUST be a URL", _set("issuer", "Example University"), "credential.issuer", "4.7"),
    (
        "issuer object MUST have an id URL",
        _nested("issuer", "id", delete=True),
        "credential.issuer.id",
        "4.7",
    ),
    # 4.8 Credential subject
    (
        "credentialSubject MUST be present",
        _drop("credentialSubject"),
        "credential.credentialSubject",
        "4.8",
    ),
    (
        "subjects are objects",
        _set("credentialSubject", ["did:example:1"]),
        "credential.credentialSubject[0]",
        "4.8",
    ),
    (
        "a subject makes a claim",
        _set("credentialSubject", {"id": "did:example:1"}),
        "credential.credentialSubject",
        "4.8",
    ),
    ("one or more subjects", _set("credentialSubject", []), "credential.credentialSubject", "4.8"),
    # 4.9 Validity period
    (
        "validFrom MUST be a dateTimeStamp",
        _set("validFrom", "2010-01-01"),
        "credential.validFrom",
        "4.9",
    ),
    (
        "validUntil MUST be a dateTimeStamp",
        _set("validUntil", "2030-01-01T00:00:00"),
        "credential.validUntil",
        "4.9",
    ),
    (
        "validFrom MUST NOT be after validUntil",
        _set("validFrom", "2031-01-01T00:00:00Z"),
        "credential.validFrom",
        "4.9",
    ),
    # 4.11 Data schemas
    (
        "credentialSchema id MUST be present",
        _nested("credentialSchema", 0, "id", delete=True),
        "credential.credentialSchema[0].id",
        "4.4",
    ),
    # 5.3 Integrity of related resources
    (
        "relatedResource MUST be objects",
        _set("relatedResource", ["https://a.example"]),
        "credential.relatedResource[0]",
        "5.3",
    ),
    (
        "relatedResource id is REQUIRED",
        _nested("relatedResource", 0, "id", delete=True),
        "credential.relatedResource[0].id",
        "4.4",
    ),
    (
        "relatedResource id MUST be unique",
        _nested("relatedResource", 1, "id", value=VC2),
        "credential.relatedResource[1].id",
        "5.3",
    ),
    (
        "a digest MUST be present",
        _nested("relatedResource", 1, "digestMultibase", delete=True),
        "credential.relatedResource[1]",
        "5.3",
    ),
    (
        "digestSRI is a hash-expression",
        _nested("relatedResource", 0, "digestSRI", value="md5-abc"),
        "credential.relatedResource[0].digestSRI",
        "5.3",
    ),
]


@pytest.mark.parametrize(
    ("rule", "mutate", "member", "section"), MUSTS, ids=[case[0] for case in MUSTS]
)
def test_each_must_names_the_member_and_the_section(
    rule: str, mutate: Mutation, member: str, section: str
) -> None:
    document = credential()
    mutate(document)
    found = violations(document)
    assert (member, section) in [(v.member, v.section) for v in found], (rule, found)


def test_the_issuer_answer_is_a_422_naming_every_broken_member() -> None:
    document = credential()
    document["id"] = None
    document["credentialStatus"] = {"id": "https://s.example/1"}
    with pytest.raises(DataModelError) as caught:
        data_model.check_credential(document)
    error = caught.value
    assert isinstance(error, InvalidRequest)
    assert error.field == "credential.id"
    assert "section 4.4" in error.detail
    assert [e["field"] for e in error.errors] == [
        "credential.id",
        "credential.credentialStatus.type",
    ]


def presentation() -> dict[str, Any]:
    return {
        "@context": [VC2],
        "id": "urn:uuid:3978344f-8596-4c3a-a978-8fcaba3903c5",
        "type": ["VerifiablePresentation"],
        "holder": {"id": "did:example:holder", "name": "Pat"},
        "verifiableCredential": [
            {
                "@context": [VC2],
                "id": "data:application/vc+jwt,eyJ...",
                "type": "EnvelopedVerifiableCredential",
            },
            credential(),
        ],
    }


def test_a_conforming_presentation_has_no_violation() -> None:
    assert data_model.presentation_violations(presentation()) == []


PRESENTATION_MUSTS: list[tuple[str, Mutation, str]] = [
    ("id MUST be a URL", _set("id", "x y"), "presentation.id"),
    (
        "type MUST include VerifiablePresentation",
        _set("type", ["VerifiableCredential"]),
        "presentation.type",
    ),
    ("type MUST be present", _drop("type"), "presentation.type"),
    ("holder object MUST have an id", _set("holder", {"name": "Pat"}), "presentation.holder.id"),
    ("holder MUST be a URL", _set("holder", "Pat"), "presentation.holder"),
    (
        "enveloped credential id MUST be a data: URL",
        _nested("verifiableCredential", 0, "id", value="https://x.example"),
        "presentation.verifiableCredential[0].id",
    ),
    (
        "enveloped credential context",
        _nested("verifiableCredential", 0, "@context", value=[EXAMPLES]),
        "presentation.verifiableCredential[0].@context",
    ),
    (
        "embedded credentials follow the credential rules",
        _nested("verifiableCredential", 1, "id", value=None),
        "presentation.verifiableCredential[1].id",
    ),
    (
        "credentials are objects",
        _set("verifiableCredential", ["eyJ..."]),
        "presentation.verifiableCredential[0]",
    ),
    ("a proof MUST have a type", _set("proof", {"proofValue": "z1"}), "presentation.proof.type"),
]


@pytest.mark.parametrize(
    ("rule", "mutate", "member"), PRESENTATION_MUSTS, ids=[c[0] for c in PRESENTATION_MUSTS]
)
def test_each_presentation_must_names_the_member(rule: str, mutate: Mutation, member: str) -> None:
    document = copy.deepcopy(presentation())
    mutate(document)
    found = data_model.presentation_violations(document)
    assert member in [v.member for v in found], (rule, found)
    with pytest.raises(DataModelError):
        data_model.check_presentation(document)


def test_non_objects_are_refused_outright() -> None:
    assert violations("{}")[0].member == "credential"  # type: ignore[arg-type]
    assert data_model.presentation_violations([])[0].member == "presentation"  # type: ignore[arg-type]
    assert (
        data_model.enveloped_violations("x", "vc", kind="EnvelopedVerifiableCredential")[0].section
        == "4.13"
    )
