"""W3C Bitstring Status List v1.0: bit order, padding, an independent decoder, builders, errors."""

from __future__ import annotations

import base64
import gzip
import random
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavilion.credentials.status import (
    MIN_ENTRIES,
    BitstringStatusList,
    StatusListError,
    StatusPurpose,
    status_list_credential_subject,
    status_list_entry,
)

#: encodedList of the spec's "Example BitstringStatusListCredential" (§2.2): 16 KB of zeros.
SPEC_EXAMPLE_LIST = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"


def spec_decode(encoded_list: str, status_size: int) -> list[int]:
    """Independent reader, from §2.2 and §3.4: strip the multibase ``u``, base64url-decode,
    gunzip, write the bytes out as a string of bits (index 0 the left-most bit), and read
    each entry as the ``status_size`` bits starting at ``index * status_size``."""
    assert encoded_list[0] == "u"
    body = encoded_list[1:]
    raw = gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    bitstring = "".join(format(byte, "08b") for byte in raw)
    return [
        int(bitstring[i : i + status_size], 2)
        for i in range(0, len(bitstring) - status_size + 1, status_size)
    ]


def multibase(data: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- bit order and padding, pinned by hand -------------------------------------------------


def test_index_zero_is_the_left_most_bit() -> None:
    status_list = BitstringStatusList()
    status_list.set(0, 1)
    assert status_list.to_bytes()[:2] == b"\x80\x00"
    status_list.set(7, 1)
    status_list.set(8, 1)
    assert status_list.to_bytes()[:2] == b"\x81\x80"
    status_list.set(MIN_ENTRIES - 1, 1)
    assert status_list.to_bytes()[-1] == 0x01


@pytest.mark.parametrize(
    ("status_size", "index", "value", "expected"),
    [
        (2, 0, 0b01, b"\x40\x00"),
        (2, 3, 0b11, b"\x03\x00"),
        (3, 2, 0b101, b"\x02\x80"),  # bits 6, 7, 8: straddles the byte boundary
        (4, 1, 0xA, b"\x0a\x00"),
        (5, 1, 0b10011, b"\x04\xc0"),  # bits 5..9
        (8, 1, 0xAB, b"\x00\xab"),
    ],
)
def test_multi_bit_entries(status_size: int, index: int, value: int, expected: bytes) -> None:
    status_list = BitstringStatusList(status_size=status_size)
    status_list.set(index, value)
    assert status_list.to_bytes()[:2] == expected
    assert status_list.get(index) == value
    assert status_list.get(index + 1) == 0
    status_list.set(index, 0)
    assert not any(status_list.to_bytes())


def test_lists_are_padded_to_the_minimum() -> None:
    small = BitstringStatusList(10)
    assert small.size == len(small) == MIN_ENTRIES == 131_072
    assert len(small.to_bytes()) == 16 * 1024
    assert small.get(MIN_ENTRIES - 1) == 0
    assert len(BitstringStatusList(10, status_size=2).to_bytes()) == 32 * 1024
    assert len(BitstringStatusList(10, status_size=3).to_bytes()) == 48 * 1024
    big = BitstringStatusList(200_001)
    assert big.size == 200_001
    assert len(big.to_bytes()) == 25_001
    decoded = BitstringStatusList.decode_list(small.encode_list())
    assert decoded.size == MIN_ENTRIES


def test_spec_example_decodes_to_an_empty_minimum_list() -> None:
    decoded = BitstringStatusList.decode_list(SPEC_EXAMPLE_LIST)
    assert decoded.size == MIN_ENTRIES
    assert decoded.status_size == 1
    assert not any(decoded.to_bytes())


def test_encoding_is_deterministic_gzip() -> None:
    status_list = BitstringStatusList(1000)
    status_list.set(5, 1)
    encoded = status_list.encode_list()
    assert encoded == status_list.encode_list()
    assert encoded.startswith("uH4sI")  # "u" + base64url of the gzip magic 1f 8b 08
    raw = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    assert raw[:3] == b"\x1f\x8b\x08"
    assert raw[4:8] == b"\x00\x00\x00\x00"  # MTIME 0
    assert "=" not in encoded


# --- properties ----------------------------------------------------------------------------


@st.composite
def lists(draw: st.DrawFn) -> tuple[int, int, dict[int, int]]:
    status_size = draw(st.sampled_from([1, 2, 3, 4, 5, 8]))
    size = draw(st.integers(min_value=1, max_value=MIN_ENTRIES + 5000))
    entries = max(size, MIN_ENTRIES)
    statuses = draw(
        st.dictionaries(
            st.integers(min_value=0, max_value=entries - 1),
            st.integers(min_value=0, max_value=2**status_size - 1),
            max_size=100,
        )
    )
    return size, status_size, statuses


@given(lists())
@settings(max_examples=60, deadline=None)
def test_round_trip_and_independent_decoder(case: tuple[int, int, dict[int, int]]) -> None:
    size, status_size, statuses = case
    status_list = BitstringStatusList(size, status_size)
    for index, value in statuses.items():
        status_list.set(index, value)
    encoded = status_list.encode_list()

    independent = spec_decode(encoded, status_size)
    assert len(independent) >= max(size, MIN_ENTRIES)
    assert {i: v for i, v in enumerate(independent) if v} == {
        i: v for i, v in statuses.items() if v
    }

    decoded = BitstringStatusList.decode_list(encoded, status_size)
    assert decoded.size == len(independent)
    assert decoded.to_bytes() == status_list.to_bytes()
    for index, value in statuses.items():
        assert decoded.get(index) == value


# --- decoding errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        (SPEC_EXAMPLE_LIST[1:], "'u' prefix"),
        ("z" + SPEC_EXAMPLE_LIST[1:], "'u' prefix"),
        ("U" + SPEC_EXAMPLE_LIST[1:], "'u' prefix"),
        ("", "'u' prefix"),
        (None, "'u' prefix"),
        ("u", "unpadded base64url"),
        (SPEC_EXAMPLE_LIST + "=", "unpadded base64url"),
        ("uH4sI+AAA/", "unpadded base64url"),
        ("uH4sIA", "not valid base64url"),
        (multibase(zlib.compress(bytes(16384))), "does not decompress"),
        (multibase(gzip.compress(bytes(16384), mtime=0)[:-4]), "truncated"),
        (multibase(gzip.compress(bytes(16384), mtime=0) * 2), "after the"),
        (multibase(gzip.compress(b"", mtime=0)), "empty status list"),
        (multibase(gzip.compress(bytes(16383), mtime=0)), "STATUS_LIST_LENGTH_ERROR"),
    ],
)
def test_decode_rejects(encoded: Any, message: str) -> None:
    with pytest.raises(StatusListError, match=message) as info:
        BitstringStatusList.decode_list(encoded)
    assert info.value.field == "encodedList"


