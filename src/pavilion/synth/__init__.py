"""Synthetic data for demos and tests: never a real person, always reproducible."""

from pavilion.synth.roster import (
    DEFAULT_REFERENCE_DATE,
    ENROLMENT_STATUSES,
    MAX_ROSTER_SIZE,
    REGIONS,
    ROSTER_FIELDS,
    ROSTER_RECORD_SCHEMA,
    DemoSubjects,
    EnrolmentStatus,
    RosterFormat,
    RosterRecordJSON,
    StudentRecord,
    generate_roster,
    iter_roster,
    pick_examples,
    write_roster,
)

__all__ = [
    "DEFAULT_REFERENCE_DATE",
    "ENROLMENT_STATUSES",
    "MAX_ROSTER_SIZE",
    "REGIONS",
    "ROSTER_FIELDS",
    "ROSTER_RECORD_SCHEMA",
    "DemoSubjects",
    "EnrolmentStatus",
    "RosterFormat",
    "RosterRecordJSON",
    "StudentRecord",
    "generate_roster",
    "iter_roster",
    "pick_examples",
    "write_roster",
]
