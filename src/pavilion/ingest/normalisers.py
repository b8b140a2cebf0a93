"""Normalisers: one pure function per rule, applied to single values or to whole columns.

Each scalar function is the definition. The column form (``apply_column``) computes the same
result faster: an ASCII-only value goes through an equivalent polars expression (NFKC is the
identity on ASCII, case folding is lower-casing), every other value goes through the scalar
function once per distinct value. Property tests hold the two forms equal and every
normaliser idempotent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import phonenumbers
import polars as pl
import pycountry

from pavilion.ingest.schema import Normaliser

#: Characters with the Unicode White_Space property (what Rust's ``char::is_whitespace`` and
#: therefore polars strip). Python's ``str.strip()`` would also strip U+001C..U+001F.
WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
ASCII_WHITESPACE: Final = "\t\n\x0b\x0c\r "
_RUNS: Final = re.compile(f"[{re.escape(WHITESPACE)}]+")
_ASCII_RUNS: Final = f"[{re.escape(ASCII_WHITESPACE)}]+"
_EMAIL_LOCAL: Final = r"^[^\s@\x00-\x1f\x7f]+$"
_ASCII_EMAIL_LOCAL: Final = r"^[\x21-\x3F\x41-\x7E]+$"
_MAX_LOCAL: Final = 64
#: Letters, digits and inner hyphens, two labels or more; no label over 63 characters.
_DOMAIN: Final = r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
_LONG_LABEL: Final = r"[^.]{64}"
_EMAIL_LOCAL_RE: Final = re.compile(_EMAIL_LOCAL)
_DOMAIN_RE: Final = re.compile(_DOMAIN)
_LONG_LABEL_RE: Final = re.compile(_LONG_LABEL)
_MAX_DOMAIN: Final = 253
#: Codes people write that ISO 3166-1 does not assign to the country they mean.
COUNTRY_ALIASES: Final = {"UK": "GB", "EL": "GR"}


class NormaliseError(ValueError):
    """A value the normaliser cannot turn into a canonical one; the message names why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _fixpoint(step: Callable[[str], str], value: str) -> str:
    """Apply ``step`` until the value stops changing (Unicode mappings settle in one or two)."""
    for _ in range(4):
        after = step(value)
        if after == value:
            return value
        value = after
    return value  # pragma: no cover - Unicode mappings settle in at most two rounds


def trim(value: str) -> str:
    return value.strip(WHITESPACE)


def nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def casefold(value: str) -> str:
    return _fixpoint(lambda v: nfkc(v.casefold()), value)


def upper(value: str) -> str:
    return _fixpoint(lambda v: nfkc(v.upper()), value)


def lower(value: str) -> str:
    return _fixpoint(lambda v: nfkc(v.lower()), value)


def name(value: str) -> str:
    """NFKC, case folded, trimmed, inner whitespace collapsed: " ZOË  O'Brien" -> "zoë o'brien"."""
    result = _fixpoint(lambda v: _RUNS.sub(" ", trim(nfkc(nfkc(v).casefold()))), value)
    if not result:
        raise NormaliseError("empty after normalisation")
    return result


def identifier(value: str) -> str:
    """NFKC, trimmed, upper case: " s1234567 " -> "S1234567"."""
    result = _fixpoint(lambda v: trim(nfkc(nfkc(v).upper())), value)
    if not result:
        raise NormaliseError("empty after normalisation")
    return result