def test_minimum_counts_entries_not_bits() -> None:
    sixteen_kb = BitstringStatusList().encode_list()
    assert BitstringStatusList.decode_list(sixteen_kb, 1).size == MIN_ENTRIES
    with pytest.raises(StatusListError, match="65536 entries of 2 bit"):
        BitstringStatusList.decode_list(sixteen_kb, 2)
    assert BitstringStatusList.decode_list(sixteen_kb, 2, min_entries=65_536).size == 65_536
    short = multibase(gzip.compress(bytes(100), mtime=0))
    assert BitstringStatusList.decode_list(short, 1, min_entries=800).size == 800


def test_decode_caps_the_decompressed_size() -> None:
    huge = multibase(gzip.compress(bytes(4 << 20), mtime=0))
    with pytest.raises(StatusListError, match="more than 65536 bytes"):
        BitstringStatusList.decode_list(huge, max_bytes=65_536)
    assert BitstringStatusList.decode_list(huge).size == 32 << 20


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status_size": 0}, "statusSize"),
        ({"status_size": 9}, "statusSize"),
        ({"status_size": True}, "statusSize"),
        ({"min_entries": 0}, "min_entries"),
        ({"max_bytes": 0}, "max_bytes"),
    ],
)
def test_decode_parameter_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(StatusListError) as info:
        BitstringStatusList.decode_list(SPEC_EXAMPLE_LIST, **kwargs)
    assert info.value.field == field


# --- construction and access errors --------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "status_size", "field"),
    [
        (0, 1, "size"),
        (-5, 1, "size"),
        (True, 1, "size"),
        (10, 0, "statusSize"),
        (10, 9, "statusSize"),
        (10, 1.0, "statusSize"),
    ],
)
def test_bad_construction(size: Any, status_size: Any, field: str) -> None:
    with pytest.raises(StatusListError) as info:
        BitstringStatusList(size, status_size)
    assert info.value.field == field


def test_from_bytes() -> None:
    status_list = BitstringStatusList.from_bytes(b"\x80\x01", 1)
    assert status_list.size == 16
    assert [status_list.get(i) for i in (0, 1, 15)] == [1, 0, 1]
    assert BitstringStatusList.from_bytes(b"\xff\xff", 3).size == 5
    with pytest.raises(StatusListError, match="no entry"):
        BitstringStatusList.from_bytes(b"", 1)


@pytest.mark.parametrize("index", [-1, MIN_ENTRIES, True, "3"])
def test_index_out_of_range(index: Any) -> None:
    status_list = BitstringStatusList()
    with pytest.raises(StatusListError) as info:
        status_list.get(index)
    assert info.value.field == "statusListIndex"
    with pytest.raises(StatusListError):
        status_list.set(index, 1)


