"""Issue a VC 2.0 credential secured with an embedded Data Integrity proof (pure: no database).

The VC-API asks for it with ``options.cryptosuite`` (``eddsa-rdfc-2022`` or
``ecdsa-rdfc-2019``): the keystore's active credential-signing key of the matching algorithm
(Ed25519 or P-256) signs through its :class:`~pavilion.keystore.signer.Signer`, so an HSM key
signs inside the HSM. The credential's ``issuer`` is the DID that controls that key (did:key,
or the connector's did:web: :mod:`~pavilion.credentials.data_integrity.identity`) and the
proof's ``verificationMethod`` names the key under it, with ``proofPurpose``
``assertionMethod``. What comes back is the credential itself with its ``proof``: there is no
envelope, the proof travels inside the JSON-LD document.

The record's ``digest`` is SHA-256 of the secured credential serialised as JSON with sorted
keys and no whitespace (UTF-8), so the audit leaf commits to the document and its proof.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pavilion.credentials.data_integrity import proofs
from pavilion.credentials.issuance import StatusEmbed, evidence_as_of, record_id_of
from pavilion.credentials.report import CheckFailed
from pavilion.credentials.templates import CredentialTemplate
from pavilion.credentials.timeutil import parse_date_time_stamp
from pavilion.errors import InvalidRequest
from pavilion.keystore.signer import Algorithm, Signer

#: The format name recorded and reported for an embedded Data Integrity proof.
DATA_INTEGRITY: Final = proofs.FORMAT_NAME
#: Cryptosuite -> the key algorithm that signs it.
ALGORITHMS: Final[dict[str, Algorithm]] = {
    proofs.EDDSA_RDFC_2022: "EdDSA",
    proofs.ECDSA_RDFC_2019: "ES256",
}


@dataclass(frozen=True)
class IssuedEmbedded:
    """A credential secured with an embedded proof, and what its issuance record keeps."""

    id: str
    document: dict[str, Any]
    key_id: str
    valid_from: datetime
    valid_until: datetime
    template: CredentialTemplate | None = None
    vouched_at: datetime | None = None

    @property
    def format_name(self) -> str:
        return DATA_INTEGRITY

    @property
    def digest(self) -> str:
        text = json.dumps(self.document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def secured_form(self) -> dict[str, Any]:
        """What the VC-API returns: the credential with its proof."""
        return self.document


def algorithm_for(cryptosuite: str) -> Algorithm:
    """The key algorithm a cryptosuite signs with (422 naming the option otherwise)."""
    algorithm = ALGORITHMS.get(cryptosuite)
    if algorithm is None:
        raise InvalidRequest(
            f"cryptosuite must be one of {', '.join(ALGORITHMS)}, not {cryptosuite!r}",
            field="options.cryptosuite",
        )
    return algorithm


async def issue_embedded(
    document: Mapping[str, Any],
    *,
    signer: Signer,
    verification_method: str,
    issued_at: datetime,
    template: CredentialTemplate | None,
    status: StatusEmbed | None = None,
) -> IssuedEmbedded:
    """Add a Data Integrity proof to a checked, complete VC 2.0 document.

    The document has ``id``, ``issuer`` (the DID controlling ``verification_method``),
    ``validFrom`` and ``validUntil`` filled in and has passed the data model checks.
    """
    try:
        valid_from = parse_date_time_stamp(document["validFrom"], "validFrom")
        valid_until = parse_date_time_stamp(document["validUntil"], "validUntil")
    except CheckFailed as exc:  # pragma: no cover - checked by the data model before
        raise InvalidRequest(exc.reason, field="credential.validFrom") from exc
    unsecured = dict(document)
    if status is not None:
        unsecured["credentialStatus"] = status.credential_status()
    secured = await proofs.add_proof(
        unsecured, signer, verification_method=verification_method, created=issued_at
    )
    return IssuedEmbedded(
        id=record_id_of(str(unsecured["id"])),
        document=secured,
        key_id=signer.key_id,
        valid_from=valid_from,
        valid_until=valid_until,
        template=template,
        vouched_at=evidence_as_of(unsecured.get("evidence")),
    )
