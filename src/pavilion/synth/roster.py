"""A deterministic synthetic university roster.

Demos, load tests and the DP agent need realistic-looking subjects without touching anyone's
real data. Everything here derives from ``random.Random(seed)`` and a caller-supplied reference
date (never the wall clock), so the same seed, count and date give byte-identical files.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path
from typing import IO, Any, Final, Literal, TypedDict

EnrolmentStatus = Literal["enrolled", "graduated", "withdrawn", "suspended"]
RosterFormat = Literal["csv", "json"]

ENROLMENT_STATUSES: Final[tuple[EnrolmentStatus, ...]] = (
    "enrolled",
    "graduated",
    "withdrawn",
    "suspended",
)
#: Statuses of someone who was a student and no longer is.
FORMER_STATUSES: Final[frozenset[EnrolmentStatus]] = frozenset({"graduated", "withdrawn"})
REGIONS: Final[tuple[str, ...]] = ("eu-west", "eu-central", "us-east", "uk-south")
#: Column order of the CSV form and key order of the JSON form.
ROSTER_FIELDS: Final[tuple[str, ...]] = (
    "student_id",
    "given_name",
    "family_name",
    "birth_date",
    "email",
    "enrolment_status",
    "programme",
    "region",
    "memberships",
)
MEMBERSHIP_SEPARATOR: Final = ";"
EMAIL_DOMAIN: Final = "students.uni.example"
DEFAULT_REFERENCE_DATE: Final = date(2026, 1, 1)
MIN_AGE: Final = 17
MAX_AGE: Final = 45
#: Bounded so the id space ("S" + 7 digits) stays sparse and drawing fresh ids stays cheap.
MAX_ROSTER_SIZE: Final = 1_000_000

STUDENT_ID_PATTERN: Final = r"^S[0-9]{7}$"
EMAIL_PATTERN: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
REGION_PATTERN: Final = r"^[a-z]{2}-[a-z]+$"
ISO_DATE_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MEMBERSHIP_PATTERN: Final = r"^[^;]*\S[^;]*$"

ROSTER_RECORD_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:pavilion:schema:dp:synthetic-university-roster:record:v1",
    "title": "Synthetic university roster record",
    "description": "One student record as the DP agent returns it from POST /v1/lookup.",
    "type": "object",
    "additionalProperties": False,
    "required": list(ROSTER_FIELDS),
    "properties": {
        "student_id": {"type": "string", "pattern": STUDENT_ID_PATTERN},
        "given_name": {"type": "string", "minLength": 1},
        "family_name": {"type": "string", "minLength": 1},
        "birth_date": {"type": "string", "format": "date", "pattern": ISO_DATE_PATTERN},
        "email": {"type": "string", "format": "email", "pattern": EMAIL_PATTERN},
        "enrolment_status": {"type": "string", "enum": list(ENROLMENT_STATUSES)},
        "programme": {"type": "string", "minLength": 1},
        "region": {"type": "string", "pattern": REGION_PATTERN, "examples": list(REGIONS)},
        "memberships": {
            "type": "array",
            "items": {"type": "string", "pattern": MEMBERSHIP_PATTERN},
            "uniqueItems": True,
        },
    },
}


class RosterRecordJSON(TypedDict):
    """The JSON shape of a record (dates as ISO strings, memberships as a list)."""

    student_id: str
    given_name: str
    family_name: str
    birth_date: str
    email: str
    enrolment_status: EnrolmentStatus
    programme: str
    region: str
    memberships: list[str]


@dataclass(frozen=True, slots=True)
class StudentRecord:
    """One roster entry; immutable so an index can hand it out without copying."""

    student_id: str
    given_name: str
    family_name: str
    birth_date: date
    email: str
    enrolment_status: EnrolmentStatus
    programme: str
    region: str
    memberships: tuple[str, ...] = ()

    def as_json(self) -> RosterRecordJSON:
        return {
            "student_id": self.student_id,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "birth_date": self.birth_date.isoformat(),
            "email": self.email,
            "enrolment_status": self.enrolment_status,
            "programme": self.programme,
            "region": self.region,
            "memberships": list(self.memberships),
        }

    def as_csv_row(self) -> list[str]:
        return [
            self.student_id,
            self.given_name,
            self.family_name,
            self.birth_date.isoformat(),
            self.email,
            self.enrolment_status,
            self.programme,
            self.region,
            MEMBERSHIP_SEPARATOR.join(self.memberships),
        ]


@dataclass(frozen=True, slots=True)
class DemoSubjects:
    """Known subjects of a roster, so a demo can show yes, no and unknown answers."""

    current: StudentRecord
    former: StudentRecord
    unknown_student_id: str
    unknown_email: str


GIVEN_NAMES: Final[tuple[str, ...]] = (
    "Zoë", "Aoife", "Siobhán", "José", "María", "Chloé", "François", "Anaïs", "Renée",
    "Björn", "Søren", "Ingrid", "Sigríður", "Þórunn", "Łukasz", "Małgorzata", "Kateřina",
    "Jiří", "Tomasz", "Agnieszka", "Olha", "Dmitri", "João", "Mateus", "Sofía", "Mateo",
    "Chiara", "Giulia", "Oluwaseun", "Chidi", "Amara", "Ngozi", "Kwame", "Tendai", "Sipho",
    "Aaliyah", "Fatima", "Omar", "Yusuf", "Zeynep", "Emre", "Ayşe", "Priya", "Arjun",
    "Ananya", "Wei", "Mei", "Hiroshi", "Yuki", "Min-jun", "Seo-yeon", "Thảo", "Minh",
    "Aroha", "Tāne", "Leilani", "Liam", "Emma", "Noah", "Olivia", "Hana", "Elif",
)  # fmt: skip
FAMILY_NAMES: Final[tuple[str, ...]] = (
    "Ólafsdóttir", "Þorsteinsson", "Jónsson", "Nguyễn", "Trần", "Lê", "Müller", "Schröder",
    "García", "Martínez", "Núñez", "Ramírez", "O'Brien", "Ó Súilleabháin", "Dvořák", "Novák",
    "Kowalski", "Wiśniewska", "Søndergaard", "Åkesson", "Ødegaard", "Yılmaz", "Çelik",  # noqa: RUF001
    "Şahin", "Okafor", "Adeyemi", "Mensah", "Dlamini", "Patel", "Sharma", "Iyer", "Wang",
    "Li", "Zhang", "Tanaka", "Satō", "Kim", "Park", "Smith", "Jones", "Williams", "Dubois",
    "Lefèvre", "Rossi", "Bianchi", "Horváth", "Ivanova", "Kovalenko", "Haddad", "Al-Sayed",
    "Cohen", "Silva", "Gonçalves", "van der Berg", "De Smet", "Ngata", "Walker", "Kaʻahanui",  # noqa: RUF001
)  # fmt: skip
PROGRAMMES: Final[tuple[str, ...]] = (
    "BSc Computer Science", "BSc Mathematics", "BSc Physics", "BSc Biology",
    "BA History", "BA Philosophy", "BA Modern Languages", "BA Economics", "LLB Law",
    "BEng Mechanical Engineering", "BEng Electrical Engineering", "MBBS Medicine",
    "BMus Music", "MSc Data Science", "MSc Public Health", "MA International Relations",
    "MBA Business Administration", "PhD Chemistry", "PhD Neuroscience",
)  # fmt: skip
CLUBS: Final[tuple[str, ...]] = (
    "Chess Club", "Rowing Club", "Debating Society", "Film Society", "Hiking Club",
    "University Orchestra", "Robotics Society", "Photography Club", "Chamber Choir",
    "Volunteering Society", "Esports Club", "Climbing Club", "Drama Society",
    "Astronomy Society", "Société Française", "Fußball Club",
)  # fmt: skip

# Cumulative weights (what ``random.choices`` would compute from plain ones on every call).
_STATUS_WEIGHTS: Final = tuple(accumulate((78, 12, 6, 4)))
_REGION_WEIGHTS: Final = tuple(accumulate((35, 25, 20, 20)))
#: (youngest, oldest) age brackets and how often each occurs: mostly undergraduates.
_AGE_BRACKETS: Final = ((17, 21), (22, 25), (26, 35), (36, 45))
_AGE_WEIGHTS: Final = tuple(accumulate((55, 25, 14, 6)))
_MEMBERSHIP_COUNTS: Final = (0, 1, 2, 3)
_MEMBERSHIP_WEIGHTS: Final = tuple(accumulate((45, 30, 18, 7)))
_FIRST_NUMBER: Final = 1_000_000
_END_NUMBER: Final = 10_000_000

#: Letters that Unicode decomposition does not reduce to ASCII.
_ASCII_FOLD: Final = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ł": "l",
     "Ł": "L", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "ı": "i", "œ": "oe", "Œ": "Oe"}  # noqa: RUF001
)  # fmt: skip
_NOT_EMAIL_SAFE: Final = re.compile(r"[^a-z0-9]")


def email_local_part(name: str) -> str:
    """Lowercase ASCII letters and digits of ``name`` ("Ó Súilleabháin" -> "osuilleabhain")."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_ASCII_FOLD))
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_EMAIL_SAFE.sub("", letters.lower())


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def age_on(birth_date: date, day: date) -> int:
    """Completed years of life on ``day``."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - int(before_birthday)


def iter_roster(count: int, seed: int, reference_date: date) -> Iterator[StudentRecord]:
    """Yield the roster lazily, so large rosters can be written with a progress bar."""
    if not 0 <= count <= MAX_ROSTER_SIZE:
        raise ValueError(f"count must be between 0 and {MAX_ROSTER_SIZE:,}")
    rng = random.Random(seed)
    numbers: set[int] = set()
    addresses_per_name: dict[str, int] = {}
    # Names come from short fixed lists: fold each once per roster (this call owns the memo).
    local_parts: dict[str, str] = {}
    for _ in range(count):
        # Drawn one by one (not sampled up front) so a larger roster extends a smaller one.
        number = rng.randrange(_FIRST_NUMBER, _END_NUMBER)
        while number in numbers:
            number = rng.randrange(_FIRST_NUMBER, _END_NUMBER)
        numbers.add(number)
        given = rng.choice(GIVEN_NAMES)
        family = rng.choice(FAMILY_NAMES)
        youngest, oldest = rng.choices(_AGE_BRACKETS, cum_weights=_AGE_WEIGHTS)[0]
        earliest = years_before(reference_date, oldest + 1) + timedelta(days=1)
        latest = years_before(reference_date, youngest)
        birth_date = earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))
        status = rng.choices(ENROLMENT_STATUSES, cum_weights=_STATUS_WEIGHTS)[0]
        programme = rng.choice(PROGRAMMES)
        region = rng.choices(REGIONS, cum_weights=_REGION_WEIGHTS)[0]
        clubs = rng.sample(
            CLUBS, rng.choices(_MEMBERSHIP_COUNTS, cum_weights=_MEMBERSHIP_WEIGHTS)[0]
        )
        # Local parts hold no digits, so a per-name counter suffix can never collide.
        for name in (given, family):
            if name not in local_parts:
                local_parts[name] = email_local_part(name)
        base = f"{local_parts[given]}.{local_parts[family]}"
        seen = addresses_per_name[base] = addresses_per_name.get(base, 0) + 1
        local = base if seen == 1 else f"{base}{seen}"
        yield StudentRecord(
            student_id=f"S{number:07d}",
            given_name=given,
            family_name=family,
            birth_date=birth_date,
            email=f"{local}@{EMAIL_DOMAIN}",
            enrolment_status=status,
            programme=programme,
            region=region,
            memberships=tuple(sorted(clubs)),
        )


def generate_roster(count: int, seed: int, reference_date: date) -> list[StudentRecord]:
    """The whole roster in memory; same arguments, same records."""
    return list(iter_roster(count, seed, reference_date))


def write_roster(records: Iterable[StudentRecord], path: Path | str, fmt: RosterFormat) -> int:
    """Write ``records`` atomically (temp file + rename) and return how many were written.

    CSV has a header row and ``;``-joined memberships; JSON is an array with one record per
    line. Both are UTF-8 with ``\\n`` line ends so the bytes depend on the records only.
    """
    target = Path(path)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename below
        "w",
        encoding="utf-8",
        newline="",
        dir=target.parent,
        prefix=f".{target.name}.",
        delete=False,
    )
    try:
        with handle:
            written = _write_csv(records, handle) if fmt == "csv" else _write_json(records, handle)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return written


def _write_csv(records: Iterable[StudentRecord], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROSTER_FIELDS)
    written = 0
    for record in records:
        writer.writerow(record.as_csv_row())
        written += 1
    return written


def _write_json(records: Iterable[StudentRecord], out: IO[str]) -> int:
    written = 0
    out.write("[")
    for record in records:
        out.write(",\n" if written else "\n")
        out.write(json.dumps(record.as_json(), ensure_ascii=False))
        written += 1
    out.write("\n]\n" if written else "]\n")
    return written


def pick_examples(records: Iterable[StudentRecord]) -> DemoSubjects:
    """The first current and first former student, plus identifiers nobody in the roster has."""
    current: StudentRecord | None = None
    former: StudentRecord | None = None
    student_ids: set[str] = set()
    emails: set[str] = set()
    for record in records:
        student_ids.add(record.student_id)
        emails.add(record.email.lower())
        if current is None and record.enrolment_status == "enrolled":
            current = record
        if former is None and record.enrolment_status in FORMER_STATUSES:
            former = record
    if current is None or former is None:
        raise ValueError("the roster needs at least one enrolled and one former student")
    unknown_id = next(
        candidate
        for candidate in (f"S{n:07d}" for n in range(len(student_ids) + 1))
        if candidate not in student_ids
    )
    unknown_email = next(
        candidate
        for candidate in (f"no.such.student{n}@{EMAIL_DOMAIN}" for n in range(len(emails) + 1))
        if candidate not in emails
    )
    return DemoSubjects(current, former, unknown_id, unknown_email)
