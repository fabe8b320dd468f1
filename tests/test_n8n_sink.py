"""The n8n sink over real HTTP (a fake n8n webhook on 127.0.0.1): what it sends and how it
classifies what comes back. No personal data in any reason."""

import hashlib
import hmac
import json
import socket
import time

import pytest

from bridge.persona import signature
from bridge.sinks.errors import SinkError
from bridge.sinks.n8n import N8nClient, encode
from doubles.n8n_webhook import FakeN8nWebhook

EVENT = {
    "version": 1, "id": "kev_" + "a" * 32, "type": "kyc.approved", "occurred_at": "2025-06-01T12:00:00.000Z",
    "contact": {"email": "pat@example.com", "first_name": "Zoë"},
    "inquiry": {"id": "inq_1", "status": "approved", "user_type": "customer", "level": "basic"},
    "links": {"verify": None, "dashboard": "https://app.withpersona.com/dashboard/inquiries/inq_1"},
    "welcome_variant": "agency", "review_due_at": None,
}
PERSONAL = ("pat@example.com", "Zoë", "pat")


@pytest.fixture
def n8n():
    with FakeN8nWebhook() as fake:
        yield fake


def client_for(n8n, **overrides):
    options = {"token": n8n.token, "signing_secret": n8n.signing_secret, "timeout": 2.0}
    options.update(overrides)
    return N8nClient(overrides.pop("url", n8n.url), options["token"], options["signing_secret"],
                     timeout=options["timeout"], clock=options.get("clock", time.time))


def assert_no_personal_data(text):
    for value in PERSONAL:
        assert value.lower() not in text.lower(), text


def test_posts_the_exact_signed_bytes_with_bearer_and_event_headers(n8n):
    assert client_for(n8n).send(EVENT) == "202 accepted"
    [received] = n8n.requests
    assert received.raw == encode(EVENT)
    assert json.loads(received.raw) == EVENT
    assert received.raw.decode("utf-8").count("Zoë") == 1  # UTF-8, not \u escapes
    assert received.headers["authorization"] == f"Bearer {n8n.token}"
    assert received.headers["content-type"].startswith("application/json")
    assert received.headers["x-kyc-event-id"] == EVENT["id"]
    assert received.headers["x-kyc-event-type"] == "kyc.approved"


def test_signature_is_personas_scheme_over_t_dot_body(n8n):
    stamp = int(time.time())
    client_for(n8n, clock=lambda: stamp).send(EVENT)
    header = n8n.requests[0].headers["x-kyc-signature"]
    body = encode(EVENT)
    expected = hmac.new(n8n.signing_secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={stamp},v1={expected}"
    # the bridge's own Persona verifier accepts it, and rejects it under another secret
    assert signature.verify(header, body, [n8n.signing_secret], now=stamp, tolerance_seconds=300) == stamp
    with pytest.raises(signature.SignatureError):
        signature.verify(header, body, ["another-secret"], now=stamp, tolerance_seconds=300)


def test_repeat_is_answered_as_a_duplicate(n8n):
    client = client_for(n8n)
    assert client.send(EVENT) == "202 accepted"
    assert client.send(EVENT) == "200 duplicate"


def test_no_token_sends_no_authorization_header(n8n):
    with pytest.raises(SinkError) as caught:
        client_for(n8n, token=None).send(EVENT)
    assert "authorization" not in n8n.requests[0].headers
    assert caught.value.status == 403 and not caught.value.retryable


@pytest.mark.parametrize("setup, status, retryable, hint", [
    (lambda n8n: n8n.reject_auth(), 403, False, "N8N_TOKEN"),
    (lambda n8n: n8n.inject(401, {"status": "bad_signature"}), 401, False, "N8N_SIGNING_SECRET"),
    (lambda n8n: n8n.inject(404, {"message": "webhook not registered"}), 404, True, "published"),
    (lambda n8n: n8n.inject(500), 500, True, "try again"),
    (lambda n8n: n8n.inject(503), 503, True, "try again"),
    (lambda n8n: n8n.inject(429, {}), 429, True, "try again"),
    (lambda n8n: n8n.inject(302, {}, headers={"Location": "http://127.0.0.1:1/x"}), 302, False, "final address"),
    (lambda n8n: n8n.inject(400, {"message": "bad pat@example.com"}), 400, False, "does not expect"),
])
def test_error_classification(n8n, setup, status, retryable, hint):
    setup(n8n)
    with pytest.raises(SinkError) as caught:
        client_for(n8n).send(EVENT)
    error = caught.value
    assert (error.status, error.retryable) == (status, retryable)
    assert hint in error.reason
    assert EVENT["id"] in error.reason and "kyc.approved" in error.reason
    assert_no_personal_data(error.reason)  # n8n's error body (a stack trace with an email) is never quoted


def test_wrong_signing_secret_is_refused_by_the_receiver(n8n):
    with pytest.raises(SinkError) as caught:
        client_for(n8n, signing_secret="not-the-secret").send(EVENT)
    assert caught.value.status == 401 and not caught.value.retryable


def test_timeout_is_retryable(n8n):
    n8n.delay_responses(2.0, count=1)
    with pytest.raises(SinkError) as caught:
        client_for(n8n, timeout=0.3).send(EVENT)
    assert caught.value.retryable and "within 0.3s" in caught.value.reason


def test_unreachable_is_retryable_and_names_no_url():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = N8nClient(f"http://127.0.0.1:{port}/webhook/kyc-events?who=pat@example.com", "t", "s", timeout=1)
    with pytest.raises(SinkError) as caught:
        client.send(EVENT)
    assert caught.value.retryable and "unreachable" in caught.value.reason
    assert_no_personal_data(caught.value.reason)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_configuration_is_checked_up_front():
    with pytest.raises(ValueError, match="N8N_WEBHOOK_URL"):
        N8nClient("127.0.0.1:5678/webhook/kyc-events", "t", "s")
    with pytest.raises(ValueError, match="N8N_SIGNING_SECRET"):
        N8nClient("http://127.0.0.1:5678/webhook/kyc-events", "t", "")
