"""Credential status transitions and the values each list publishes for each state."""

from __future__ import annotations

import pytest

from pavilion.credentials.status.states import (
    StatusConflict,
    check_action,
    check_kind,
    list_value,
    published_states,
    supports_suspension,
    transition,
)
from pavilion.credentials.status.types import (
    ReservedList,
    StatusListConfig,
    StatusReservation,
    new_list_id,
    tenant_of_list,
)
from pavilion.errors import InvalidRequest, NotFound


@pytest.mark.parametrize(
    ("current", "action", "after"),
    [
        ("valid", "revoke", "revoked"),
        ("suspended", "revoke", "revoked"),
        ("valid", "suspend", "suspended"),
        ("suspended", "reinstate", "valid"),
        ("revoked", "revoke", "revoked"),  # same state: nothing changes
        ("suspended", "suspend", "suspended"),
        ("valid", "reinstate", "valid"),
    ],
)
def test_allowed_transitions(current: str, action: str, after: str) -> None:
    assert transition(current, check_action(action)) == after


@pytest.mark.parametrize(
    ("current", "action", "reason"),
    [
        ("revoked", "reinstate", "a revoked credential stays revoked"),
        ("revoked", "suspend", "a revoked credential stays revoked"),
        ("reserved", "revoke", "only a suspended or valid credential can be revoked"),
    ],
)
def test_refused_transitions_say_why(current: str, action: str, reason: str) -> None:
    with pytest.raises(StatusConflict, match=reason):
        transition(current, check_action(action))


def test_bad_actions_and_kinds_name_the_field() -> None:
    with pytest.raises(InvalidRequest) as action:
        check_action("delete")
    assert action.value.field == "action"
    with pytest.raises(InvalidRequest) as kind:
        check_kind("csv")
    assert kind.value.field == "kind"


def test_list_values_follow_each_specification() -> None:
    # IETF: 0x00 VALID, 0x01 INVALID, 0x02 SUSPENDED; a reservation publishes VALID.
    assert [
        list_value("token", "status", s) for s in ("reserved", "valid", "revoked", "suspended")
    ] == [0, 0, 1, 2]
    # W3C: one bit per purpose list.
    assert [
        list_value("bitstring", "revocation", s) for s in ("valid", "revoked", "suspended")
    ] == [0, 1, 0]
    assert [
        list_value("bitstring", "suspension", s) for s in ("valid", "revoked", "suspended")
    ] == [0, 0, 1]
    assert published_states("bitstring", "suspension") == ("suspended",)
    assert supports_suspension("token", 2)
    assert supports_suspension("bitstring", 1)
    assert not supports_suspension("token", 1)


def test_list_ids_carry_their_tenant_and_nothing_else_parses() -> None:
    tenant = "0f8fad5b-d9cb-469f-a165-70867728950e"
    list_id = new_list_id(tenant)
    assert len(list_id) == 64
    assert tenant_of_list(list_id) == tenant
    assert new_list_id(tenant) != list_id
    for bad in ("short", "X" * 64, list_id.upper()):
        with pytest.raises(NotFound):
            tenant_of_list(bad)


def test_reservations_render_the_entry_of_their_kind_only() -> None:
    token = StatusReservation(
        "t", "token", "g", 7, "e", (ReservedList("g", "status", "https://x/status/v1/token/g"),)
    )
    assert token.token_status() == {"status_list": {"idx": 7, "uri": "https://x/status/v1/token/g"}}
    with pytest.raises(InvalidRequest):
        token.credential_status()
    bitstring = StatusReservation(
        "t",
        "bitstring",
        "g",
        7,
        "e",
        (
            ReservedList("g", "revocation", "https://x/status/v1/bitstring/g"),
            ReservedList("h", "suspension", "https://x/status/v1/bitstring/h"),
        ),
    )
    entries = bitstring.credential_status()
    assert [e["statusPurpose"] for e in entries] == ["revocation", "suspension"]
    assert entries[0]["statusListIndex"] == "7"
    assert entries[1]["id"] == "https://x/status/v1/bitstring/h#7"
    with pytest.raises(InvalidRequest):
        bitstring.token_status()


def test_config_refuses_lists_the_specifications_do_not_allow() -> None:
    with pytest.raises(InvalidRequest, match="1, 2, 4 or 8"):
        StatusListConfig(base_url="https://x", issuer="https://x", token_bits=3)
    with pytest.raises(InvalidRequest, match="at least 131072"):
        StatusListConfig(base_url="https://x", issuer="https://x", bitstring_size=1000)
    with pytest.raises(InvalidRequest, match="positive"):
        StatusListConfig(base_url="https://x", issuer="https://x", token_size=0)
    with pytest.raises(InvalidRequest, match="reserve_batch"):
        StatusListConfig(base_url="https://x", issuer="https://x", reserve_batch=0)
    with pytest.raises(InvalidRequest, match="reserve_batch_max"):
        StatusListConfig(
            base_url="https://x", issuer="https://x", reserve_batch=64, reserve_batch_max=32
        )
    with pytest.raises(InvalidRequest, match="cache_seconds"):
        StatusListConfig(base_url="https://x", issuer="https://x", cache_seconds=-1)
