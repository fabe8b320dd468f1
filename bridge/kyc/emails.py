"""Email normalisation, so MySQL's case-insensitive collation and PostgreSQL agree. Pure."""

from __future__ import annotations

from bridge.kyc import text


def normalize(email: str | None) -> str | None:
    """Trimmed and lower-cased; None for anything that is not an address."""
    if not email:
        return None
    value = email.strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value) or len(value) > 320:
        return None
    if not text.storable(value):  # a NUL or a lone surrogate: no mailbox has one, and no store holds it
        return None
    return value
