"""n8n sink: POST one thin KYC event (bridge.outbox.events_out) to the n8n webhook, signed and authorised.

Speaks only HTTP. Headers:
- `Authorization: Bearer N8N_TOKEN` — checked by the Webhook node's Header Auth credential
  (n8n answers 403 when it does not match);
- `X-KYC-Signature: t=<unix>,v1=<hex HMAC-SHA256(N8N_SIGNING_SECRET, "t.body")>` — Persona's
  scheme over the exact bytes sent; the flow recomputes it and answers 401 on a mismatch;
- `X-KYC-Event-Id`, `X-KYC-Event-Type`.

Personal data (email, first name, links) travels only in the body: SinkError reasons and log
lines name the event type, event id and HTTP status, never the body or n8n's answer (n8n error
pages carry stack traces and may echo the request).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from bridge.persona.signature import header_for
from bridge.sinks.errors import SinkError, transport_failure

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-KYC-Signature"
EVENT_ID_HEADER = "X-KYC-Event-Id"
EVENT_TYPE_HEADER = "X-KYC-Event-Type"
_URL_HINT = "check N8N_WEBHOOK_URL (http(s)://N8N_HOST/webhook/kyc-events) and that the workflow is published"
_ANSWER = re.compile(r"^[a-z_]{1,20}$")


def encode(event: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class N8nClient:
    """Delivers events to one n8n webhook. Stateless apart from the HTTP session: safe to share."""

    def __init__(self, webhook_url: str, token: str | None, signing_secret: str, *, timeout: float = 10.0,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.time) -> None:
        if not re.match(r"^https?://", webhook_url or ""):
            raise ValueError("N8N_WEBHOOK_URL must start with http:// or https://")
        if not signing_secret:
            raise ValueError("N8N_SIGNING_SECRET is required to sign n8n events")
        self._url = webhook_url
        self._token = token
        self._secret = signing_secret
        self._timeout = timeout
        self._session = session if session is not None else requests.Session()
        self._clock = clock

    def send(self, event: Mapping[str, Any]) -> str:
        """POST the event; returns n8n's short answer (e.g. '202 accepted', '200 duplicate').
        Raises SinkError, retryable when trying later can help."""
        label = f"{event.get('type')} {event.get('id')}"
        body = encode(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": "kyc-bridge",
            SIGNATURE_HEADER: header_for([self._secret], int(self._clock()), body),
            EVENT_ID_HEADER: str(event.get("id")),
            EVENT_TYPE_HEADER: str(event.get("type")),
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._session.post(self._url, data=body, headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except requests.RequestException as exc:
            failure = _transport_failure(exc, label, self._timeout)
        except UnicodeError:  # a token that HTTP headers cannot carry
            failure = SinkError("cannot send N8N_TOKEN: it holds characters an HTTP header cannot carry",
                                retryable=False)
        else:
            if 200 <= response.status_code < 300:
                answer = _answer(response)
                log.info("n8n accepted %s (%d%s)", label, response.status_code, f" {answer}" if answer else "")
                return f"{response.status_code} {answer}".strip()
            failure = classify(response.status_code, label)
        # Raised outside the except blocks: the requests exception is not chained (its text holds the URL).
        raise failure


def _answer(response: requests.Response) -> str:
    """n8n's `status` word (accepted, duplicate, ignored), if it is a plain word."""
    try:
        body = response.json()
    except ValueError:
        return ""
    status = body.get("status") if isinstance(body, dict) else None
    return status if isinstance(status, str) and _ANSWER.match(status) else ""


def _transport_failure(exc: requests.RequestException, label: str, timeout: float) -> SinkError:
    return transport_failure(exc, service="n8n", what=label, timeout=timeout, hint=_URL_HINT)


def classify(status: int, label: str) -> SinkError:
    """A non-2xx answer as a SinkError. n8n's texts are not quoted (stack traces, echoed data)."""
    prefix = f"n8n answered {status} to {label}"
    if status == 401:
        return SinkError(f"{prefix}: the flow rejected the X-KYC-Signature; check that N8N_SIGNING_SECRET "
                         "equals the secret of the flow's 'KYC bridge signing secret' credential",
                         retryable=False, status=status)
    if status == 403:
        return SinkError(f"{prefix}: check that N8N_TOKEN matches the Webhook node's Header Auth credential "
                         "('KYC bridge token': name Authorization, value Bearer <N8N_TOKEN>)",
                         retryable=False, status=status)
    if status == 404:
        # n8n answers 404 while a workflow is unpublished (e.g. during a re-import): worth retrying.
        return SinkError(f"{prefix}: no active webhook there; {_URL_HINT}", retryable=True, status=status)
    if status in (408, 409, 425, 429) or status >= 500:
        return SinkError(f"{prefix}; the flow failed or n8n is overloaded, will try again (see n8n's executions)",
                         retryable=True, status=status)
    if 300 <= status < 400:
        return SinkError(f"{prefix} (a redirect): set N8N_WEBHOOK_URL to the final address", retryable=False,
                         status=status)
    return SinkError(f"{prefix}, which kyc-bridge does not expect; {_URL_HINT}", retryable=False, status=status)
