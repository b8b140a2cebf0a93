"""A DP's declared record schema and its versioned ingest profile (schema + mapping + policy).

The profile is one YAML or JSON document a DP administrator posts; each post becomes the next
version. It is validated here, once, so the pipeline can trust it: every mapping source is a
declared field, every pattern compiles for both Python and polars (Rust regex), date formats use
only directives both understand, and the mapped types fit the canonical model.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import polars as pl
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from pavilion.errors import InvalidRequest
from pavilion.ingest.canonical import (
    CANONICAL_FIELDS,
    ENROLMENT_VOCABULARY,
    SUBJECT_KEY,
    TARGET,
    CanonicalType,
)
from pavilion.parsing import load_yaml

FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]


class DataCategory(StrEnum):
    """What kind of data a field holds; a push may only carry declared categories."""

    PUBLIC = "public"
    PII = "pii"
    NATIONAL_ID = "national_id"
    PHI = "phi"
    SPECIAL = "special"


class FieldType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    LIST = "list"


class Normaliser(StrEnum):
    TRIM = "trim"
    NFKC = "nfkc"
    CASEFOLD = "casefold"
    UPPER = "upper"
    LOWER = "lower"
    NAME = "name"
    IDENTIFIER = "identifier"
    EMAIL = "email"
    PHONE = "phone"
    COUNTRY = "country"


class Dimension(StrEnum):
    COMPLETENESS = "completeness"
    VALIDITY = "validity"
    UNIQUENESS = "uniqueness"
    CONSISTENCY = "consistency"
    TIMELINESS = "timeliness"


#: strftime directives that Python and polars (chrono) read the same way.
_DATE_DIRECTIVES = frozenset("YymdHMSbBj%")
_DIRECTIVE = re.compile(r"%(.)")
ISO_DATE = "%Y-%m-%d"
ISO_DATETIME = "%Y-%m-%dT%H:%M:%S"


def check_date_format(fmt: str) -> str:
    directives = _DIRECTIVE.findall(fmt)
    unsupported = sorted({d for d in directives if d not in _DATE_DIRECTIVES})
    if unsupported:
        raise ValueError(
            "unsupported strftime directive(s) "
            + ", ".join(f"%{d}" for d in unsupported)
            + " (use %Y %y %m %d %H %M %S %b %B %j)"
        )
    if not {"Y", "y"} & set(directives) and "j" not in directives:
        raise ValueError("a date format needs a year (%Y or %y)")
    return fmt


def check_pattern(pattern: str) -> str:
    """A regular expression both Python's ``re`` and polars (Rust ``regex``) compile."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError as exc:
        raise ValueError(
            "not supported by the batch validator (no look-around or back-references)"
        ) from exc
    return pattern


class FieldSpec(BaseModel):
    """One field of a DP's record, as the DP sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: FieldName
    type: FieldType = FieldType.STRING
    required: bool = False
    unique: bool = False
    format: str | None = Field(
        default=None,
        description="date/datetime: strftime pattern (default ISO 8601); string: 'email'.",
    )
    pattern: str | None = Field(default=None, max_length=1000, description="Whole-value regex.")
    enum: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    minimum: float | None = None
    maximum: float | None = None
    not_future: bool = Field(default=False, description="Dates after today are invalid.")
    max_age_days: int | None = Field(
        default=None, ge=0, description="Timeliness: values older than this many days are stale."
    )
    separator: str = Field(default=";", min_length=1, max_length=4, description="List fields.")
    categories: list[DataCategory] = Field(default_factory=lambda: [DataCategory.PUBLIC])
    description: str | None = Field(default=None, max_length=1000)

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return None if value is None else check_pattern(value)

    @model_validator(mode="after")
    def _constraints_fit_the_type(self) -> FieldSpec:
        textual = self.type is FieldType.STRING
        if not textual and (self.pattern or self.enum or self.min_length or self.max_length):
            raise ValueError(f"{self.name}: pattern, enum and lengths apply to string fields")
        numeric = self.type in (FieldType.INTEGER, FieldType.NUMBER)
        if not numeric and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"{self.name}: minimum and maximum apply to numbers")
        temporal = self.type in (FieldType.DATE, FieldType.DATETIME)
        if not temporal and (self.not_future or self.max_age_days is not None):
            raise ValueError(f"{self.name}: not_future and max_age_days apply to dates")
        if self.format is not None:
            if temporal:
                check_date_format(self.format)
            elif not (textual and self.format == "email"):
                raise ValueError(f"{self.name}: format is a date pattern, or 'email' for strings")
        return self

    @property
    def date_format(self) -> str:
        if self.format is not None:
            return self.format
        return ISO_DATETIME if self.type is FieldType.DATETIME else ISO_DATE


class Rule(BaseModel):
    """A cross-field consistency rule, e.g. ``valid_until >= birth_date``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left: FieldName
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    right: FieldName
    severity: Literal["error", "warning"] = "warning"
    name: str | None = Field(default=None, max_length=100)

    @property
    def label(self) -> str:
        return self.name or f"{self.left} {self.op} {self.right}"


