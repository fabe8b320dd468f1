"""Operator routes: liveness, readiness (store reachable) and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from bridge.store.engine import StoreUnavailable
from bridge.store.migrate import engine_schema_state
from bridge.web import metrics
from bridge.web.common import error, runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    """Ready when the store answers and is not behind the revision this code expects (every webhook
    would fail). A newer revision (a rolling deploy, a rollback) stays ready, with a warning."""
    try:
        schema = engine_schema_state(runtime().engine)
    except StoreUnavailable:
        return error(503, "store unreachable")
    if schema.problem:
        return error(503, schema.problem)
    return jsonify({"status": "ready", **({"warning": schema.warning} if schema.warning else {})})


@bp.get("/metrics")
def prometheus():  # type: ignore[no-untyped-def]
    return Response(metrics.render(runtime()), mimetype="text/plain; version=0.0.4",
                    headers={"X-KYC-Bridge-Host": metrics.HOST})
