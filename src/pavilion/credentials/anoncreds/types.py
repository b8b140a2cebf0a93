"""The values of AnonCreds issuance: configuration, issuers, slots, published states, views."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TypedDict

from pavilion.credentials.anoncreds.engine import IssuerMaterial

DEFAULT_CAPACITY: Final = 1000
OFFER_TTL: Final = timedelta(minutes=10)

MaterialFactory = Callable[[str], IssuerMaterial]


@dataclass(frozen=True)
class AnoncredsConfig:
    """Where tails files live, the base of issuer ids, and the slots of each registry."""

    tails_dir: Path
    issuer_base: str
    registry_capacity: int = DEFAULT_CAPACITY


@dataclass(frozen=True)
class Issuer:
    """A DP's credential definition (with its private part) and the row that holds it."""

    row_id: str
    provider_id: str
    material: IssuerMaterial = field(repr=False)


@dataclass(frozen=True)
class Slot:
    """A registry slot reserved for one credential, with what issuing into it needs."""

    credential_id: str
    registry_id: str
    rev_reg_def_id: str
    rev_reg_def_json: str
    private_json: str = field(repr=False)
    index: int = 0
    status_list_json: str = ""
    tails_hash: str = ""


@dataclass(frozen=True)
class Published:
    """A status list just published for a registry: its timestamp and what it revoked."""

    registry_id: str
    rev_reg_def_id: str
    timestamp: int
    list_json: str
    revoked: list[int]


class RegistryView(TypedDict):
    """A revocation registry as published: its definition, capacity and how much is used."""

    id: str
    rev_reg_def_id: str
    seq: int
    status: str
    capacity: int
    issued: int
    tails_hash: str
    definition: dict[str, Any]


class StatusListDelta(TypedDict):
    """One published revocation status list: what it revoked and its accumulator."""

    timestamp: int
    revoked: list[int]
    accumulator: str | None
    status_list: dict[str, Any]


class CredentialOffer(TypedDict):
    """An AnonCreds credential offer, valid until ``expires_at``."""

    offer_id: str
    offer: dict[str, Any]
    cred_def_id: str
    credential_definition: dict[str, Any]
    expires_at: str


def aad(tenant_id: str, row_id: str, what: str) -> bytes:
    """The associated data a sealed AnonCreds secret is bound to (tenant, row, kind)."""
    return f"pavilion/anoncreds/v1|{tenant_id}|{row_id}|{what}".encode()
