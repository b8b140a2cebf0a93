"""No raw PII in logs, metrics or audit entries. Ever."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from connector_support import Api
from pavilion.audit.models import AuditLeaf
from pavilion.observability.logging import configure_logging, get_logger
from pavilion.synth.roster import StudentRecord, pick_examples
from pavilion.verification.models import Verification


def _pii(record: StudentRecord) -> list[str]:
    return [
        record.student_id,
        record.email,
        record.email.upper(),
        record.given_name,
        record.family_name,
        record.birth_date.isoformat(),
    ]


async def test_verifications_leave_no_pii_in_logs_metrics_or_audit(
    api: Api, roster: list[StudentRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", json_output=True)
    provider = await api.register_provider()
    examples = pick_examples(roster)
    subjects = [examples.current, examples.former, roster[5]]
    for record in subjects:
        await api.verify(
            provider["id"], {"type": "student_status"}, {"student_id": record.student_id}
        )
        await api.verify(
            provider["id"], {"type": "age_over", "threshold": 18}, {"email": record.email}
        )
    # A careless log call with a record in it is redacted too.
    get_logger("careless").info("oops", record=subjects[0].as_json(), note=subjects[0].email)
    logging.getLogger("stdlib").warning("subject %s", subjects[0].email)

    logs = capsys.readouterr()
    metrics = (await api.client.get("/metrics", headers=api.auth("platform-admin"))).text
    async with api.rt.db.transaction(api.tenant_id) as session:
        leaves = [row.event for row in (await session.execute(select(AuditLeaf))).scalars()]
        verifications = [
            json.dumps([v.subject_ref, v.claim, v.residency, v.purpose_code, repr(v.purpose_note)])
            for v in (await session.execute(select(Verification))).scalars()
        ]
    haystacks = {
        "logs": logs.out + logs.err,
        "metrics": metrics,
        "audit": "\n".join(leaves),
        "verifications": "\n".join(verifications),
    }
    assert "verification" in haystacks["logs"]  # the logs did capture the flow
    assert len(leaves) == 7  # the provider's registration and six verifications
    for record in subjects:
        for value in _pii(record):
            for where, text in haystacks.items():
                assert value not in text, f"{value!r} leaked into {where}"
