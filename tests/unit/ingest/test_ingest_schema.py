"""A DP's profile: what is accepted, and what is refused with the field named."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from ingest_support import PROFILE, profile
from pavilion.errors import InvalidRequest
from pavilion.ingest.schema import (
    FieldType,
    Profile,
    RecordSchema,
    mapped_type,
    parse_profile,
    validate_profile,
)


def _field(**spec: Any) -> dict[str, Any]:
    return {"name": "f", **spec}


def _with_fields(*fields: dict[str, Any], **mapping: Any) -> dict[str, Any]:
    return {
        "schema": {"name": "s", "fields": list(fields)},
        "mapping": {"fields": mapping or {"subject_id": {"from": fields[0]["name"]}}},
    }


def test_yaml_and_json_give_the_same_profile_and_digest() -> None:
    from_yaml = parse_profile(yaml.safe_dump(PROFILE))
    from_json = parse_profile(json.dumps(PROFILE).encode())
    assert from_yaml == from_json
    assert from_yaml.digest() == from_json.digest()
    assert isinstance(from_yaml, Profile)
    assert from_yaml.document()["schema"]["key"] == ["student_id"]
    assert from_yaml.quality.min_score == 80


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        (_with_fields(_field(pattern="(?<=a)b")), "schema.fields.0.pattern", "look-around"),
        (_with_fields(_field(pattern="(")), "schema.fields.0.pattern", "regular expression"),
        (_with_fields(_field(type="date", format="%Y-%m-%d %z")), "schema.fields.0", "%z"),
        (_with_fields(_field(type="date", format="%d/%m")), "schema.fields.0", "needs a year"),
        (_with_fields(_field(type="integer", pattern="1")), "schema.fields.0", "string fields"),
        (_with_fields(_field(type="string", minimum=1)), "schema.fields.0", "numbers"),
        (_with_fields(_field(not_future=True)), "schema.fields.0", "dates"),
        (_with_fields(_field(format="phone")), "schema.fields.0", "format"),
        (_with_fields(_field(), _field()), "schema", "declared twice"),
        (
            {"schema": {"name": "s", "fields": [_field()], "key": ["nope"]}, "mapping": {"fields": {"subject_id": {"from": "f"}}}},
            "schema",
            "key field 'nope'",
        ),
        (
            {"schema": {"name": "s", "fields": [_field(type="list")], "key": ["f"]}, "mapping": {"fields": {"subject_id": {"from": "f"}}}},
            "schema",
            "cannot be a list",
        ),
        (
            {"schema": {"name": "s", "fields": [_field(), _field(name="g", type="date")], "rules": [{"left": "f", "op": "<", "right": "g"}]}, "mapping": {"fields": {"subject_id": {"from": "f"}}}},
            "schema",
            "different types",
        ),
        (
            {"schema": {"name": "s", "fields": [_field(type="list"), _field(name="g", type="list")], "rules": [{"left": "f", "op": "<", "right": "g"}]}, "mapping": {"fields": {"subject_id": {"from": "f"}}}},
            "schema",
            "cannot compare lists",
        ),
        (
            {"schema": {"name": "s", "fields": [_field()], "rules": [{"left": "f", "op": "<", "right": "x"}]}, "mapping": {"fields": {"subject_id": {"from": "f"}}}},
            "schema",
            "'x' is not declared",
        ),
        (_with_fields(_field(), email={"from": "f"}), "mapping.fields", "subject_id"),
        (_with_fields(_field(), subject_id={"from": "f"}, nickname={"from": "f"}), "mapping.fields", "nickname"),
        (_with_fields(_field(), subject_id={"from": "missing"}), "", "not in the schema"),
        (_with_fields(_field(type="integer"), subject_id={"from": "f"}), "", "convert"),
        (_with_fields(_field(), subject_id={"from": "f"}, birth_date={"from": "f", "date_format": "%Y"}), "", "canonical date"),
        (_with_fields(_field(type="date"), subject_id={"from": "f", "convert": "string"}, birth_date={"from": "f", "normalise": ["trim"]}), "", "apply to strings"),
        (_with_fields(_field(), subject_id={"from": "f", "phone_region": "GB"}), "", "phone normaliser"),
        (_with_fields(_field(), subject_id={"from": "f"}, enrolment_status={"from": "f", "vocabulary": {"x": "alumni"}}), "", "canonical vocabulary"),
        (_with_fields(_field(), subject_id={"from": "f", "date_format": "%Q"}), "mapping.fields.subject_id.date_format", "%Q"),
        ({**PROFILE, "quality": {"weights": {"validity": 0}}}, "quality.weights", "not all zero"),
        ({**PROFILE, "extra": 1}, "extra", "Extra inputs"),
    ],
)  # fmt: skip
def test_bad_profiles_are_refused_naming_the_field(
    document: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_profile(document)
    assert caught.value.field is not None
    assert caught.value.field.startswith(field)
    assert message in caught.value.detail


def test_unreadable_documents() -> None:
    with pytest.raises(InvalidRequest, match="not valid YAML"):
        parse_profile("schema: [unclosed")
    with pytest.raises(InvalidRequest, match="mapping at the top level"):
        parse_profile("- a list")
    with pytest.raises(InvalidRequest, match=r"\(and \d+ more\)"):
        parse_profile("schema: {}\nmapping: {}\n")


def test_mapped_types() -> None:
    schema = RecordSchema.model_validate(
        {
            "name": "t",
            "fields": [
                {"name": "s"},
                {"name": "d", "type": "date"},
                {"name": "t", "type": "datetime"},
                {"name": "l", "type": "list"},
                {"name": "n", "type": "number"},
            ],
        }
    )
    fields = schema.by_name
    from pavilion.ingest.canonical import CanonicalType
    from pavilion.ingest.schema import FieldMapping

    def rule(**spec: Any) -> FieldMapping:
        return FieldMapping.model_validate({"from": "x", **spec})

    assert mapped_type(fields["s"], rule(split=";")) is CanonicalType.LIST
    assert mapped_type(fields["l"], rule(split=";")) is None
    assert mapped_type(fields["s"], rule(convert="date")) is CanonicalType.DATE
    assert mapped_type(fields["t"], rule(convert="date")) is CanonicalType.DATE
    assert mapped_type(fields["n"], rule(convert="date")) is None
    assert mapped_type(fields["n"], rule(convert="string")) is CanonicalType.STRING
    assert mapped_type(fields["l"], rule(convert="string")) is None
    assert mapped_type(fields["n"], rule()) is None
    assert mapped_type(fields["d"], rule()) is CanonicalType.DATE


def test_the_schema_as_json_schema_accepts_a_record_and_names_a_bad_field() -> None:
    schema = validate_profile(profile()).record_schema
    document = schema.json_schema()
    jsonschema.Draft202012Validator.check_schema(document)
    good = {
        "student_id": "S1234567",
        "given_name": "Ana",
        "family_name": "Lee",
        "birth_date": "2000-01-01",
        "email": "a@b.example",
        "enrolment_status": "enrolled",
        "programme": None,
        "region": "eu-west",
        "memberships": ["Chess Club"],
    }
    jsonschema.validate(good, document)
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate({**good, "student_id": "X1"}, document)
    assert list(caught.value.absolute_path) == ["student_id"]
    numeric = RecordSchema.model_validate(
        {
            "name": "n",
            "fields": [
                {"name": "age", "type": "integer", "minimum": 0, "maximum": 150, "required": True},
                {"name": "seen", "type": "datetime", "required": True},
                {"name": "code", "type": "string", "min_length": 2, "max_length": 4},
            ],
            "extra_fields": "ignore",
        }
    ).json_schema()
    assert numeric["properties"]["age"] == {"type": "integer", "minimum": 0, "maximum": 150}
    assert numeric["properties"]["seen"] == {"type": "string", "format": "date-time"}
    assert numeric["additionalProperties"] is True
    assert numeric["properties"]["code"]["anyOf"][0] == {
        "type": "string",
        "minLength": 2,
        "maxLength": 4,
    }
    assert FieldType.LIST.value == "list"


def test_the_readme_profile_is_valid_and_maps_a_record(tmp_path: Any) -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    from pavilion.ingest.formats import Format, UploadType
    from pavilion.ingest.pipeline import process_file

    readme = (Path(__file__).parents[3] / "README.md").read_text("utf-8")
    section = readme.split("### Roster uploads", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    document = yaml.safe_load(block)
    parsed = validate_profile(document)
    assert parsed.mapping.fields["phone"].phone_region == "GB"
    sample = tmp_path / "sample.csv"
    sample.write_text(
        "student_id,first_name,last_name,dob,email,mobile,country,status,clubs,updated_on\n"
        "S1234567, ZOË ,O'Brien,31/12/2000,Zoe@Example.COM,020 7946 0958,Ireland,Current,"
        "Chess Club|Rowing Club,2025-12-01\n",
        encoding="utf-8",
    )
    now = datetime(2026, 1, 2, tzinfo=UTC)
    result = process_file(sample, UploadType(Format.CSV), parsed, now=now, as_of=now)
    assert result.status == "applied", result.report_errors()
    record = json.loads(result.records["json"][0])
    assert record == {
        "birth_date": "2000-12-31",
        "country": "IE",
        "email": "zoe@example.com",
        "enrolment_status": "enrolled",
        "family_name": "o'brien",
        "given_name": "zoë",
        "memberships": ["Chess Club", "Rowing Club"],
        "phone": "+442079460958",
        "subject_id": "S1234567",
    }
