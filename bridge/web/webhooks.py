"""POST /webhooks/persona: verify, parse, commit one transaction, then answer."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, jsonify, request

from bridge.persona import events, signature
from bridge.web import metrics
from bridge.web.common import error, runtime

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)


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
        event = events.parse(body)
    except events.EventFormatError as exc:
        metrics.WEBHOOKS.labels("malformed").inc()
        return error(400, str(exc))
    result = rt.committer().submit(event, body)  # returns after COMMIT; StoreUnavailable → 503
    outcome = "duplicate" if result.duplicate else "stored"
    metrics.WEBHOOKS.labels(outcome).inc()
    log.info("webhook %s %s: %s", event.event_id, event.name, outcome)
    return jsonify({"status": outcome, "event_id": event.event_id})
