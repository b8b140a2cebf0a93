"""Helpers for the data-pipeline tests: a DP profile, roster files in every format, signing."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import polars as pl
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

from pavilion.synth.roster import ROSTER_FIELDS, StudentRecord, generate_roster

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
REFERENCE = date(2026, 1, 1)

PROFILE: dict[str, Any] = {
    "schema": {
        "name": "synthetic-university-roster",
        "key": ["student_id"],
        "fields": [
            {"name": "student_id", "type": "string", "required": True,
             "pattern": "S[0-9]{7}", "categories": ["pii"]},
            {"name": "given_name", "type": "string", "required": True, "categories": ["pii"]},
            {"name": "family_name", "type": "string", "required": True, "categories": ["pii"]},
            {"name": "birth_date", "type": "date", "required": True, "not_future": True,
             "categories": ["pii"]},
            {"name": "email", "type": "string", "format": "email", "categories": ["pii"]},
            {"name": "enrolment_status", "type": "string", "required": True,
             "enum": ["enrolled", "graduated", "withdrawn", "suspended"]},
            {"name": "programme", "type": "string"},
            {"name": "region", "type": "string"},
            {"name": "memberships", "type": "list", "separator": ";"},
        ],
    },
    "mapping": {
        "fields": {
            "subject_id": {"from": "student_id", "normalise": ["identifier"]},
            "given_name": {"from": "given_name", "normalise": ["name"]},
            "family_name": {"from": "family_name", "normalise": ["name"]},
            "birth_date": {"from": "birth_date"},
            "email": {"from": "email", "normalise": ["email"]},
            "enrolment_status": {"from": "enrolment_status"},
            "programme": {"from": "programme", "normalise": ["trim"]},
            "region": {"from": "region"},
            "memberships": {"from": "memberships"},
        }
    },
    "quality": {"min_score": 80},
}  # fmt: skip


def profile(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(PROFILE)
    for key, value in changes.items():
        document[key] = value
    return document


def roster(count: int = 40, seed: int = 11) -> list[StudentRecord]:
    return generate_roster(count, seed=seed, reference_date=REFERENCE)


def csv_bytes(records: Iterable[StudentRecord]) -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROSTER_FIELDS)
    for record in records:
        writer.writerow(record.as_csv_row())
    return out.getvalue().encode("utf-8")


def ndjson_bytes(records: Iterable[StudentRecord]) -> bytes:
    return "".join(json.dumps(r.as_json(), ensure_ascii=False) + "\n" for r in records).encode(
        "utf-8"
    )


def json_bytes(records: Iterable[StudentRecord]) -> bytes:
    return json.dumps([r.as_json() for r in records], ensure_ascii=False, indent=1).encode()


def xml_bytes(records: Iterable[StudentRecord]) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<roster>\n']
    for r in records:
        data = r.as_json()
        fields = "".join(
            f"<{k}>{escape(str(v))}</{k}>" for k, v in data.items() if k != "memberships"
        )
        members = "".join(f"<membership>{escape(m)}</membership>" for m in r.memberships)
        parts.append(f"<student>{fields}<memberships>{members}</memberships></student>\n")
    parts.append("</roster>\n")
    return "".join(parts).encode("utf-8")


def parquet_file(records: Iterable[StudentRecord], path: Path) -> Path:
    rows = [r.as_json() for r in records]
    frame = pl.DataFrame(rows).with_columns(pl.col("birth_date").str.to_date())
    frame.write_parquet(path)
    return path


MEDIA = {
    "csv": "text/csv",
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "xml": "application/xml",
    "parquet": "application/vnd.apache.parquet",
}


def body_of(fmt: str, records: list[StudentRecord], tmp: Path) -> bytes:
    if fmt == "parquet":
        return parquet_file(records, tmp / "roster.parquet").read_bytes()
    return {"csv": csv_bytes, "ndjson": ndjson_bytes, "json": json_bytes, "xml": xml_bytes}[fmt](
        records
    )


def ec_key(curve: str = "P-256") -> ECKey:
    return ECKey.generate_key(curve)


def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048)


def detached_jws(body: bytes, key: Any, alg: str = "ES256", kid: str | None = None) -> str:
    """Signed by joserfc (an independent implementation), then the payload detached."""
    header: dict[str, Any] = {"alg": alg}
    if kid is not None:
        header["kid"] = kid
    token = jws.serialize_compact(header, body, key, algorithms=[alg])
    return str(jws.detach_content(token))


def public_jwk(key: Any) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def achunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for chunk in chunks(data, size):
        yield chunk


class Endless:
    """A lazy upload of ``total`` bytes (2 GB by default) that counts what was pulled."""

    def __init__(self, total: int = 2 * 1024**3, chunk: int = 1024 * 1024) -> None:
        self.total = total
        self.block = b"S1234567,Ana,Lee,2000-01-01,a@b.example,enrolled,BA,eu-west,\n" * (
            chunk // 62
        )
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += len(self.block)
            yield self.block


async def push(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    provider_id: str,
    body: bytes,
    fmt: str = "csv",
    **extra_headers: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/providers/{provider_id}/roster-uploads",
        content=body,
        headers={**headers, "content-type": MEDIA[fmt], **extra_headers},
    )
