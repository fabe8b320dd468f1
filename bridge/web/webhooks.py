"""POST /webhooks/persona: verify, hand the body to the committer (it parses and commits), then answer.

The body is parsed where it is stored (the intake writer, or this process's group committer), and
the per-webhook log line is written there too: both are work the web process's request threads
would otherwise do under its GIL, which is where the webhook path is tightest (docs/benchmarks.md).
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from bridge.persona import events, signature
from bridge.web import metrics
from bridge.web.common import error, runtime

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/persona")
def persona():  # type: ignore[no-untyped-def]
    rt = runtime()
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        signature.verify(request.headers.get("Persona-Signature"), body, rt.settings.persona_webhook_secrets,
                         now=time.time(), tolerance_seconds=rt.config.signature_tolerance_seconds)
    except signature.SignatureError as exc:
        metrics.WEBHOOKS.labels("unauthorized").inc()
        return error(401, str(exc))
    try:
        result = rt.committer().submit(body)  # returns after COMMIT; StoreUnavailable → 503
    except events.EventFormatError as exc:
        metrics.WEBHOOKS.labels("malformed").inc()
        return error(400, str(exc))
    outcome = "duplicate" if result.duplicate else "stored"
    metrics.WEBHOOKS.labels(outcome).inc()
    return jsonify({"status": outcome, "event_id": result.event_id})
