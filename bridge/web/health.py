"""Operator routes: liveness, readiness (store reachable) and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from bridge.store.engine import StoreUnavailable, ping
from bridge.web import metrics
from bridge.web.common import error, runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    try:
        ping(runtime().engine)
    except StoreUnavailable:
        return error(503, "store unreachable")
    return jsonify({"status": "ready"})


@bp.get("/metrics")
def prometheus():  # type: ignore[no-untyped-def]
    return Response(metrics.render(runtime()), mimetype="text/plain; version=0.0.4",
                    headers={"X-KYC-Bridge-Host": metrics.HOST})
