"""Where a PKCS#11 token is and how to log in (:class:`Pkcs11Config`), also from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pavilion.errors import ConfigurationError

#: Environment variables read by :meth:`Pkcs11Config.from_env` (prefix + MODULE, TOKEN_LABEL,
#: PIN or PIN_FILE, SLOT, TIMEOUT_S).
DEFAULT_ENV_PREFIX: Final = "PAVILION_HSM_"


@dataclass(frozen=True, slots=True)
class Pkcs11Config:
    """Where the token is and how to log in. The PIN never appears in ``repr``."""

    module_path: str
    token_label: str
    user_pin: str = field(repr=False)
    slot: int | None = None
    #: How long a caller waits for the token before giving up with :class:`Pkcs11Unavailable`.
    operation_timeout_s: float = 30.0
    #: After the token fails, the first recovery attempt waits this long; each failed attempt
    #: doubles the wait, up to ``recovery_max_s``.
    recovery_initial_s: float = 1.0
    recovery_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.token_label:
            raise ConfigurationError("the PKCS#11 token label must not be empty")
        if self.operation_timeout_s <= 0:
            raise ConfigurationError("the PKCS#11 operation timeout must be positive")
        if not 0 < self.recovery_initial_s <= self.recovery_max_s:
            raise ConfigurationError(
                "the PKCS#11 recovery backoff needs 0 < recovery_initial_s <= recovery_max_s"
            )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = DEFAULT_ENV_PREFIX
    ) -> Pkcs11Config:
        """Read ``<prefix>`` + MODULE, TOKEN_LABEL, PIN or PIN_FILE, SLOT and TIMEOUT_S.

        The PIN comes from the environment or from a file (a mounted secret; one trailing
        newline is ignored), never from the command line.
        """
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(prefix + name, "")
            if not value:
                raise ConfigurationError(f"{prefix}{name} is not set")
            return value

        pin = env.get(prefix + "PIN", "")
        pin_file = env.get(prefix + "PIN_FILE", "")
        if pin and pin_file:
            raise ConfigurationError(f"set {prefix}PIN or {prefix}PIN_FILE, not both")
        if pin_file:
            try:
                pin = Path(pin_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigurationError(
                    f"{prefix}PIN_FILE: cannot read '{pin_file}': {exc.strerror}"
                ) from exc
        if not pin:
            raise ConfigurationError(f"{prefix}PIN or {prefix}PIN_FILE is not set")
        try:
            slot = int(env[prefix + "SLOT"]) if env.get(prefix + "SLOT") else None
            timeout = float(env.get(prefix + "TIMEOUT_S") or 30.0)
        except ValueError as exc:
            raise ConfigurationError(
                f"{prefix}SLOT must be an integer and {prefix}TIMEOUT_S a number of seconds"
            ) from exc
        return cls(
            module_path=required("MODULE"),
            token_label=required("TOKEN_LABEL"),
            user_pin=pin,
            slot=slot,
            operation_timeout_s=timeout,
        )
