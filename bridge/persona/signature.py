"""Persona's webhook signature scheme: `t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`.

During secret rotation the header carries several space-separated `t=…,v1=…` sets; the request is
genuine when any `v1` matches any configured secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class SignatureError(Exception):
    """The signature header is missing, malformed, stale or matches no secret."""


@dataclass(frozen=True)
class SignedPart:
    timestamp: int
    digests: tuple[str, ...]


# Persona sends one set, two during a secret rotation. Each set costs an HMAC over the whole body
# per configured secret, so a header may not buy more than this many (an 8 kB header held 740).
MAX_SIGNATURE_SETS = 4
_MAX_TIMESTAMP_DIGITS = 12  # unix seconds until the year 33658; past it int() is only work
_DIGEST = re.compile(r"[0-9a-f]{64}")  # hex of SHA-256


def _hmac(secret: str, timestamp: int, body: bytes) -> str:
    # Fed in two parts: `t.` + body would copy the (up to 1 MiB) body once more per HMAC.
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b".", hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex digest Persona puts in `v1`."""
    return _hmac(secret, timestamp, body)


def header_for(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """A header as Persona sends it, one set per secret (used by the demo, tests and benchmarks)."""
    return " ".join(f"t={timestamp},v1={sign(s, timestamp, body)}" for s in secrets)


def _timestamp(value: str) -> int | None:
    value = value.strip()
    # isascii: str.isdigit() and int() also take other scripts' digits
    if value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS:
        return int(value)
    return None


def _digest(value: str) -> str | None:
    value = value.strip().lower()
    return value if _DIGEST.fullmatch(value) else None


def parse_header(header: str) -> list[SignedPart]:
    """The well-formed sets of a header; malformed items are skipped. SignatureError past
    MAX_SIGNATURE_SETS sets or digests, before any HMAC is computed."""
    chunks = header.split()
    if len(chunks) > MAX_SIGNATURE_SETS:
        raise SignatureError("too many signature sets")
    parts: list[SignedPart] = []
    digest_count = 0
    for chunk in chunks:
        timestamp: int | None = None
        digests: list[str] = []
        for item in chunk.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                continue
            key = key.strip()
            if key == "t":
                timestamp = _timestamp(value)
            elif key == "v1":
                digest_count += 1
                if digest_count > MAX_SIGNATURE_SETS:
                    raise SignatureError("too many signature sets")
                if (digest := _digest(value)) is not None:
                    digests.append(digest)
        if timestamp is not None and digests:
            parts.append(SignedPart(timestamp, tuple(digests)))
    return parts


def verify(
    header: str | None,
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float,
    tolerance_seconds: int | None,
) -> int:
    """Check a `Persona-Signature` header against the raw body; return the signed timestamp.

    Raises SignatureError (with a fixed message that never quotes the header) for a missing,
    malformed, stale or non-matching signature; nothing else for any header string.
    `tolerance_seconds=None` disables the age check: Persona retries for ~51 h and documents no
    replay window, so the unique event id is the replay defence.
    """
    if not header:
        raise SignatureError("missing Persona-Signature header")
    parts = parse_header(header)
    if not parts:
        raise SignatureError("malformed Persona-Signature header")
    secret_list = [s for s in secrets if s]
    if not secret_list:
        raise SignatureError("no webhook secret configured")
    expected_by_timestamp: dict[int, list[str]] = {}  # sets of one rotation share their timestamp
    for part in parts:
        if part.timestamp not in expected_by_timestamp:
            expected_by_timestamp[part.timestamp] = [_hmac(s, part.timestamp, body) for s in secret_list]
        matched = False
        for expected in expected_by_timestamp[part.timestamp]:
            # compare_digest on every candidate: no early exit that leaks which digest matched
            if any(hmac.compare_digest(expected, d) for d in part.digests):
                matched = True
        if not matched:
            continue
        if tolerance_seconds is not None and abs(now - part.timestamp) > tolerance_seconds:
            raise SignatureError("signature timestamp outside the configured tolerance")
        return part.timestamp
    raise SignatureError("signature does not match any configured secret")
