"""Credential status transitions and how each state is written into each kind of list (pure).

::

    reserved ──bind──▶ valid ──revoke──▶ revoked (final)
                        │  ▲                ▲
                 suspend│  │reinstate       │revoke
                        ▼  │                │
                      suspended ────────────┘

A step into the state a credential is already in changes nothing (``revoke`` twice is
harmless); any other step outside the diagram is a :class:`~pavilion.errors.Conflict`.
Suspension needs a list that can say so: a token list of 2 bits or more (status 0x02,
SUSPENDED), or a bitstring group, which carries a separate ``suspension`` list.
"""

from __future__ import annotations

from typing import Literal, get_args

from pavilion.credentials.status.token_status_list import TokenStatus
from pavilion.errors import Conflict, InvalidRequest

EntryState = Literal["reserved", "valid", "revoked", "suspended"]
Action = Literal["revoke", "suspend", "reinstate"]
ListKind = Literal["token", "bitstring"]
ListPurpose = Literal["status", "revocation", "suspension"]

ACTIONS: tuple[Action, ...] = get_args(Action)
LIST_KINDS: tuple[ListKind, ...] = get_args(ListKind)

_TARGET: dict[Action, EntryState] = {
    "revoke": "revoked",
    "suspend": "suspended",
    "reinstate": "valid",
}
_ALLOWED: dict[Action, frozenset[str]] = {
    "revoke": frozenset({"valid", "suspended"}),
    "suspend": frozenset({"valid"}),
    "reinstate": frozenset({"suspended"}),
}


class StatusConflict(Conflict):
    """A status change the credential's current state forbids."""

    code = "credential-status-conflict"
    title = "Credential status change refused"


def check_action(action: str) -> Action:
    if action not in ACTIONS:
        raise InvalidRequest(
            f"action must be one of {', '.join(ACTIONS)}; got {action!r}", field="action"
        )
    return action


def check_kind(kind: str) -> ListKind:
    if kind not in LIST_KINDS:
        raise InvalidRequest(f"kind must be token or bitstring; got {kind!r}", field="kind")
    return kind


def transition(current: str, action: Action) -> EntryState:
    """The state after ``action``; the same state when nothing changes."""
    target = _TARGET[action]
    if current == target:
        return target
    if current not in _ALLOWED[action]:
        why = (
            "a revoked credential stays revoked"
            if current == "revoked"
            else f"only a {' or '.join(sorted(_ALLOWED[action]))} credential can be {target}"
        )
        raise StatusConflict(f"cannot {action} a {current} credential: {why}")
    return target


def supports_suspension(kind: str, bits: int) -> bool:
    return kind == "bitstring" or bits >= 2


def list_value(kind: str, purpose: str, state: str) -> int:
    """The value a list of this kind and purpose publishes for an entry in ``state``."""
    if kind == "token":
        if state == "revoked":
            return int(TokenStatus.INVALID)
        if state == "suspended":
            return int(TokenStatus.SUSPENDED)
        return int(TokenStatus.VALID)
    if purpose == "revocation":
        return int(state == "revoked")
    return int(state == "suspended")


def published_states(kind: str, purpose: str) -> tuple[str, ...]:
    """The entry states that set a non-zero value in such a list."""
    if kind == "token":
        return ("revoked", "suspended")
    return ("revoked",) if purpose == "revocation" else ("suspended",)
