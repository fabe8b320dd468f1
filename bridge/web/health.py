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
    """Ready when the store answers and is at the revision this code expects (behind it, every
    webhook would fail)."""
    try:
        problem = engine_schema_state(runtime().engine).problem
    except StoreUnavailable:
        return error(503, "store unreachable")
    if problem:
        return error(503, problem)
    return jsonify({"status": "ready"})


@bp.get("/metrics")
def prometheus():  # type: ignore[no-untyped-def]
    return Response(metrics.render(runtime()), mimetype="text/plain; version=0.0.4")
