"""POST /webhooks/persona: verify, hand the body to the committer (it parses and commits), then answer.

The body is parsed where it is stored (the intake writer, or this process's group committer), and
the per-webhook log line is written there too: both are work the web process's request threads
would otherwise do under its GIL, which is where the webhook path is tightest (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, abort, jsonify, request

from bridge.persona import events, signature
from bridge.web import metrics
from bridge.web.common import error, runtime

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


def _body() -> bytes:
    """The raw body; 413 past MAX_CONTENT_LENGTH. A Content-Length over it is refused before reading; a chunked
    body is read up to the limit, which cuts it silently: one more byte waiting means it is longer."""
    body, limit = request.get_data(cache=False), request.max_content_length
    if request.content_length is None and limit is not None and len(body) >= limit and request.environ["wsgi.input"].read(1):
        abort(413)
    return body


@bp.post("/webhooks/persona")
def persona():  # type: ignore[no-untyped-def]
    rt = runtime()
    body = _body()
    try:
        signature.verify(request.headers.get("Persona-Signature"), body, rt.settings.persona_webhook_secrets,
                         now=time.time(), tolerance_seconds=rt.config.signature_tolerance_seconds)
    except signature.SignatureError as exc:
        metrics.WEBHOOKS.labels("unauthorized").inc()
        log.warning("webhook refused (401): %s", exc)  # a fixed message: never the header or the body
        return error(401, str(exc))
    try:
        result = rt.committer().submit(body)  # returns after COMMIT; StoreUnavailable → 503
    except events.EventFormatError as exc:  # never storable (README: webhooks); the message quotes no value
        metrics.WEBHOOKS.labels("malformed").inc()
        return error(400, str(exc))
    outcome = "duplicate" if result.duplicate else "stored"
    metrics.WEBHOOKS.labels(outcome).inc()
    return jsonify({"status": outcome, "event_id": result.event_id})
