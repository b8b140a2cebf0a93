"""Status-list index allocation, and the error types shared by the status-list modules.

Both specifications ask for indices that reveal nothing about issuance order or list fill:
W3C Bitstring Status List v1.0 §2.1 (``statusListIndex``: "Implementations SHOULD assign
indexes randomly") and §6.5 (Decoy Values), and the Token Status List draft's privacy
considerations. An index is drawn uniformly at random from the unused ones and never reused;
remembering which indices are used is the caller's job (persistence is not done here).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Container

from pavilion.errors import InvalidRequest, PavilionError

#: Random draws tried before falling back to a full scan for the free indices.
DEFAULT_MAX_ATTEMPTS = 64

_SYSTEM_RANDOM = secrets.SystemRandom()


class StatusListError(InvalidRequest):
    """A status list, index or value that breaks the Token Status List or Bitstring rules."""

    code = "status-list-invalid"
    title = "Invalid status list"


class StatusListFull(PavilionError):
    """Every index of the list is in use: the caller opens a new list."""

    code = "status-list-full"
    title = "Status list full"


def allocate_index(
    size: int,
    is_used: Callable[[int], bool] | Container[int],
    *,
    rng: random.Random | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """Draw an index in ``[0, size)`` uniformly at random among those not yet used.

    ``is_used`` is a predicate or a container (e.g. a ``set``) of the used indices. Up to
    ``max_attempts`` draws are tried (rejection sampling keeps the choice uniform over the
    free indices); if all hit used indices the list is nearly full, so every index is scanned
    and one free index is chosen uniformly. Raises :class:`StatusListFull` when none is free.
    ``rng`` defaults to the OS CSPRNG (:class:`secrets.SystemRandom`).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise StatusListError("size must be a positive integer", field="size")
    if max_attempts < 0:
        raise StatusListError("max_attempts must be zero or more", field="max_attempts")
    used = is_used if callable(is_used) else is_used.__contains__
    draw = rng or _SYSTEM_RANDOM
    for _ in range(max_attempts):
        index = draw.randrange(size)
        if not used(index):
            return index
    free = [index for index in range(size) if not used(index)]
    if not free:
        raise StatusListFull(f"all {size} status list indices are in use", extra={"size": size})
    return draw.choice(free)
