"""The benchmark's baseline: a Flask endpoint that only checks the Persona HMAC and answers 200.

Same framework, same signature code, same gunicorn settings as the real app, no parsing and no
database. Run by bench/ingest.py as
    gunicorn -c gunicorn.conf.py --pythonpath bench bare_receiver:app
"""

from __future__ import annotations

import os
import time

from flask import Flask, jsonify, request

from bridge.persona import signature

SECRETS = tuple(s.strip() for s in os.environ.get("PERSONA_WEBHOOK_SECRETS", "").split(",") if s.strip())

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # the real app's default webhooks.max_body_bytes


@app.post("/webhooks/persona")
def persona():  # type: ignore[no-untyped-def]
    body = request.get_data(cache=False)
    try:
        signature.verify(request.headers.get("Persona-Signature"), body, SECRETS,
                         now=time.time(), tolerance_seconds=None)
    except signature.SignatureError as exc:
        return jsonify({"error": str(exc), "status": 401}), 401
    return jsonify({"status": "ok"})
