"""Helpers shared by the blueprints: the runtime, JSON errors, bearer auth."""

from __future__ import annotations

import hmac
from functools import wraps
from typing import Any, Callable, TypeVar

from flask import abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from bridge.kyc import emails
from bridge.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


def runtime() -> Runtime:
    return current_app.extensions["kyc_bridge"]


def path_email(raw: str) -> str:
    """The normalised email of a /contacts/<email>… path; 400 when it is not one."""
    email = emails.normalize(raw)
    if email is None:
        abort(400, description="not an email address")
    return email  # type: ignore[return-value]


def error(status: int, message: str, **extra: Any) -> ResponseReturnValue:
    return jsonify({"error": message, "status": status, **extra}), status


ADMIN, READ = "admin", "read"  # token scopes: the admin token does all, the read token a few routes


def token_scope() -> str | None:
    """Which token the request carries: ADMIN (BRIDGE_ADMIN_TOKEN), READ (BRIDGE_READ_TOKEN) or
    None (missing or wrong). Both compared in constant time."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    given = token.strip().encode()
    settings = runtime().settings
    is_admin = hmac.compare_digest(given, settings.admin_token.encode())
    is_read = settings.read_token is not None and hmac.compare_digest(given, settings.read_token.encode())
    return ADMIN if is_admin else READ if is_read else None


def has_admin_token() -> bool:
    """The request carries `Authorization: Bearer BRIDGE_ADMIN_TOKEN` (compared in constant time)."""
    return token_scope() == ADMIN


def has_token() -> bool:
    """The request carries either bearer token (a server-to-server caller)."""
    return token_scope() is not None


def _requiring(allowed: tuple[str, ...]) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            scope = token_scope()
            if scope is None:
                response = error(401, "missing or wrong bearer token")
                return response[0], 401, {"WWW-Authenticate": 'Bearer realm="kyc-bridge"'}  # type: ignore[index]
            if scope not in allowed:
                return error(403, "this token is read-only: the route needs BRIDGE_ADMIN_TOKEN")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# 401 unless the request carries the admin bearer token; 403 for the read token.
require_admin_token = _requiring((ADMIN,))
# 401 unless the request carries the admin or the read token.
require_read_token = _requiring((ADMIN, READ))