@pytest.mark.parametrize(("status_size", "value"), [(1, 2), (1, -1), (3, 8), (1, True)])
def test_value_must_fit(status_size: int, value: Any) -> None:
    status_list = BitstringStatusList(status_size=status_size)
    with pytest.raises(StatusListError) as info:
        status_list.set(0, value)
    assert info.value.field == "status"


# --- credential builders -------------------------------------------------------------------

LIST_URL = "https://example.com/credentials/status/3"


def messages(count: int) -> list[dict[str, str]]:
    return [{"status": hex(i), "message": f"m{i}"} for i in range(count)]


def test_credential_subject() -> None:
    status_list = BitstringStatusList()
    subject = status_list_credential_subject(
        status_list,
        subject_id="https://example.com/status/3#list",
        status_purpose=StatusPurpose.REVOCATION,
        ttl_ms=300_000,
    )
    assert subject == {
        "id": "https://example.com/status/3#list",
        "type": "BitstringStatusList",
        "statusPurpose": "revocation",
        "encodedList": status_list.encode_list(),
        "ttl": 300_000,
    }
    no_ttl = status_list_credential_subject(
        status_list, subject_id="https://example.com/status/3#list", status_purpose="suspension"
    )
    assert no_ttl["statusPurpose"] == "suspension"
    assert "ttl" not in no_ttl


def test_message_purpose_subject() -> None:
    status_list = BitstringStatusList(status_size=2)
    subject = status_list_credential_subject(
        status_list,
        subject_id="https://example.com/status/8#list",
        status_purpose="message",
        status_messages=messages(4),
    )
    assert subject["statusSize"] == 2
    assert subject["statusMessages"] == messages(4)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status_purpose": "expired"}, "statusPurpose"),
        ({"subject_id": "list-3"}, "id"),
        ({"ttl_ms": 0}, "ttl"),
        ({"status_purpose": "message"}, "statusMessages"),
        ({"status_messages": messages(2)}, "statusMessages"),
        ({"status_purpose": "message", "status_messages": messages(3)}, "statusMessage"),
    ],
)
def test_credential_subject_errors(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "subject_id": "https://example.com/status/3#list",
        "status_purpose": "revocation",
    }
    args.update(kwargs)
    with pytest.raises(StatusListError) as info:
        status_list_credential_subject(BitstringStatusList(), **args)
    assert info.value.field == field


def test_entry_matches_the_spec_example() -> None:
    assert status_list_entry(LIST_URL, 94567, StatusPurpose.REVOCATION) == {
        "id": "https://example.com/credentials/status/3#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": LIST_URL,
    }


def test_entry_with_status_size_and_messages() -> None:
    entry = status_list_entry(
        LIST_URL, 492847, "message", status_size=2, status_messages=messages(4)
    )
    assert entry["statusSize"] == 2
    assert entry["statusMessage"] == messages(4)
    one_bit = status_list_entry(LIST_URL, 1, "refresh", status_messages=messages(2))
    assert "statusSize" not in one_bit
    assert one_bit["statusMessage"] == messages(2)


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("/status/3", 1, "revocation"), {}, "statusListCredential"),
        ((LIST_URL + "#x", 1, "revocation"), {}, "statusListCredential"),
        ((LIST_URL, -1, "revocation"), {}, "statusListIndex"),
        ((LIST_URL, "1", "revocation"), {}, "statusListIndex"),
        ((LIST_URL, 1, "Revocation"), {}, "statusPurpose"),
        ((LIST_URL, 1, "revocation"), {"status_size": 0}, "statusSize"),
        ((LIST_URL, 1, "message"), {"status_size": 2}, "statusMessage"),
        ((LIST_URL, 1, "message"), {"status_messages": messages(4)}, "statusMessage"),
        (
            (LIST_URL, 1, "message"),
            {"status_messages": [{"status": "0x0", "message": "a"}] * 2},
            "statusMessage",
        ),
        (
            (LIST_URL, 1, "message"),
            {"status_messages": [{"status": "0", "message": "a"}, {"status": "0x1"}]},
            "statusMessage",
        ),
        (
            (LIST_URL, 1, "message"),
            {
                "status_messages": [
                    {"status": "0x0", "message": "a"},
                    {"status": "0x2", "message": "b"},
                ]
            },
            "statusMessage",
        ),
    ],
)
def test_entry_errors(args: tuple[Any, ...], kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(StatusListError) as info:
        status_list_entry(*args, **kwargs)
    assert info.value.field == field


# --- size ----------------------------------------------------------------------------------


def test_one_million_entries_one_percent_revoked_is_small() -> None:
    rng = random.Random(20240611)
    status_list = BitstringStatusList(1_000_000)
    for index in rng.sample(range(1_000_000), 10_000):
        status_list.set(index, 1)
    encoded = status_list.encode_list()
    assert len(encoded) < 20_000
    decoded = BitstringStatusList.decode_list(encoded)
    assert decoded.size == 1_000_000
    assert int.from_bytes(decoded.to_bytes(), "big").bit_count() == 10_000
