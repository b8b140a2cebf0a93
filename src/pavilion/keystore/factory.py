"""Build the keystore the settings ask for (``keystore_backend: software | pkcs11``).

The PKCS#11 modules are imported only for the ``pkcs11`` backend: the software keystore's
commands do not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pavilion.config.settings import Settings
from pavilion.keystore.base import Keystore, KeyUsage

if TYPE_CHECKING:
    from pavilion.keystore.pkcs11.config import Pkcs11Config


def hsm_config(settings: Settings) -> Pkcs11Config:
    """The token settings as a :class:`Pkcs11Config`; the PIN file is read here, at start-up."""
    from pavilion.keystore.pkcs11.config import Pkcs11Config

    env = {
        "PAVILION_HSM_MODULE": settings.hsm_module,
        "PAVILION_HSM_TOKEN_LABEL": settings.hsm_token_label,
        "PAVILION_HSM_PIN": settings.hsm_pin.get_secret_value(),
        "PAVILION_HSM_PIN_FILE": str(settings.hsm_pin_file) if settings.hsm_pin_file else "",
        "PAVILION_HSM_SLOT": "" if settings.hsm_slot is None else str(settings.hsm_slot),
        "PAVILION_HSM_TIMEOUT_S": str(settings.hsm_timeout_s),
    }
    return Pkcs11Config.from_env(env)


def hsm_standby_config(settings: Settings) -> Pkcs11Config | None:
    """The standby token's settings (``PAVILION_HSM_STANDBY_*``), or None without a standby."""
    if not settings.hsm_standby_token_label:
        return None
    from pavilion.keystore.pkcs11.config import Pkcs11Config

    pin_file = settings.hsm_standby_pin_file
    slot = settings.hsm_standby_slot
    prefix = "PAVILION_HSM_STANDBY_"
    env = {
        f"{prefix}MODULE": settings.hsm_standby_module or settings.hsm_module,
        f"{prefix}TOKEN_LABEL": settings.hsm_standby_token_label,
        f"{prefix}PIN": settings.hsm_standby_pin.get_secret_value(),
        f"{prefix}PIN_FILE": str(pin_file) if pin_file else "",
        f"{prefix}SLOT": "" if slot is None else str(slot),
        f"{prefix}TIMEOUT_S": str(settings.hsm_timeout_s),
    }
    return Pkcs11Config.from_env(env, prefix=prefix)


def open_keystore(settings: Settings, *, usage: KeyUsage | None = None) -> Keystore:
    """The software keystore (embedded default) or the PKCS#11 one, with its default keys."""
    if settings.keystore_backend == "pkcs11":
        from pavilion.keystore.hsm import HsmKeystore

        return HsmKeystore.open(
            hsm_config(settings), usage=usage, standby=hsm_standby_config(settings)
        )
    from pavilion.keystore.software import SoftwareKeystore

    return SoftwareKeystore.open(
        settings.resolved_keystore_dir, settings.keystore_master_key, usage=usage
    )
