"""``pavilion keys replicate``: copy the connector's keys to the standby token.

Signing fails over to a standby token that holds the same keys (same ``CKA_ID``, label and
public key, so the same ``kid``). :func:`replicate` makes it so, the way HSM clusters replicate
keys: each key leaves the primary only wrapped (``CKM_AES_KEY_WRAP_PAD``) under a replication
key-encryption key both tokens hold, and is unwrapped inside the standby
(:mod:`pavilion.keystore.pkcs11.wrapping`). The first run creates that key on the primary and
sends it to the standby wrapped with RSA-OAEP under a one-off transport key the standby
generates. Labels carry key state, so a key already on the standby is relabelled to match.

Run it after every lifecycle step (create, rotate, retire): until then a new key exists on the
primary only, and a failover would leave it without a standby.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pavilion.errors import ConfigurationError
from pavilion.keystore.pkcs11 import wrapping
from pavilion.keystore.pkcs11.errors import Pkcs11OperationFailed
from pavilion.keystore.pkcs11.token import Pkcs11Token


@dataclass
class ReplicationReport:
    """What one run did, by key label (never key material)."""

    #: The replication KEK: made now on the primary and sent, only sent, or already on both.
    kek: Literal["created", "sent", "present"] = "present"
    copied: list[str] = field(default_factory=list)
    relabelled: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    #: ``label: reason`` of keys that cannot be copied (not extractable, not wrappable).
    skipped: list[str] = field(default_factory=list)


def _replication_kek(
    primary: Pkcs11Token, standby: Pkcs11Token, report: ReplicationReport
) -> bytes:
    kek = primary.run(wrapping.find_kek)
    on_standby = standby.run(wrapping.find_kek)
    if kek is None:
        if on_standby is not None:
            raise ConfigurationError(
                f"the standby token '{standby.label}' has a replication key but the primary "
                f"'{primary.label}' has none: are the two swapped? Delete the standby's "
                f"'{wrapping.REPLICATION_KEK_LABEL}' to start afresh"
            )
        kek = primary.run(wrapping.generate_kek)
        report.kek = "created"
    if on_standby is None:
        modulus, exponent = standby.run(wrapping.open_transport)
        blob = primary.run(wrapping.wrap_kek, kek, modulus, exponent)
        standby.run(wrapping.unwrap_kek, kek, blob)
        if report.kek == "present":
            report.kek = "sent"
    elif on_standby != kek:
        raise ConfigurationError(
            f"the tokens '{primary.label}' and '{standby.label}' hold different replication "
            f"keys ('{wrapping.REPLICATION_KEK_LABEL}'): delete the standby's to send it again"
        )
    return kek


def replicate(primary: Pkcs11Token, standby: Pkcs11Token) -> ReplicationReport:
    """Copy every connector key (label ``pavilion:...``) the standby lacks; relabel the ones
    whose state changed. Blocks on both tokens."""
    report = ReplicationReport()
    kek = _replication_kek(primary, standby, report)
    theirs = standby.run(wrapping.objects)
    for cka_id, label in sorted(primary.run(wrapping.objects).items(), key=lambda i: i[1]):
        if cka_id in theirs:
            if theirs[cka_id] == label:
                report.present.append(label)
            else:
                standby.relabel(cka_id, label)
                report.relabelled.append(label)
            continue
        try:
            key = primary.run(wrapping.export_key, kek, cka_id)
        except Pkcs11OperationFailed as exc:
            report.skipped.append(f"{label}: {exc.detail}")
            continue
        standby.run(wrapping.import_key, kek, key)
        report.copied.append(label)
    return report
