"""Helpers shared by the blueprints: the runtime, JSON errors, bearer auth."""

from __future__ import annotations

import hmac
from functools import wraps
from typing import Any, Callable, TypeVar

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from bridge.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


def runtime() -> Runtime:
    return current_app.extensions["kyc_bridge"]


def error(status: int, message: str, **extra: Any) -> ResponseReturnValue:
    return jsonify({"error": message, "status": status, **extra}), status


def has_admin_token() -> bool:
    """The request carries `Authorization: Bearer BRIDGE_ADMIN_TOKEN` (compared in constant time)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = runtime().settings.admin_token
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def require_admin_token(view: F) -> F:
    """401 unless the request carries the admin bearer token."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if not has_admin_token():
            response = error(401, "missing or wrong bearer token")
            return response[0], 401, {"WWW-Authenticate": 'Bearer realm="kyc-bridge"'}  # type: ignore[index]
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