class RecordSchema(BaseModel):
    """What a DP declares about its records: fields, types, formats, constraints, categories."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    fields: list[FieldSpec] = Field(min_length=1, max_length=500)
    key: list[FieldName] = Field(default_factory=list, max_length=8)
    rules: list[Rule] = Field(default_factory=list, max_length=100)
    extra_fields: Literal["reject", "ignore"] = "reject"
    record_element: FieldName | None = Field(
        default=None, description="XML: the element of one record (default: the root's children)."
    )

    @model_validator(mode="after")
    def _references_resolve(self) -> RecordSchema:
        names = [f.name for f in self.fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"fields declared twice: {', '.join(duplicates)}")
        by_name = self.by_name
        for name in self.key:
            if name not in by_name:
                raise ValueError(f"key field {name!r} is not declared")
            if by_name[name].type is FieldType.LIST:
                raise ValueError(f"key field {name!r} cannot be a list")
        for rule in self.rules:
            for side in (rule.left, rule.right):
                if side not in by_name:
                    raise ValueError(f"rule {rule.label!r}: field {side!r} is not declared")
            if by_name[rule.left].type is not by_name[rule.right].type:
                raise ValueError(f"rule {rule.label!r} compares fields of different types")
            if by_name[rule.left].type is FieldType.LIST:
                raise ValueError(f"rule {rule.label!r} cannot compare lists")
        return self

    @property
    def by_name(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def json_schema(self) -> dict[str, Any]:
        """The same record as a JSON Schema (2020-12), e.g. for a provider's lookup answers."""
        properties: dict[str, Any] = {}
        for spec in self.fields:
            prop: dict[str, Any]
            if spec.type is FieldType.LIST:
                prop = {"type": "array", "items": {"type": "string"}}
            elif spec.type in (FieldType.DATE, FieldType.DATETIME):
                prop = {"type": "string"}
                if spec.format is None:
                    prop["format"] = "date" if spec.type is FieldType.DATE else "date-time"
            else:
                prop = {"type": spec.type.value}
            if spec.pattern:
                prop["pattern"] = f"^(?:{spec.pattern})$"
            if spec.enum:
                prop["enum"] = list(spec.enum)
            if spec.min_length is not None:
                prop["minLength"] = spec.min_length
            if spec.max_length is not None:
                prop["maxLength"] = spec.max_length
            if spec.minimum is not None:
                prop["minimum"] = spec.minimum
            if spec.maximum is not None:
                prop["maximum"] = spec.maximum
            properties[spec.name] = prop if spec.required else {"anyOf": [prop, {"type": "null"}]}
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "type": "object",
            "additionalProperties": self.extra_fields == "ignore",
            "required": [f.name for f in self.fields if f.required],
            "properties": properties,
        }


