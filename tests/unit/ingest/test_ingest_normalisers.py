"""Normalisers: documented examples, idempotence, and the column form equal to the scalar one."""

from __future__ import annotations

import string

import phonenumbers
import polars as pl
import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavilion.ingest import normalisers as n
from pavilion.ingest.normalisers import NormaliseError, Step, apply_column
from pavilion.ingest.schema import Normaliser

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
ASCII_TEXT = st.text(alphabet=string.printable, max_size=24)
#: Letters people's names and addresses really contain, plus whitespace of every kind.
NAMEISH = st.text(
    alphabet=st.sampled_from(list("abcXYZ éÉöÖßẞﬁǅİıΣσς  \t\u3000\u00a0-'.@Ａｂ①")),
    max_size=20,
)
EMAILISH = st.builds(
    lambda local, domain, tld, pad: f"{pad}{local}@{domain}.{tld}{pad}",
    st.text(alphabet=string.ascii_letters + string.digits + ".+_-ÄéÖ", min_size=1, max_size=12),
    st.text(alphabet=string.ascii_letters + string.digits + "-ü", min_size=1, max_size=12),
    st.sampled_from(["com", "ORG", "example", "de", "xn--p1ai"]),
    st.sampled_from(["", " ", "\t", "\u3000"]),
)
SCALARS = {
    Normaliser.TRIM: n.trim,
    Normaliser.NFKC: n.nfkc,
    Normaliser.CASEFOLD: n.casefold,
    Normaliser.UPPER: n.upper,
    Normaliser.LOWER: n.lower,
    Normaliser.NAME: n.name,
    Normaliser.IDENTIFIER: n.identifier,
    Normaliser.EMAIL: n.email,
    Normaliser.COUNTRY: n.country,
}


def _scalar_or_error(fn: n.ScalarFn, value: str) -> tuple[str | None, bool]:
    try:
        return fn(value), False
    except NormaliseError:
        return None, True


def test_documented_examples() -> None:
    assert n.name("  ZOË   O'Brien ") == "zoë o'brien"
    assert n.name("Ｊｏｓé\u00a0GARCÍA") == "josé garcía"  # fullwidth letters fold by NFKC
    assert n.name("Straße") == "strasse"
    assert n.identifier(" s1234567 ") == "S1234567"
    assert n.email("  Zoë.O@Bücher.Example. ") == "zoë.o@xn--bcher-kva.example"
    assert n.email("A.B@EXAMPLE.COM") == "a.b@example.com"
    assert n.phone("020 7946 0958", "GB") == "+442079460958"
    assert n.phone("+1 (415) 555-2671") == "+14155552671"
    assert n.country("deu") == "DE"
    assert n.country("France") == "FR"
    assert n.country("826") == "GB"
    assert n.country(" uk ") == "GB"
    assert n.vocabulary_key("  CURRENT ") == "current"


@pytest.mark.parametrize(
    ("fn", "value", "why"),
    [
        (n.name, " \u3000 ", "empty"),
        (n.identifier, "   ", "empty"),
        (n.email, "no-at-sign.example", "exactly one @"),
        (n.email, "a@b@c.example", "exactly one @"),
        (n.email, "@example.com", "local part"),
        (n.email, "a b@example.com", "local part"),
        (n.email, "a@localhost", "domain"),
        (n.email, "a@-bad-.com", "domain"),
        (n.email, "a@" + "x" * 64 + ".com", "domain"),
        (n.email, "x" * 65 + "@example.com", "local part"),
        (n.country, "Narnia", "ISO 3166"),
        (n.country, "ZZ", "ISO 3166"),
    ],
)
def test_bad_values_say_why(fn: n.ScalarFn, value: str, why: str) -> None:
    with pytest.raises(NormaliseError, match=why):
        fn(value)


def test_phone_numbers_need_a_region_or_a_plus() -> None:
    with pytest.raises(NormaliseError, match="phone_region"):
        n.phone("020 7946 0958")
    with pytest.raises(NormaliseError, match="not a valid phone number"):
        n.phone("+44 20 7946", "GB")
    with pytest.raises(NormaliseError, match="not a phone number"):
        n.phone("call me", "GB")


@given(value=TEXT | NAMEISH)
@settings(max_examples=300)
def test_text_normalisers_are_idempotent(value: str) -> None:
    for fn in (n.trim, n.nfkc, n.casefold, n.upper, n.lower, n.name, n.identifier):
        once, failed = _scalar_or_error(fn, value)
        if not failed:
            assert once is not None
            assert fn(once) == once, (fn.__name__, value)


@given(value=EMAILISH | TEXT)
@settings(max_examples=300)
def test_email_is_idempotent_and_lower_case_ascii_domain(value: str) -> None:
    once, failed = _scalar_or_error(n.email, value)
    if failed:
        return
    assert once is not None
    assert n.email(once) == once
    local, domain = once.split("@")
    assert domain.isascii()
    assert domain == domain.lower()
    assert local == n.casefold(local)


@given(
    digits=st.text(alphabet=string.digits, min_size=6, max_size=12),
    region=st.sampled_from(["GB", "US", "DE", "FR"]),
)
def test_phone_e164_is_idempotent(digits: str, region: str) -> None:
    once, failed = _scalar_or_error(n.scalar(Normaliser.PHONE, phone_region=region), digits)
    if failed:
        return
    assert once is not None
    assert once.startswith("+")
    assert n.phone(once) == once  # E.164 needs no region
    assert phonenumbers.is_valid_number(phonenumbers.parse(once))


def test_every_iso_country_code_round_trips() -> None:
    for country in pycountry.countries:
        assert n.country(country.alpha_2.lower()) == country.alpha_2
        assert n.country(country.alpha_3) == country.alpha_2
        assert n.country(country.numeric) == country.alpha_2
        assert n.country(country.alpha_2) == n.country(n.country(country.alpha_2))


@given(values=st.lists(TEXT | NAMEISH | ASCII_TEXT | EMAILISH | st.none(), max_size=30))
@settings(max_examples=200, deadline=None)
def test_column_form_equals_scalar_form(values: list[str | None]) -> None:
    series = pl.Series("v", values, dtype=pl.String)
    for normaliser, fn in SCALARS.items():
        got, errors = apply_column(series, [Step(normaliser)])
        for value, out, error in zip(values, got.to_list(), errors.to_list(), strict=True):
            if value is None:
                assert out is None
                assert error is None
                continue
            expected, failed = _scalar_or_error(fn, value)
            assert (error is not None) == failed, (normaliser, value, error)
            assert out == expected, (normaliser, value, out, expected)


def test_a_chain_keeps_the_first_error_and_nulls_the_value() -> None:
    series = pl.Series("v", [" Ann@Example.com ", "  ", None])
    values, errors = apply_column(series, [Step(Normaliser.TRIM), Step(Normaliser.EMAIL)])
    assert values.to_list() == ["ann@example.com", None, None]
    assert errors.to_list()[0] is None
    assert errors.to_list()[1] == "not a valid e-mail address"
    assert errors.to_list()[2] is None


def test_phone_and_country_columns_run_per_distinct_value() -> None:
    phones, problems = apply_column(
        pl.Series("p", ["020 7946 0958", "020 7946 0958", "nope", None]),
        [Step(Normaliser.PHONE, "GB")],
    )
    assert phones.to_list() == ["+442079460958", "+442079460958", None, None]
    assert problems.to_list()[2] == "not a phone number"
    empty, none = apply_column(
        pl.Series("c", [None, None], dtype=pl.String), [Step(Normaliser.COUNTRY)]
    )
    assert empty.to_list() == [None, None]
    assert none.to_list() == [None, None]
