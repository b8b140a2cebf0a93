"""Credential templates: per claim type and version, how a decision becomes each format.

A template is named ``<claim type>@<version>`` (``student_status@1``). It fixes the W3C
credential type, the SD-JWT VC ``vct``, the JSON Schema the credential subject must meet, the
maximum age of the data provider's answer (which sets ``validUntil`` and drives the freshness
check), and how the subject claims a decision produces (the VC form, camelCase, e.g.
``{"ageOver": {"threshold": 18, "over": true}}``) map to SD-JWT VC claims
(``{"age_equal_or_over": {"18": true}}``). Versions are immutable once published: a change
of shape is a new version, and verifiers keep accepting the old ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypedDict

import jsonschema_rs

from pavilion.errors import InvalidRequest

PAVILION_CONTEXT = "https://pavilion.example/contexts/eligibility/v1"
VCT_BASE = "https://pavilion.example/vct/"


class CredentialFormat(StrEnum):
    #: VC Data Model 1.1 as a JWT with the ``vc`` claim (older verifiers).
    JWT_VC = "jwt_vc"
    #: VC Data Model 2.0 secured with VC-JOSE-COSE (``application/vc+jwt``), enveloped.
    VC2_JOSE = "vc2_jose"
    #: IETF SD-JWT VC (``application/dc+sd-jwt``).
    SD_JWT_VC = "sd_jwt_vc"


DEFAULT_FORMAT = CredentialFormat.JWT_VC

Claims = dict[str, Any]


class TemplateView(TypedDict):
    """A template as listed: its id, the types and vct it issues, and its subject schema."""

    id: str
    claim_type: str
    version: int
    type: list[str]
    vct: str
    max_age_seconds: int
    subject_schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class CredentialTemplate:
    claim_type: str
    version: int
    #: The W3C credential type next to ``VerifiableCredential``.
    credential_type: str
    #: The maximum age of the DP's answer: sets validUntil, and the freshness check.
    max_age: timedelta
    #: JSON Schema of the credential subject in the VC form (without ``id``).
    subject_schema: Mapping[str, Any]
    #: JSON Schema of the SD-JWT VC claims (all optional: a holder may withhold any).
    sd_jwt_schema: Mapping[str, Any]
    to_sd_jwt: Callable[[Claims], Claims]
    description: str = ""
    _validators: dict[str, jsonschema_rs.Validator] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def id(self) -> str:
        return f"{self.claim_type}@{self.version}"

    @property
    def vct(self) -> str:
        return f"{VCT_BASE}{self.claim_type.replace('_', '-')}/v{self.version}"

    @property
    def types(self) -> list[str]:
        return ["VerifiableCredential", self.credential_type]

    def subject_errors(self, subject: Mapping[str, Any]) -> list[str]:
        return self._errors(
            "vc", self.subject_schema, {k: v for k, v in subject.items() if k != "id"}
        )

    def sd_jwt_errors(self, claims: Mapping[str, Any]) -> list[str]:
        return self._errors("sd", self.sd_jwt_schema, claims)

    def _errors(self, kind: str, schema: Mapping[str, Any], value: Mapping[str, Any]) -> list[str]:
        validator = self._validators.get(kind)
        if validator is None:
            validator = self._validators[kind] = jsonschema_rs.Draft202012Validator(
                dict(schema), offline=True
            )
        instance = dict(value)
        if validator.is_valid(instance):  # the hot path: about 0.5 us
            return []
        # Only a failure pays for the explanation: every error, each with its path.
        return [
            f"{'/'.join(str(p) for p in error.instance_path) or '(subject)'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]

    def describe(self) -> TemplateView:
        return TemplateView(
            id=self.id,
            claim_type=self.claim_type,
            version=self.version,
            type=self.types,
            vct=self.vct,
            max_age_seconds=int(self.max_age.total_seconds()),
            subject_schema=dict(self.subject_schema),
            description=self.description,
        )


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _student_to_sd(claims: Claims) -> Claims:
    return {"student_status": {"current": claims["studentStatus"]["current"]}}


def _age_to_sd(claims: Claims) -> Claims:
    age = claims["ageOver"]
    return {"age_equal_or_over": {str(age["threshold"]): age["over"]}}


def _membership_to_sd(claims: Claims) -> Claims:
    member = claims["membership"]
    return {"membership": {"group": member["group"], "member": member["member"]}}


def _accreditation_to_sd(claims: Claims) -> Claims:
    return {
        "accredited_claim_types": list(claims["accreditedClaimTypes"]),
        "issuing_key": claims["issuingKey"],
    }


_CLAIM_TYPE_NAMES = ["student_status", "age_over", "membership"]

_TEMPLATES = (
    CredentialTemplate(
        claim_type="student_status",
        version=1,
        credential_type="StudentStatusCredential",
        max_age=timedelta(days=30),
        subject_schema=_obj(
            {"studentStatus": _obj({"current": {"type": "boolean"}}, ["current"])},
            ["studentStatus"],
        ),
        sd_jwt_schema=_obj({"student_status": _obj({"current": {"type": "boolean"}})}),
        to_sd_jwt=_student_to_sd,
        description="The subject is (or is not) a current student of the data provider.",
    ),
    CredentialTemplate(
        claim_type="age_over",
        version=1,
        credential_type="AgeOverCredential",
        max_age=timedelta(days=365),
        subject_schema=_obj(
            {
                "ageOver": _obj(
                    {
                        "threshold": {"type": "integer", "minimum": 1, "maximum": 150},
                        "over": {"type": "boolean"},
                    },
                    ["threshold", "over"],
                )
            },
            ["ageOver"],
        ),
        sd_jwt_schema=_obj(
            {
                "age_equal_or_over": {
                    "type": "object",
                    "patternProperties": {"^[1-9][0-9]{0,2}$": {"type": "boolean"}},
                    "additionalProperties": False,
                }
            }
        ),
        to_sd_jwt=_age_to_sd,
        description="The subject's age is at least the threshold (SD-JWT VC: age_equal_or_over).",
    ),
    CredentialTemplate(
        claim_type="membership",
        version=1,
        credential_type="MembershipCredential",
        max_age=timedelta(days=30),
        subject_schema=_obj(
            {
                "membership": _obj(
                    {
                        "group": {"type": "string", "minLength": 1, "maxLength": 200},
                        "member": {"type": "boolean"},
                    },
                    ["group", "member"],
                )
            },
            ["membership"],
        ),
        sd_jwt_schema=_obj(
            {
                "membership": _obj(
                    {
                        "group": {"type": "string", "minLength": 1, "maxLength": 200},
                        "member": {"type": "boolean"},
                    }
                )
            }
        ),
        to_sd_jwt=_membership_to_sd,
        description="The subject is (or is not) a member of the group.",
    ),
    CredentialTemplate(
        claim_type="dp_accreditation",
        version=1,
        credential_type="DataProviderAccreditationCredential",
        max_age=timedelta(days=365),
        subject_schema=_obj(
            {
                "accreditedClaimTypes": {
                    "type": "array",
                    "items": {"enum": _CLAIM_TYPE_NAMES},
                    "minItems": 1,
                    "uniqueItems": True,
                },
                "issuingKey": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
            },
            ["accreditedClaimTypes", "issuingKey"],
        ),
        sd_jwt_schema=_obj(
            {
                "accredited_claim_types": {"type": "array", "items": {"type": "string"}},
                "issuing_key": {"type": "string"},
            }
        ),
        to_sd_jwt=_accreditation_to_sd,
        description="The broker accredits a data provider's issuing key for claim types.",
    ),
)

TEMPLATES: dict[str, CredentialTemplate] = {t.id: t for t in _TEMPLATES}
_BY_TYPE = {t.credential_type: t for t in _TEMPLATES}
_BY_VCT = {t.vct: t for t in _TEMPLATES}


def latest(claim_type: str) -> CredentialTemplate:
    candidates = [t for t in _TEMPLATES if t.claim_type == claim_type]
    if not candidates:
        raise InvalidRequest(f"no credential template for claim type {claim_type!r}", field="claim")
    return max(candidates, key=lambda t: t.version)


def resolve(claim_type: str, template_id: str | None = None) -> CredentialTemplate:
    """The named template (which must be for the claim type), or the latest for the type."""
    if template_id is None:
        return latest(claim_type)
    template = TEMPLATES.get(template_id)
    if template is None:
        known = ", ".join(sorted(TEMPLATES))
        raise InvalidRequest(
            f"unknown credential template {template_id!r} (known: {known})", field="template"
        )
    if template.claim_type != claim_type:
        raise InvalidRequest(
            f"template {template_id} is for {template.claim_type}, not {claim_type}",
            field="template",
        )
    return template


def by_credential_type(types: object) -> CredentialTemplate | None:
    """The template a W3C ``type`` value (string or list) names, if any."""
    names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    return next((_BY_TYPE[n] for n in names if isinstance(n, str) and n in _BY_TYPE), None)


def by_vct(vct: object) -> CredentialTemplate | None:
    return _BY_VCT.get(vct) if isinstance(vct, str) else None
