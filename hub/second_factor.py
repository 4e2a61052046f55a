"""A second factor for signed actions (21 CFR Part 11 and EU GMP Annex 11 ask a signature to
bind a person; a password alone can be shared): TOTP (RFC 6238), the six-digit codes every
authenticator app makes, through pyotp.

A user is enrolled with ``coldchain users DATA_DIR totp NAME``: a new secret, shown once as an
``otpauth://`` URI (and in base32) for the app. From then on each of their signatures needs
the password and the current code (the one before or after it too, for a phone's clock 30 s
off); a code signs once (its time step is kept with the user, so one seen over a shoulder
cannot be used again). ``hub.require_second_factor`` refuses signatures from users who have
none. The secret is kept in the state with the user (the server must read it to check a
code): the state is as closed as the data dir (``docs/security.md``).
"""

from __future__ import annotations

import hmac

import pyotp

STEP_S = 30
ISSUER = "coldchain"


def new_secret() -> str:
    """A new secret, base32 (160 bits)."""
    return pyotp.random_base32(32)


def enrolment_uri(secret: str, name: str) -> str:
    """What an authenticator app takes (as text or as a QR code of it)."""
    return pyotp.TOTP(secret, interval=STEP_S).provisioning_uri(name=name, issuer_name=ISSUER)


def code_at(secret: str, now_s: float) -> str:
    """The code of the time step holding ``now_s`` (what the app shows then)."""
    return pyotp.TOTP(secret, interval=STEP_S).generate_otp(int(now_s // STEP_S))


def matching_step(secret: str, code: str, now_s: float) -> int | None:
    """The time step whose code ``code`` is: now's, the one before or the one after; None
    when none is."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp, now = pyotp.TOTP(secret, interval=STEP_S), int(now_s // STEP_S)
    for step in (now, now - 1, now + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
