"""Sessions on the tokens of one PKCS#11 module: load the library, find a token, log in.

:class:`ModuleSessions` is the state the worker thread owns for one module (the library, the
open sessions, the key handles found through them) and the session half of its operations:
one token opened twice in a process shares one logged-in session (PKCS#11 login state is per
process and token), and a session that dies under us (HSM restart, network drop) is opened and
logged in again. :class:`~pavilion.keystore.pkcs11.ops.ModuleOps` adds the key operations.
Only the worker thread calls these.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import os
import time
from dataclasses import dataclass
from typing import Any, Final

import pkcs11

from pavilion.keystore.pkcs11.errors import (
    Pkcs11Error,
    Pkcs11LoginFailed,
    Pkcs11ModuleError,
    Pkcs11OperationFailed,
    Pkcs11Unavailable,
    TokenNotFound,
    describe,
)

#: Attempts and pause when looking a token up: two processes opening a SoftHSM token at the
#: same instant sometimes see no token at all for a moment.
TOKEN_LOOKUP_ATTEMPTS = 4
TOKEN_LOOKUP_PAUSE_S = 0.05

_WRONG_PIN: Final = (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange)
SESSION_LOST: Final = (
    pkcs11.SessionHandleInvalid,
    pkcs11.SessionClosed,
    pkcs11.UserNotLoggedIn,
    pkcs11.DeviceRemoved,
    pkcs11.TokenNotPresent,
)
#: Errors that mean the token (not the request) failed: the caller gets Pkcs11Unavailable, and
#: the token is recovered (module finalised and initialised again, sessions logged in again).
#: CKR_GENERAL_ERROR is not among them: SoftHSM2 also answers it to a wrong mechanism.
TOKEN_FAILED: Final = (
    *SESSION_LOST,
    pkcs11.DeviceError,
    pkcs11.DeviceMemory,
    pkcs11.TokenNotRecognised,
    pkcs11.ObjectHandleInvalid,
    pkcs11.KeyHandleInvalid,
)


@dataclass(slots=True)
class OpenToken:
    """One logged-in session on a token, shared by the users that opened that token."""

    label: str
    slot: int | None
    pin: str
    #: None after a recovery that could not log in again (the next recovery tries again).
    session: Any
    users: int = 1


class ModuleSessions:
    """The library and the open sessions of one PKCS#11 module (worker thread only)."""

    def __init__(self, module_path: str) -> None:
        self.module_path = module_path
        self._lib: Any = None
        self._tokens: dict[int, OpenToken] = {}
        self._keys: dict[tuple[int, bytes], Any] = {}
        self._refs = itertools.count(1)

    # -- library ------------------------------------------------------------------------------

    def _library(self) -> Any:
        if self._lib is None:
            path = self.module_path
            if not os.path.isfile(path):
                raise Pkcs11ModuleError(
                    f"PKCS#11 module not found at '{path}': set the module path to the HSM "
                    "vendor's library (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
                )
            try:
                self._lib = pkcs11.lib(path)
            except pkcs11.PKCS11Error as exc:
                raise Pkcs11ModuleError(
                    f"PKCS#11 module at '{path}' could not be loaded: {describe(exc)}"
                ) from exc
        return self._lib

    def _present_tokens(self) -> list[tuple[int, Any]]:
        found = []
        for slot in self._library().get_slots(token_present=True):
            try:
                found.append((slot.slot_id, slot.get_token()))
            except (pkcs11.TokenNotPresent, pkcs11.TokenNotRecognised):
                continue
        return found

    def _find_token(self, label: str, slot: int | None) -> Any:
        for attempt in range(TOKEN_LOOKUP_ATTEMPTS):
            present = self._present_tokens()
            matches = [tok for sid, tok in present if tok.label == label and slot in (None, sid)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise TokenNotFound(
                    f"{len(matches)} PKCS#11 tokens are labelled '{label}' in module "
                    f"'{self.module_path}': set the slot to choose one"
                )
            if attempt + 1 < TOKEN_LOOKUP_ATTEMPTS:
                time.sleep(TOKEN_LOOKUP_PAUSE_S)
                if not self._tokens:  # nothing open here: safe to rescan the token list
                    self._lib.reinitialize()
        available = ", ".join(
            sorted(f"'{tok.label}' (slot {sid})" for sid, tok in present if tok.label)
        )
        where = f"'{label}'" if slot is None else f"'{label}' in slot {slot}"
        raise TokenNotFound(
            f"PKCS#11 token {where} not found in module '{self.module_path}'; "
            f"available tokens: {available or 'none'}"
        )

    # -- sessions -----------------------------------------------------------------------------

    def open_token(self, label: str, pin: str, slot: int | None) -> int:
        """Open (or share) the logged-in read/write session of a token; return its reference."""
        for ref, entry in self._tokens.items():
            if entry.label == label and entry.slot == slot:
                if not hmac.compare_digest(entry.pin.encode(), pin.encode()):
                    raise Pkcs11LoginFailed(f"PKCS#11 login failed for token '{label}': wrong PIN")
                entry.users += 1
                return ref
        session = self._login(label, pin, slot)
        ref = next(self._refs)
        self._tokens[ref] = OpenToken(label=label, slot=slot, pin=pin, session=session)
        return ref

    def _login(self, label: str, pin: str, slot: int | None) -> Any:
        """A new read/write session on the token, logged in as the user."""
        token = self._find_token(label, slot)
        try:
            return token.open(rw=True, user_pin=pin)
        except _WRONG_PIN as exc:
            raise Pkcs11LoginFailed(f"PKCS#11 login failed for token '{label}': wrong PIN") from exc
        except pkcs11.PinLocked as exc:
            raise Pkcs11LoginFailed(
                f"PKCS#11 login failed for token '{label}': the user PIN is locked"
            ) from exc
        except pkcs11.UserAlreadyLoggedIn:
            # Login state belongs to the process: someone else in it already logged in.
            return token.open(rw=True)
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11OperationFailed(
                f"could not open a session on PKCS#11 token '{label}': {describe(exc)}"
            ) from exc

    def _forget_keys(self, ref: int) -> None:
        self._keys = {key: handle for key, handle in self._keys.items() if key[0] != ref}

    def _reopen(self, ref: int) -> None:
        """The session died under us (HSM restart, network drop): open a new one, log in."""
        entry = self._entry(ref)
        with contextlib.suppress(pkcs11.PKCS11Error):
            entry.session.close()
        self._forget_keys(ref)
        entry.session = None
        entry.session = self._login(entry.label, entry.pin, entry.slot)

    def recover(self, ref: int) -> None:
        """Start the module afresh: close every session, finalise and initialise the library,
        log every open token in again and forget every key handle.

        A token that lost its objects (or its device) does not see them come back through its
        old sessions, nor through new ones, until the module is initialised again (SoftHSM2
        rereads its token directory only in ``C_Initialize``; network HSM clients reconnect
        there). The other tokens of the module are logged in again too: their key handles are
        looked up again on first use. Raises :class:`Pkcs11Unavailable` if the token ``ref``
        did not come back; the next recovery tries again.
        """
        if ref not in self._tokens:
            raise Pkcs11Unavailable("the PKCS#11 token session is closed")
        self._keys.clear()
        for entry in self._tokens.values():
            if entry.session is not None:
                with contextlib.suppress(pkcs11.PKCS11Error):
                    entry.session.close()
            entry.session = None
        lib = self._library()
        try:
            lib.reinitialize()
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11Unavailable(
                f"PKCS#11 module '{self.module_path}' did not initialise again: {describe(exc)}"
            ) from exc
        failure: Exception | None = None
        for key, entry in self._tokens.items():
            try:
                entry.session = self._login(entry.label, entry.pin, entry.slot)
            except (Pkcs11Error, pkcs11.PKCS11Error) as exc:
                if key == ref:
                    failure = exc
        if failure is not None:
            raise Pkcs11Unavailable(
                f"PKCS#11 token '{self._tokens[ref].label}' is not back: {describe(failure)}"
            ) from failure

    def close_token(self, ref: int) -> None:
        entry = self._tokens.get(ref)
        if entry is None:
            return
        entry.users -= 1
        if entry.users:
            return
        del self._tokens[ref]
        self._forget_keys(ref)
        if entry.session is not None:
            with contextlib.suppress(pkcs11.PKCS11Error):
                entry.session.close()

    def shutdown(self) -> None:
        """Close every session and finalise the library (the worker's last operation)."""
        for ref in list(self._tokens):
            self._tokens[ref].users = 1
            self.close_token(ref)
        if self._lib is not None:
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._lib.finalize()
            self._lib = None

    def _entry(self, ref: int) -> OpenToken:
        entry = self._tokens.get(ref)
        if entry is None:
            raise Pkcs11Unavailable("the PKCS#11 token session is closed")
        if entry.session is None:
            raise Pkcs11Unavailable(
                f"PKCS#11 token '{entry.label}' is not logged in since the module was "
                "initialised again (it was not back yet); the next recovery tries again"
            )
        return entry
