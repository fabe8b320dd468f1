"""Signed, expiring verification-link tokens (itsdangerous). The token carries only a random
link id; the email stays in the store. Pure: no I/O."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "kyc-bridge.verify-link.v1"


class LinkTokenError(Exception):
    def __init__(self, reason: str, *, expired: bool = False):
        super().__init__(reason)
        self.expired = expired


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def sign(secret_key: str, link_id: str) -> str:
    return _serializer(secret_key).dumps(link_id)


def verify(secret_key: str, token: str, *, max_age_seconds: int) -> str:
    """The link id in `token`; raises LinkTokenError when tampered with or expired."""
    try:
        link_id = _serializer(secret_key).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise LinkTokenError("this link has expired", expired=True) from None
    except BadSignature:
        raise LinkTokenError("this link is not valid") from None
    if not isinstance(link_id, str):
        raise LinkTokenError("this link is not valid")
    return link_id
