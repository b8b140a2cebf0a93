"""The local JSON-LD context cache and the well-formedness check; the template registry."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pavilion.credentials import jsonld, templates
from pavilion.credentials.jsonld import JsonLdError, check_document
from pavilion.errors import InvalidRequest

CONTEXTS = Path(str(resources.files("pavilion.credentials").joinpath("contexts")))
V2 = jsonld.VC_V2
PAV = jsonld.PAVILION_ELIGIBILITY_V1


def test_the_cached_w3c_contexts_are_the_published_bytes() -> None:
    """The README records the SHA-256 of each file as shipped in the npm package."""
    readme = (CONTEXTS / "README.md").read_text("utf-8")
    recorded = {
        name: digest for digest, name in re.findall(r"([0-9a-f]{64})  (\S+)\.json(?:ld)?", readme)
    }
    files = {
        "v2": "credentials-v2.json",
        "v1": "credentials-v1.json",
        "undefined-terms-v2": "undefined-terms-v2.json",
        "data-integrity-v2": "data-integrity-v2.json",
        "credentials-examples-v2": "credentials-examples-v2.json",
    }
    assert set(recorded) == set(files)
    for name, file in files.items():
        assert hashlib.sha256((CONTEXTS / file).read_bytes()).hexdigest() == recorded[name]
    for url, file in jsonld.CONTEXT_FILES.items():
        assert url in readme
        assert "@context" in json.loads((CONTEXTS / file).read_text("utf-8"))


def test_unknown_context_urls_are_never_fetched() -> None:
    with pytest.raises(JsonLdError, match="not in the local cache") as raised:
        jsonld.cached_context("https://example.com/contexts/unknown/v1")
    assert raised.value.field == "@context"


def _vc(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": [V2, PAV],
        "type": ["VerifiableCredential", "StudentStatusCredential"],
        "issuer": "https://connector.example",
        "credentialSubject": {"studentStatus": {"current": True}},
    }
    document.update(changes)
    return document


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"@context": [V2, 7]}, "must be a URL or an inline context object"),
        ({"@context": [V2, {"id": "urn:x"}]}, "the protected term 'id' may not be redefined"),
        ({"@context": [V2, PAV, {"studentStatus": "urn:x"}]}, "protected term 'studentStatus'"),
        ({"@context": [V2, {"@import": "https://x.example"}]}, "@import is not supported"),
        ({"@context": [V2] * 9}, "more than 8 contexts"),
        ({"credentialSubject": {"notATerm": 1}}, "'notATerm' is not defined"),
        ({"type": ["VerifiableCredential", "NotAType"]}, "type 'NotAType' is not defined"),
        ({"credentialSubject": {"studentStatus": {"@context": 7}}}, "a context must be a URL"),
        ({"@unknownKeyword": 1}, "not a JSON-LD keyword"),
        ({"@context": [V2, "https://example.com/ctx"]}, "not in the local cache"),
    ],
)
def test_documents_with_undefined_terms_or_unknown_contexts_are_refused(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(JsonLdError, match=re.escape(message)):
        check_document(_vc(**changes))


def test_inline_contexts_define_terms_without_any_network() -> None:
    """VC Data Model 2.0, 4.3: items after the base context are URLs or objects, in any mix."""
    inline = {"alumniOf": "https://schema.org/alumniOf", "AlumniCredential": "urn:example:A"}
    document = _vc(
        **{"@context": [V2, PAV, inline]},
        type=["VerifiableCredential", "AlumniCredential"],
        credentialSubject={"alumniOf": "The School of Examples"},
    )
    check_document(document)
    check_document(document)  # a second time from the shape memo, keyed by content
    other = dict(inline, alumniOf=None)  # a null term: alumniOf is no longer defined
    with pytest.raises(JsonLdError, match="alumniOf"):
        check_document({**document, "@context": [V2, PAV, other]})
    # the examples context of the spec's own examples is cached: its @vocab defines any term
    check_document(
        {
            "@context": [V2, jsonld.EXAMPLES_V2],
            "type": ["VerifiableCredential", "ExampleDegreeCredential"],
            "issuer": "https://u.example",
            "credentialSubject": {"degree": {"type": "ExampleBachelorDegree", "name": "BSc"}},
        }
    )
    # a nested node may bring its own inline context
    check_document(
        _vc(
            credentialSubject={
                "studentStatus": {"current": True},
                "extra": {"@context": {"k": "urn:k"}, "k": 1},
            },
            **{"@context": [V2, PAV, {"extra": "urn:extra"}]},
        )
    )


def test_missing_context_is_named() -> None:
    with pytest.raises(JsonLdError) as raised:
        check_document({"type": "VerifiableCredential"}, where="vc")
    assert raised.value.field == "vc.@context"


def test_well_formed_documents_pass() -> None:
    check_document(_vc())
    # Absolute IRIs as keys and types, @value objects, and terms of type-scoped contexts.
    check_document(
        _vc(
            credentialSubject={
                "https://schema.org/name": {"@value": "x", "@language": "en"},
                "studentStatus": {"current": True},
            },
            evidence=[{"type": "DataProviderAttestation", "asOf": "2026-01-01T00:00:00Z"}],
            credentialStatus={
                "type": "BitstringStatusListEntry",
                "statusPurpose": "revocation",
                "statusListIndex": "1",
                "statusListCredential": "https://x.example/1",
                "statusMessage": [{"status": "0x0", "message": "valid"}],
            },
        )
    )


def test_type_scoped_terms_do_not_leak_into_nested_nodes() -> None:
    """credentialSubject is a VerifiableCredential term; inside the subject it means nothing."""
    with pytest.raises(JsonLdError, match="credentialSubject"):
        check_document(_vc(credentialSubject={"credentialSubject": {"a": 1}}))


def test_a_presentation_holds_credentials_that_carry_their_own_context() -> None:
    enveloped = {
        "@context": V2,
        "id": "data:application/vc+jwt,a.b.c",
        "type": "EnvelopedVerifiableCredential",
    }
    check_document(
        {"@context": [V2], "type": "VerifiablePresentation", "verifiableCredential": [enveloped]}
    )
    # @context: null in verifiableCredential's scoped context: without its own, nothing is defined.
    with pytest.raises(JsonLdError):
        check_document(
            {
                "@context": [V2],
                "type": "VerifiablePresentation",
                "verifiableCredential": [{"type": "EnvelopedVerifiableCredential"}],
            }
        )


def test_protected_terms_cannot_be_redefined_but_undefined_terms_context_defines_all() -> None:
    jsonld._memo.clear()
    v1_then_v2 = {"@context": [jsonld.VC_V1, V2], "type": "VerifiableCredential"}
    with pytest.raises(JsonLdError, match="protected term"):
        check_document(v1_then_v2)
    check_document(
        {
            "@context": [V2, jsonld.UNDEFINED_TERMS_V2],
            "type": ["VerifiableCredential", "Anything"],
            "credentialSubject": {"whatever": {"nested": 1}},
        }
    )


def test_the_v1_context_checks_jwt_vc_documents() -> None:
    check_document(
        {
            "@context": [jsonld.VC_V1, PAV],
            "type": ["VerifiableCredential", "AgeOverCredential"],
            "credentialSubject": {"ageOver": {"threshold": 18, "over": True}},
            "evidence": [{"type": "DataProviderAttestation", "provider": "p"}],
        },
        where="vc",
    )


def test_internal_context_rules() -> None:
    with pytest.raises(JsonLdError, match="@import"):
        jsonld._define(jsonld._EMPTY, {"@import": "https://x"}, override_protected=False, where="x")
    with pytest.raises(JsonLdError, match="URL, an object or null"):
        jsonld._process_uncached(jsonld._EMPTY, 5, override_protected=False, where="x")
    protected = jsonld._define(
        jsonld._EMPTY, {"@protected": True, "a": "urn:a"}, override_protected=False, where="x"
    )
    with pytest.raises(JsonLdError, match="protected"):
        jsonld._process_uncached(protected, None, override_protected=False, where="x")
    assert jsonld._process_uncached(protected, None, override_protected=True, where="x").terms == {}
    with pytest.raises(JsonLdError, match="not a string or an object"):
        jsonld._term("a", 5, False)
    nulled = jsonld._define(jsonld._EMPTY, {"a": None}, override_protected=False, where="x")
    assert not nulled.defines("a")
    reverse = jsonld._term("r", {"@reverse": "urn:r"}, False)
    assert reverse.iri == "urn:r"
    assert jsonld._expand("sec:proof", {"sec": jsonld._Term("https://w3id.org/security#")}) == (
        "https://w3id.org/security#proof"
    )
    assert jsonld._expand("https://x.example/a", {}) == "https://x.example/a"
    with pytest.raises(JsonLdError, match="nested deeper"):
        nested: dict[str, Any] = {"studentStatus": {}}
        cursor = nested["studentStatus"]
        for _ in range(40):
            cursor["studentStatus"] = {}
            cursor = cursor["studentStatus"]
        check_document(_vc(credentialSubject=nested))


# -- templates ----------------------------------------------------------------------------------


def test_templates_are_versioned_and_resolved_per_claim_type() -> None:
    assert templates.resolve("student_status").id == "student_status@1"
    assert (
        templates.resolve("age_over", "age_over@1").vct
        == "https://pavilion.example/vct/age-over/v1"
    )
    with pytest.raises(InvalidRequest) as raised:
        templates.resolve("age_over", "student_status@1")
    assert raised.value.field == "template"
    with pytest.raises(InvalidRequest) as raised:
        templates.resolve("age_over", "age_over@9")
    assert raised.value.field == "template"
    with pytest.raises(InvalidRequest) as raised:
        templates.latest("shoe_size")
    assert raised.value.field == "claim"
    assert templates.by_credential_type("AgeOverCredential") is templates.TEMPLATES["age_over@1"]
    assert templates.by_credential_type(["VerifiableCredential"]) is None
    assert templates.by_credential_type(5) is None
    assert templates.by_vct(5) is None


def test_templates_map_decisions_to_sd_jwt_claims() -> None:
    t = templates.TEMPLATES
    assert t["student_status@1"].to_sd_jwt({"studentStatus": {"current": True}}) == {
        "student_status": {"current": True}
    }
    assert t["age_over@1"].to_sd_jwt({"ageOver": {"threshold": 18, "over": False}}) == {
        "age_equal_or_over": {"18": False}
    }
    assert t["membership@1"].to_sd_jwt({"membership": {"group": "g", "member": True}}) == {
        "membership": {"group": "g", "member": True}
    }
    assert t["dp_accreditation@1"].to_sd_jwt(
        {"accreditedClaimTypes": ["age_over"], "issuingKey": "k"}
    ) == {"accredited_claim_types": ["age_over"], "issuing_key": "k"}
    described = t["student_status@1"].describe()
    assert described["max_age_seconds"] == 30 * 86400
    assert described["type"] == ["VerifiableCredential", "StudentStatusCredential"]


def test_template_schemas_name_the_failing_member() -> None:
    t = templates.TEMPLATES["age_over@1"]
    assert t.subject_errors({"id": "did:x", "ageOver": {"threshold": 18, "over": True}}) == []
    errors = t.subject_errors({"ageOver": {"threshold": 0, "over": True}})
    assert errors[0].startswith("ageOver/threshold")
    assert t.sd_jwt_errors({"age_equal_or_over": {"abc": True}}) != []