class FieldMapping(BaseModel):
    """How one canonical field is made from one source field."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: FieldName = Field(alias="from")
    convert: Literal["string", "date"] | None = Field(
        default=None, description="Type conversion of the source value."
    )
    date_format: str | None = Field(default=None, description="strftime pattern for convert: date")
    split: str | None = Field(
        default=None, min_length=1, max_length=4, description="Split a string into a list."
    )
    normalise: list[Normaliser] = Field(default_factory=list, max_length=10)
    phone_region: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$", description="Default region of national numbers."
    )
    vocabulary: dict[str, str] | None = Field(default=None, min_length=1, max_length=10_000)

    @field_validator("date_format")
    @classmethod
    def _date_format_is_supported(cls, value: str | None) -> str | None:
        return None if value is None else check_date_format(value)


class MappingSpec(BaseModel):
    """A declarative mapping from a DP's fields to the canonical model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Literal["pavilion.eligibility.v1"] = TARGET
    fields: dict[str, FieldMapping] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _targets_are_canonical(cls, value: dict[str, FieldMapping]) -> dict[str, FieldMapping]:
        unknown = sorted(set(value) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(
                f"not canonical fields: {', '.join(unknown)} "
                f"(the canonical model has: {', '.join(CANONICAL_FIELDS)})"
            )
        if SUBJECT_KEY not in value:
            raise ValueError(f"the mapping must produce {SUBJECT_KEY!r}")
        return value


_DEFAULT_WEIGHTS = {
    Dimension.COMPLETENESS: 0.25,
    Dimension.VALIDITY: 0.35,
    Dimension.UNIQUENESS: 0.15,
    Dimension.CONSISTENCY: 0.15,
    Dimension.TIMELINESS: 0.10,
}


class QualityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_score: float = Field(default=80.0, ge=0, le=100, description="Batches below are refused.")
    weights: dict[Dimension, float] = Field(default_factory=lambda: dict(_DEFAULT_WEIGHTS))
    max_age_days: int = Field(
        default=30, ge=0, description="A batch whose as-of date is older than this loses points."
    )

    @field_validator("weights")
    @classmethod
    def _weights_are_positive(cls, value: dict[Dimension, float]) -> dict[Dimension, float]:
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        return value


class Profile(BaseModel):
    """One version of a DP's ingest profile: schema, mapping and policies."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    record_schema: RecordSchema = Field(alias="schema")
    mapping: MappingSpec
    quality: QualityPolicy = Field(default_factory=QualityPolicy)
    on_invalid_rows: Literal["reject", "quarantine"] = Field(
        default="reject",
        description="reject: any invalid row refuses the batch; quarantine: valid rows are "
        "applied and invalid rows are kept aside with their reasons.",
    )

    @model_validator(mode="after")
    def _mapping_fits_schema(self) -> Profile:
        fields = self.record_schema.by_name
        for target, rule in self.mapping.fields.items():
            where = f"mapping.fields.{target}"
            source = fields.get(rule.source)
            if source is None:
                raise ValueError(f"{where}: source field {rule.source!r} is not in the schema")
            effective = mapped_type(source, rule)
            wanted = CANONICAL_FIELDS[target]
            if effective is None or effective is not wanted:
                raise ValueError(
                    f"{where}: {source.type.value} field {rule.source!r} does not fit the "
                    f"canonical {wanted.value} (use convert, date_format or split)"
                )
            if (rule.normalise or rule.vocabulary) and wanted is not CanonicalType.STRING:
                raise ValueError(f"{where}: normalisers and vocabularies apply to strings")
            if rule.phone_region and Normaliser.PHONE not in rule.normalise:
                raise ValueError(f"{where}: phone_region needs the phone normaliser")
            if target == "enrolment_status" and rule.vocabulary:
                outside = sorted(set(rule.vocabulary.values()) - ENROLMENT_VOCABULARY)
                if outside:
                    raise ValueError(
                        f"{where}: vocabulary maps to {', '.join(outside)}, not in the canonical "
                        f"vocabulary ({', '.join(sorted(ENROLMENT_VOCABULARY))})"
                    )
        return self

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def digest(self) -> str:
        canonical = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def mapped_type(source: FieldSpec, rule: FieldMapping) -> CanonicalType | None:
    """The canonical type a source field has after the rule's conversion, if it has one."""
    if rule.split is not None:
        return CanonicalType.LIST if source.type is FieldType.STRING else None
    if rule.convert == "date":
        if source.type is FieldType.STRING:
            return CanonicalType.DATE
        return CanonicalType.DATE if source.type is FieldType.DATETIME else None
    if rule.date_format is not None:
        return None
    if rule.convert == "string":
        return None if source.type is FieldType.LIST else CanonicalType.STRING
    return {
        FieldType.STRING: CanonicalType.STRING,
        FieldType.DATE: CanonicalType.DATE,
        FieldType.LIST: CanonicalType.LIST,
    }.get(source.type)


def parse_profile(text: str | bytes, *, where: str = "profile") -> Profile:
    """Read a profile from YAML or JSON (JSON is YAML) and validate it, naming the bad field."""
    try:
        document = load_yaml(text, what=where)
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"{where}: not valid YAML or JSON: {exc}", field=where) from exc
    if not isinstance(document, dict):
        raise InvalidRequest(f"{where}: expected a mapping at the top level", field=where)
    return validate_profile(document, where=where)


def validate_profile(document: dict[str, Any], *, where: str = "profile") -> Profile:
    try:
        return Profile.model_validate(document)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            path = ".".join(str(p) for p in error["loc"]) or where
            errors.append({"field": path, "message": error["msg"].removeprefix("Value error, ")})
        first = errors[0]
        raise InvalidRequest(
            f"{where}: {first['field']}: {first['message']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            field=first["field"],
            errors=errors,
        ) from exc


def profile_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a profile document, for editors and for
    ``pavilion data mapping schema`` (docs/schemas/profile.schema.json is this output)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Profile.model_json_schema(by_alias=True),
        "title": "Pavilion DP profile (record schema and mapping)",
    }
