"""Data-pipeline benchmark: a synthetic roster read, validated, scored and transformed.

For CSV, NDJSON and XML, the whole push pipeline (``pavilion.ingest.pipeline.process_file``:
parse, compliance, types, pandera constraints, rules, mapping with normalisers, canonical
checks, quality scores, canonical JSON and its SHA-256) runs on the same file that plain
polars reads in the same run (``pl.read_csv``, ``pl.read_ndjson``; polars has no XML reader, so
XML's baseline is plain lxml ``iterparse`` into a polars frame). Per-record lookup validation
is the hot-path check of a DP's answer against its JSON Schema (``check_lookup_record``),
beside Python ``jsonschema`` (the validator it replaced) and polars decoding the same records.

The roster comes from ``pavilion.synth.roster`` (about 45 s per million records here), so the
files are generated once and cached in the temp directory. Every timing is the best of its runs
in wall-clock seconds, with the CPU seconds of the process (all threads) beside it: on a shared
machine CPU time is the figure to compare between runs. The headline figures come last, one per
line, as ``name: value unit (target ...)``, each with its ratio to the raw primitive measured in
the same run. Targets (issue 12) are for a million rows on a quiet machine: CSV < 3 s, NDJSON
< 5 s, XML within 1.5x of plain lxml ``iterparse``.

    .venv/bin/python bench/data.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jsonschema
import polars as pl
from lxml import etree  # type: ignore[import-untyped]

from pavilion.ingest.formats import Format, UploadType
from pavilion.ingest.pipeline import process_file
from pavilion.ingest.schema import validate_profile
from pavilion.ingest.validation import check_lookup_record, record_validator
from pavilion.synth.roster import ROSTER_FIELDS, ROSTER_RECORD_SCHEMA, iter_roster, write_roster

SEED = 20240611
REFERENCE = date(2026, 1, 1)
NOW = datetime(2026, 1, 2, tzinfo=UTC)
FULL_ROWS = 1_000_000
QUICK_ROWS = 100_000
TARGET_S = {"csv": 3.0, "ndjson": 5.0}
XML_RATIO_TARGET = 1.5
LOOKUP_TARGET = 500_000
CACHE = Path(tempfile.gettempdir()) / "pavilion-bench-data"

PROFILE: dict[str, Any] = {
    "schema": {
        "name": "synthetic-university-roster",
        "key": ["student_id"],
        "fields": [
            {"name": "student_id", "required": True, "pattern": "S[0-9]{7}", "categories": ["pii"]},
            {"name": "given_name", "required": True, "min_length": 1, "categories": ["pii"]},
            {"name": "family_name", "required": True, "min_length": 1, "categories": ["pii"]},
            {"name": "birth_date", "type": "date", "required": True, "not_future": True,
             "categories": ["pii"]},
            {"name": "email", "format": "email", "categories": ["pii"]},
            {"name": "enrolment_status", "required": True,
             "enum": ["enrolled", "graduated", "withdrawn", "suspended"]},
            {"name": "programme"},
            {"name": "region", "pattern": "[a-z]{2}-[a-z]+"},
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


def _write_ndjson(rows: int, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for record in iter_roster(rows, SEED, REFERENCE):
            out.write(json.dumps(record.as_json(), ensure_ascii=False) + "\n")
    tmp.replace(path)


def _write_xml(rows: int, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<roster>\n')
        for record in iter_roster(rows, SEED, REFERENCE):
            values = record.as_csv_row()
            fields = "".join(
                f"<{name}>{escape(value)}</{name}>"
                for name, value in zip(ROSTER_FIELDS[:-1], values[:-1], strict=True)
            )
            members = "".join(f"<m>{escape(m)}</m>" for m in record.memberships)
            out.write(f"<student>{fields}<memberships>{members}</memberships></student>\n")
        out.write("</roster>\n")
    tmp.replace(path)


def roster_files(rows: int) -> dict[str, Path]:
    """The same roster as CSV, NDJSON and XML, generated once per size and kept."""
    CACHE.mkdir(parents=True, exist_ok=True)
    files = {fmt: CACHE / f"roster-{rows}-{SEED}.{fmt}" for fmt in ("csv", "ndjson", "xml")}
    started = time.perf_counter()
    made = False
    if not files["csv"].exists():
        write_roster(iter_roster(rows, SEED, REFERENCE), files["csv"], "csv")
        made = True
    if not files["ndjson"].exists():
        _write_ndjson(rows, files["ndjson"])
        made = True
    if not files["xml"].exists():
        _write_xml(rows, files["xml"])
        made = True
    if made:
        print(f"generated {rows:,}-row rosters in {time.perf_counter() - started:.1f} s ({CACHE})")
    return files


def best_of(action: Callable[[], object], repeats: int) -> float:
    return timed(action, repeats)[0]


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(wall, CPU) seconds, each the least of ``repeats`` runs; CPU counts every thread."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeats):
        gc.collect()
        cpu = time.process_time()
        started = time.perf_counter()
        action()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def xml_baseline(path: Path) -> pl.DataFrame:
    """Plain lxml, no checks: every record's children into columns."""
    columns: dict[str, list[str | None]] = {name: [] for name in ROSTER_FIELDS}
    for _, element in etree.iterparse(str(path), events=("end",), tag="student"):
        values = {child.tag: child.text for child in element}
        for name in ROSTER_FIELDS:
            columns[name].append(values.get(name))
        element.clear()
        parent = element.getparent()
        del parent[0]
    return pl.DataFrame(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, under 60 s")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    repeats = 2 if args.quick else 1
    files = roster_files(rows)
    profile = validate_profile(PROFILE)
    label = f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else f"{rows // 1000}k"

    baselines: dict[str, Callable[[Path], object]] = {
        "csv": lambda p: pl.read_csv(p, infer_schema=False),
        "ndjson": pl.read_ndjson,
        "xml": xml_baseline,
    }
    results: dict[str, tuple[float, float, float, float]] = {}
    for fmt in ("csv", "ndjson", "xml"):
        path = files[fmt]
        kind = UploadType(Format(fmt))
        result = process_file(path, kind, profile, now=NOW, as_of=NOW)
        if result.status != "applied" or result.rows_valid != rows:
            raise SystemExit(f"{fmt}: the benchmark roster was not applied: {result.detail}")
        pipeline_s, pipeline_cpu = timed(
            functools.partial(process_file, path, kind, profile, now=NOW, as_of=NOW), repeats
        )
        baseline_s, baseline_cpu = timed(functools.partial(baselines[fmt], path), repeats)
        results[fmt] = (pipeline_s, pipeline_cpu, baseline_s, baseline_cpu)
        print(
            f"{fmt:6s} {rows:,} rows: pipeline {pipeline_s:.2f} s (CPU {pipeline_cpu:.2f} s), "
            f"baseline {baseline_s:.2f} s (CPU {baseline_cpu:.2f} s) "
            f"({path.stat().st_size / 1e6:.0f} MB, quality {result.quality['score']:.2f}, "
            f"output sha256 {result.output_sha256[:12]})"
        )
        del result
        gc.collect()

    # Per-record lookup validation: the DP's answers as they arrive (dicts), one at a time.
    sample = min(rows, 200_000)
    with files["ndjson"].open("r", encoding="utf-8") as handle:
        records = [json.loads(next(handle)) for _ in range(sample)]
    lookups = max(sample, 1_000_000 if not args.quick else 200_000)
    validator = record_validator(ROSTER_RECORD_SCHEMA)  # compiled once per provider schema

    def validate_all() -> None:
        check = validator.check
        for n in range(lookups):
            check(records[n % sample])

    def validate_by_schema() -> None:
        schema = ROSTER_RECORD_SCHEMA
        for n in range(lookups):
            check_lookup_record(schema, records[n % sample])

    validation_s = best_of(validate_all, repeats)
    rate = lookups / validation_s
    by_schema_rate = lookups / best_of(validate_by_schema, repeats)
    reference = jsonschema.Draft202012Validator(ROSTER_RECORD_SCHEMA)
    few = records[:20_000]
    python_s = best_of(lambda: [reference.is_valid(r) for r in few], 1)
    python_rate = len(few) / python_s
    polars_s = best_of(lambda: pl.read_ndjson(files["ndjson"], n_rows=sample), repeats)
    polars_rate = sample / polars_s
    print(
        f"lookup validation: {rate:,.0f} records/s (check_lookup_record by schema: "
        f"{by_schema_rate:,.0f}/s); python jsonschema {python_rate:,.0f}/s; "
        f"polars decoding the same records {polars_rate:,.0f}/s"
    )

    print()
    for fmt in ("csv", "ndjson", "xml"):
        pipeline_s, pipeline_cpu, baseline_s, baseline_cpu = results[fmt]
        base = "plain lxml iterparse" if fmt == "xml" else f"plain polars read_{fmt}"
        target = (
            f"target < {TARGET_S[fmt]:g} s for 1m"
            if fmt in TARGET_S
            else f"target: the ratio, within {XML_RATIO_TARGET:g}x"
        )
        print(
            f"{fmt}_read_validate_score_transform_{label}: {pipeline_s:.2f} s ({target}; "
            f"CPU {pipeline_cpu:.2f} s; {base} {baseline_s:.2f} s, CPU {baseline_cpu:.2f} s, "
            f"ratio {pipeline_s / baseline_s:.1f}x)"
        )
    pipeline_s, pipeline_cpu, baseline_s, baseline_cpu = results["xml"]
    print(
        f"xml_ratio_over_lxml_iterparse_{label}: {pipeline_s / baseline_s:.2f} x "
        f"(target <= {XML_RATIO_TARGET:g}; CPU ratio {pipeline_cpu / baseline_cpu:.2f} x; "
        f"pipeline {pipeline_s:.2f} s against plain lxml iterparse {baseline_s:.2f} s)"
    )
    print(
        f"lookup_validation: {rate:,.0f} records/s (target >= {LOOKUP_TARGET:,} records/s; "
        f"python jsonschema {python_rate:,.0f}/s, {rate / python_rate:.1f}x; "
        f"polars read_ndjson {polars_rate:,.0f}/s, {rate / polars_rate:.2f}x)"
    )


if __name__ == "__main__":
    main()
