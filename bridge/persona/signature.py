"""Persona's webhook signature scheme: `t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`.

During secret rotation the header carries several space-separated `t=…,v1=…` sets; the request is
genuine when any `v1` matches any configured secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class SignatureError(Exception):
    """The signature header is missing, malformed, stale or matches no secret."""


@dataclass(frozen=True)
class SignedPart:
    timestamp: int
    digests: tuple[str, ...]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex digest Persona puts in `v1`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def header_for(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """A header as Persona sends it, one set per secret (used by the demo, tests and benchmarks)."""
    return " ".join(f"t={timestamp},v1={sign(s, timestamp, body)}" for s in secrets)


def parse_header(header: str) -> list[SignedPart]:
    parts: list[SignedPart] = []
    for chunk in header.split():
        timestamp: int | None = None
        digests: list[str] = []
        for item in chunk.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                continue
            key = key.strip()
            if key == "t" and value.strip().isdigit():
                timestamp = int(value.strip())
            elif key == "v1":
                digests.append(value.strip())
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
    for part in parts:
        matched = False
        for secret in secret_list:
            expected = sign(secret, part.timestamp, body)
            # compare_digest on every candidate: no early exit that leaks which digest matched
            if any(hmac.compare_digest(expected, d) for d in part.digests):
                matched = True
        if not matched:
            continue
        if tolerance_seconds is not None and abs(now - part.timestamp) > tolerance_seconds:
            raise SignatureError("signature timestamp outside the configured tolerance")
        return part.timestamp
    raise SignatureError("signature does not match any configured secret")
