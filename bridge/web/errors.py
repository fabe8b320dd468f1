"""JSON error bodies for every HTTP error, and 503 when the store is down."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import HTTPException

from bridge.store.engine import StoreUnavailable
from bridge.web.common import error

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(StoreUnavailable)
    def store_down(exc: StoreUnavailable):  # type: ignore[no-untyped-def]
        log.warning("store unavailable: %s", exc)
        return error(503, "the store is unavailable; retry later")
