"""Secrets of the reference service: device tokens, the admin token and one-time binding codes.

The service keeps only hashes of device tokens and binding codes, so a copied database file does
not let anyone act as a device. Tokens are 256 random bits, which makes a plain SHA-256 enough (no
slow password hash needed); their prefixes let secret scanners and humans recognise a leaked one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

DEVICE_TOKEN_PREFIX = "sdt_"
ADMIN_TOKEN_PREFIX = "sat_"
#: no 0/O, 1/I/L: technicians read codes off a screen or a sheet of paper and type them
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_device_token() -> str:
    return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_admin_token() -> str:
    return ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_binding_code() -> str:
    """Ten characters (about 50 bits), shown as XXXXX-XXXXX; single use and short-lived."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_code(code: str) -> str:
    """What a technician typed → what was issued: case, spaces and hyphens never matter."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
