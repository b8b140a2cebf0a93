"""Quality scores: each dimension, the weighting, the batch's freshness and the trend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest_support import NOW
from pavilion.ingest.batch_store import trend
from pavilion.ingest.formats import Format, UploadType, read_upload
from pavilion.ingest.pipeline import process_batch
from pavilion.ingest.quality import freshness, weighted
from pavilion.ingest.schema import Dimension, validate_profile

DOCUMENT: dict[str, Any] = {
    "schema": {
        "name": "q",
        "fields": [
            {"name": "id", "required": True, "unique": True},
            {"name": "mail", "format": "email", "categories": ["pii"]},
            {"name": "start", "type": "date"},
            {"name": "end", "type": "date"},
            {"name": "updated", "type": "date", "max_age_days": 30},
            {"name": "note"},
        ],
        "rules": [{"left": "end", "op": ">", "right": "start"}],
    },
    "mapping": {
        "fields": {
            "subject_id": {"from": "id"},
            "email": {"from": "mail"},
            "birth_date": {"from": "start"},
            "valid_until": {"from": "end"},
            "region": {"from": "updated", "convert": "string"},
        }
    },
    "quality": {"min_score": 0, "max_age_days": 10},
    "on_invalid_rows": "quarantine",
}
HEADER = "id,mail,start,end,updated,note\n"


def _score(tmp: Path, rows: list[str], as_of: datetime = NOW, **changes: Any) -> Any:
    document = {**DOCUMENT, **changes}
    path = tmp / "q.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    profile = validate_profile(document)
    batch = read_upload(path, UploadType(Format.CSV), profile.record_schema)
    return process_batch(batch, profile, now=NOW, as_of=as_of)


def test_every_dimension_of_a_clean_batch_is_100(tmp_path: Path) -> None:
    result = _score(tmp_path, ["A,a@b.co,2000-01-01,2030-01-01,2026-01-01,x"])
    assert result.quality["score"] == 100.0
    assert all(v == 100.0 for v in result.quality["dimensions"].values())
    assert result.quality["passed"] is True


def test_dimensions_measure_what_they_say(tmp_path: Path) -> None:
    rows = [
        "A,a@b.co,2000-01-01,2030-01-01,2026-01-01,",
        "B,bad,2000-01-01,1999-01-01,2020-01-01,",  # invalid e-mail; rule broken; stale
        "C,,2000-01-01,2030-01-01,2026-01-01,",  # missing e-mail
        "C,c@d.co,,,2026-01-01,",  # duplicate id
    ]
    result = _score(tmp_path, rows)
    fields = result.quality["fields"]
    assert fields["mail"]["completeness"] == 75.0
    assert fields["mail"]["validity"] == pytest.approx(66.67)
    assert fields["mail"]["uniqueness"] is None
    assert fields["id"]["uniqueness"] == 75.0
    assert fields["end"]["consistency"] == pytest.approx(66.67)
    assert fields["start"]["consistency"] == pytest.approx(66.67)
    assert fields["updated"]["timeliness"] == 75.0
    assert fields["note"]["completeness"] == 0.0
    assert fields["note"]["validity"] is None
    dims = result.quality["dimensions"]
    # the batch averages the mapped fields only (note is not mapped)
    assert dims[Dimension.COMPLETENESS.value] == pytest.approx((100 + 75 + 75 + 75 + 100) / 5)
    assert dims[Dimension.TIMELINESS.value] == pytest.approx((75 + 100) / 2)
    assert result.rows_invalid == 3  # B (e-mail), both C rows (duplicate subject)
    assert result.status == "applied"
    assert [q.row for q in result.quarantine] == [2, 3, 4]


def test_freshness_of_the_batch() -> None:
    assert freshness(NOW - timedelta(days=5), NOW, 10) == 100.0
    assert freshness(NOW - timedelta(days=15), NOW, 10) == 50.0
    assert freshness(NOW - timedelta(days=40), NOW, 10) == 0.0
    assert freshness(NOW, NOW, 0) == 100.0
    assert freshness(NOW - timedelta(days=1), NOW, 0) == 0.0


def test_stale_batches_lose_points_and_are_refused_under_the_threshold(tmp_path: Path) -> None:
    row = ["A,a@b.co,2000-01-01,2030-01-01,2026-01-01,"]
    old = _score(
        tmp_path, row, as_of=NOW - timedelta(days=20), quality={"min_score": 99, "max_age_days": 10}
    )
    assert old.quality["dimensions"]["timeliness"] == 50.0
    assert old.quality["age_days"] == 20.0
    assert old.status == "rejected"
    assert old.reason == "quality"
    assert "below the provider's minimum 99.00" in old.detail


def test_weights_renormalise_over_applicable_dimensions() -> None:
    weights = {Dimension.COMPLETENESS: 1.0, Dimension.VALIDITY: 3.0, Dimension.UNIQUENESS: 5.0}
    values = {Dimension.COMPLETENESS: 100.0, Dimension.VALIDITY: 60.0, Dimension.UNIQUENESS: None}
    assert weighted(values, weights) == 70.0
    assert weighted({Dimension.UNIQUENESS: None}, weights) is None


def test_trend_of_scores() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        ("b1", at, "applied", 90.0, {"dimensions": {"validity": 90.0}}),
        ("b2", at + timedelta(days=1), "rejected", None, {}),
        ("b3", at + timedelta(days=2), "applied", 80.0, {"dimensions": {}}),
    ]
    result = trend(points)
    assert result["latest"] == 80.0
    assert result["change"] == -10.0
    assert result["direction"] == "down"
    assert result["moving_average"] == 85.0
    assert [p["batch_id"] for p in result["points"]] == ["b1", "b2", "b3"]
    assert trend([])["direction"] == "none"
    assert trend(points[:1])["change"] is None
    flat = trend([points[0], ("b4", at, "applied", 90.0, {})])
    assert flat["direction"] == "flat"
    assert trend([points[2], points[0]])["direction"] == "up"
    assert date(2026, 1, 1) < NOW.date()


def test_a_composite_key_scores_uniqueness_for_each_of_its_fields(tmp_path: Path) -> None:
    schema = dict(DOCUMENT["schema"], key=["id", "start"])
    schema["fields"] = [dict(f, unique=False) for f in schema["fields"]]
    rows = [
        "A,a@b.co,2000-01-01,2030-01-01,2026-01-01,",
        "A,a@b.co,2000-01-01,2030-01-01,2026-01-01,",
        "A,a@b.co,2001-01-01,2030-01-01,2026-01-01,",
        "B,a@b.co,2000-01-01,2030-01-01,2026-01-01,",
    ]
    result = _score(tmp_path, rows, schema=schema)
    fields = result.quality["fields"]
    assert fields["id"]["uniqueness"] == 75.0
    assert fields["start"]["uniqueness"] == 75.0
    assert fields["mail"]["uniqueness"] is None
    # (A, 2001) is a unique key, but the canonical roster holds one record per subject
    assert {q.row for q in result.quarantine} == {1, 2, 3}