def email(value: str) -> str:
    """Trimmed, NFKC, case folded, domain in IDNA (punycode) form, syntax checked."""
    text = casefold(trim(nfkc(value)))
    if text.count("@") != 1:
        raise NormaliseError("an e-mail address has exactly one @")
    local, domain = text.split("@")
    domain = domain.removesuffix(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise NormaliseError("the e-mail domain is not a valid domain name") from exc
    if len(local) > _MAX_LOCAL or not _EMAIL_LOCAL_RE.match(local):
        raise NormaliseError("the e-mail local part is empty, too long or has spaces")
    if len(domain) > _MAX_DOMAIN or not _DOMAIN_RE.match(domain) or _LONG_LABEL_RE.search(domain):
        raise NormaliseError("the e-mail domain is not a valid domain name")
    return f"{local}@{domain}"


def phone(value: str, region: str | None = None) -> str:
    """E.164 (``+441632960961``); national numbers need the mapping's ``phone_region``."""
    try:
        number = phonenumbers.parse(trim(value), region)
    except phonenumbers.NumberParseException as exc:
        raise NormaliseError(
            "not a phone number" + ("" if region else " (national numbers need phone_region)")
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise NormaliseError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def country(value: str) -> str:
    """ISO 3166-1 alpha-2 from an alpha-2, alpha-3 or numeric code or a country's name."""
    text = trim(nfkc(value))
    code = text.upper()
    if code in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[code]
    found = None
    if len(code) == 2 and code.isalpha():
        found = pycountry.countries.get(alpha_2=code)
    elif len(code) == 3 and code.isalpha():
        found = pycountry.countries.get(alpha_3=code)
    elif code.isdigit() and len(code) <= 3:
        found = pycountry.countries.get(numeric=code.zfill(3))
    if found is None and len(code) > 3:
        try:
            found = pycountry.countries.lookup(text)
        except LookupError:
            found = None
    if found is None:
        raise NormaliseError("not an ISO 3166 country code or name")
    return str(found.alpha_2)


def vocabulary_key(value: str) -> str:
    """How vocabulary entries and values are compared: trimmed, NFKC, case folded."""
    return casefold(trim(nfkc(value)))


ScalarFn = Callable[[str], str]


def scalar(normaliser: Normaliser, *, phone_region: str | None = None) -> ScalarFn:
    if normaliser is Normaliser.PHONE:
        return lambda value: phone(value, phone_region)
    return _SCALAR[normaliser]


_SCALAR: Final[dict[Normaliser, ScalarFn]] = {
    Normaliser.TRIM: trim,
    Normaliser.NFKC: nfkc,
    Normaliser.CASEFOLD: casefold,
    Normaliser.UPPER: upper,
    Normaliser.LOWER: lower,
    Normaliser.NAME: name,
    Normaliser.IDENTIFIER: identifier,
    Normaliser.EMAIL: email,
    Normaliser.COUNTRY: country,
}


@dataclass(frozen=True)
class _Vector:
    """The ASCII-input form of a normaliser: (values, valid) for a whole column."""

    run: Callable[[pl.Series], tuple[pl.Series, pl.Series]]
    message: str = ""


def _simple(expr: Callable[[pl.Expr], pl.Expr], *, non_empty: bool = False) -> _Vector:
    def run(values: pl.Series) -> tuple[pl.Series, pl.Series]:
        out = pl.DataFrame({"v": values}).select(value=expr(pl.col("v")))
        result = out["value"]
        ok = (
            (result.str.len_bytes() > 0)
            if non_empty
            else pl.repeat(True, len(values), dtype=pl.Boolean, eager=True)
        )
        return result, ok.fill_null(True)

    return _Vector(run, "empty after normalisation" if non_empty else "")


def _email_vector(values: pl.Series) -> tuple[pl.Series, pl.Series]:
    frame = (
        pl.DataFrame({"v": values})
        .select(
            parts=pl.col("v")
            .str.strip_chars(ASCII_WHITESPACE)
            .str.to_lowercase()
            .str.split_exact("@", 1)
        )
        .unnest("parts")
        .select(local=pl.col("field_0"), domain=pl.col("field_1").str.strip_suffix("."))
    )
    # Split on the first "@": the local part has none, and the domain pattern admits none, so
    # "exactly one @" needs no separate count.
    out = frame.select(
        value=pl.concat_str([pl.col("local"), pl.lit("@"), pl.col("domain")]),
        ok=(
            pl.col("local").str.contains(_ASCII_EMAIL_LOCAL)
            & (pl.col("local").str.len_bytes() <= _MAX_LOCAL)
            & pl.col("domain").str.contains(_DOMAIN)
            & ~pl.col("domain").str.contains(_LONG_LABEL)
            & (pl.col("domain").str.len_bytes() <= _MAX_DOMAIN)
        ).fill_null(False),
    )
    return out["value"], out["ok"]


_VECTOR: Final[dict[Normaliser, _Vector]] = {
    Normaliser.TRIM: _simple(lambda e: e.str.strip_chars(ASCII_WHITESPACE)),
    Normaliser.NFKC: _simple(lambda e: e),
    Normaliser.CASEFOLD: _simple(lambda e: e.str.to_lowercase()),
    Normaliser.LOWER: _simple(lambda e: e.str.to_lowercase()),
    Normaliser.UPPER: _simple(lambda e: e.str.to_uppercase()),
    Normaliser.NAME: _simple(
        lambda e: (
            e.str.to_lowercase().str.strip_chars(ASCII_WHITESPACE).str.replace_all(_ASCII_RUNS, " ")
        ),
        non_empty=True,
    ),
    Normaliser.IDENTIFIER: _simple(
        lambda e: e.str.to_uppercase().str.strip_chars(ASCII_WHITESPACE), non_empty=True
    ),
    Normaliser.EMAIL: _Vector(_email_vector, "not a valid e-mail address"),
}


@dataclass(frozen=True)
class Step:
    normaliser: Normaliser
    phone_region: str | None = None


#: Values sampled to decide whether a column repeats itself enough to normalise distinct values.
_SAMPLE: Final = 10_000


def _nulls(length: int) -> pl.Series:
    return pl.repeat(None, length, dtype=pl.String, eager=True)


def apply_column(values: pl.Series, steps: Sequence[Step]) -> tuple[pl.Series, pl.Series]:
    """Normalise a String column: (values, error messages); a failed value becomes null.

    A column that repeats its values (names, statuses, programmes) is normalised once per
    distinct value and joined back; others go through the column form directly.
    """
    name_ = values.name
    sample = values.head(_SAMPLE)
    if sample.n_unique() * 4 < len(sample):  # repetitive: work on the distinct values only
        keys = values.unique().rename("key")
        out, problems = _apply_steps(keys, steps)
        table = pl.DataFrame({"key": keys, "value": out, "error": problems})
        joined = (
            values.rename("key")
            .to_frame()
            .join(table, on="key", how="left", maintain_order="left", nulls_equal=True)
        )
        return joined["value"].rename(name_), joined["error"].rename(name_)
    out, problems = _apply_steps(values, steps)
    return out.rename(name_), problems.rename(name_)


def _apply_steps(values: pl.Series, steps: Sequence[Step]) -> tuple[pl.Series, pl.Series]:
    errors = _nulls(len(values))
    for step in steps:
        values, failed = _apply_step(values, step)
        errors = errors.zip_with(errors.is_not_null(), failed)
    return values, errors


def _apply_step(values: pl.Series, step: Step) -> tuple[pl.Series, pl.Series]:
    vector = _VECTOR.get(step.normaliser)
    # ASCII exactly when every character is one byte: four times cheaper than a regex.
    is_ascii = (values.str.len_bytes() == values.str.len_chars()).fill_null(True)
    if vector is not None and is_ascii.all():  # the common case: no scalar work at all
        fast_values, fast_ok = vector.run(values)
        out = pl.DataFrame({"v": values, "fast_v": fast_values, "ok": fast_ok}).select(
            value=pl.when(pl.col("ok")).then(pl.col("fast_v")),
            error=pl.when(pl.col("v").is_not_null() & ~pl.col("ok")).then(pl.lit(vector.message)),
        )
        return out["value"], out["error"]
    slow_inputs = values.filter(~is_ascii) if vector is not None else values
    slow_values, slow_errors = _scalar_lookup(values, slow_inputs.drop_nulls().unique(), step)
    if vector is None:
        return slow_values, slow_errors
    fast_values, fast_ok = vector.run(values)
    out = pl.DataFrame(
        {
            "v": values,
            "ascii": is_ascii,
            "fast_v": fast_values,
            "ok": fast_ok,
            "slow_v": slow_values,
            "slow_e": slow_errors,
        }
    ).select(
        value=pl.when(pl.col("v").is_null())
        .then(None)
        .when(pl.col("ascii"))
        .then(pl.when(pl.col("ok")).then(pl.col("fast_v")).otherwise(None))
        .otherwise(pl.col("slow_v")),
        error=pl.when(pl.col("v").is_null())
        .then(None)
        .when(pl.col("ascii"))
        .then(pl.when(pl.col("ok")).then(None).otherwise(pl.lit(vector.message)))
        .otherwise(pl.col("slow_e")),
    )
    return out["value"], out["error"]


def _scalar_lookup(values: pl.Series, inputs: pl.Series, step: Step) -> tuple[pl.Series, pl.Series]:
    """Run the scalar function once per distinct value and spread the results back."""
    fn = scalar(step.normaliser, phone_region=step.phone_region)
    keys: list[str] = []
    results: list[str | None] = []
    problems: list[str | None] = []
    for value in inputs.to_list():
        keys.append(value)
        try:
            results.append(fn(value))
            problems.append(None)
        except NormaliseError as exc:
            results.append(None)
            problems.append(exc.message)
    if not keys:
        empty = _nulls(len(values))
        return empty, empty
    mapped = values.replace_strict(keys, results, default=None, return_dtype=pl.String)
    failed = values.replace_strict(keys, problems, default=None, return_dtype=pl.String)
    return mapped, failed
