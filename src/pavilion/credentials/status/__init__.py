"""Credential status lists: IETF Token Status List and W3C Bitstring Status List, pure codecs.

Nothing here touches a database or the network: the lists are built, encoded and decoded in
memory, indices are drawn by :func:`allocate_index`, and storing, signing and serving the
lists is the caller's job.
"""

from pavilion.credentials.status.allocation import (
    StatusListError,
    StatusListFull,
    allocate_index,
)
from pavilion.credentials.status.bitstring import (
    MIN_ENTRIES,
    BitstringStatusList,
    StatusPurpose,
    status_list_credential_subject,
    status_list_entry,
)
from pavilion.credentials.status.token_status_list import (
    STATUS_LIST_JWT_TYP,
    TokenStatus,
    TokenStatusList,
    referenced_token_status_claim,
    status_list_jwt_header,
)

__all__ = [
    "MIN_ENTRIES",
    "STATUS_LIST_JWT_TYP",
    "BitstringStatusList",
    "StatusListError",
    "StatusListFull",
    "StatusPurpose",
    "TokenStatus",
    "TokenStatusList",
    "allocate_index",
    "referenced_token_status_claim",
    "status_list_credential_subject",
    "status_list_entry",
    "status_list_jwt_header",
]
