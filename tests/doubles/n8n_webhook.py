"""A fake n8n production webhook for the bridge's KYC events, on 127.0.0.1 (see server.py).

It answers the way the shipped flow (n8n-flows/workflows/kyc-events.json) does in a real n8n:
403 `Authorization data is wrong!` for a wrong bearer token (n8n's Header Auth), 401 for a bad
X-KYC-Signature, 200 {"status": "duplicate"} for an event id it has accepted before, else
202 {"status": "accepted"}. Faults (`inject`, `go_down`, delays) come from LoopbackDouble.
Unit tests of the sink and the worker use it; tests/test_n8n_e2e.py uses the real n8n.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from bridge.persona import signature
from doubles.server import LoopbackDouble

PATH = "/webhook/kyc-events"


@dataclass(frozen=True)
class ReceivedEvent:
    headers: dict[str, str]
    raw: bytes
    event: Any  # the parsed JSON body (None when not JSON)
    status: int  # what the double answered


class FakeN8nWebhook(LoopbackDouble[ReceivedEvent]):
    _thread_name = "fake-n8n"

    def __init__(self, token: str = "n8n-test-token", signing_secret: str = "n8n-test-signing-secret") -> None:
        super().__init__()
        self.token = token
        self.signing_secret = signing_secret
        self.handled: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def accepted(self) -> list[Any]:
        """Events answered 202 (each one an email in the real flow)."""
        with self._lock:
            return [r.event for r in self.requests if r.status == 202]

    def _fault_body(self, status: int) -> Any:
        return {"code": status, "message": "Error in workflow", "stacktrace": "Error: ...\n    at pat@example.com"}

    def _respond(self, request: Request) -> Response:
        self._maybe_delay(request.method, request.path)
        raw = request.get_data()
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        headers = {key.lower(): value for key, value in request.headers.items()}
        with self._lock:
            fault = self._take_fault()
            if fault is not None:
                status, body = fault.status, fault.body
            elif request.path != PATH or request.method != "POST":
                status, body = 404, {"code": 404, "message": f'The requested webhook "{request.method} '
                                                            f'{request.path}" is not registered.'}
            elif headers.get("authorization") != f"Bearer {self.token}" or self._reject_auth:
                status, body = 403, "Authorization data is wrong!"
            elif not self._signed(headers.get("x-kyc-signature"), raw):
                status, body = 401, {"status": "bad_signature"}
            elif isinstance(event, dict) and event.get("id") in self.handled:
                status, body = 200, {"status": "duplicate"}
            else:
                self.handled.add(event.get("id") if isinstance(event, dict) else "")
                status, body = 202, {"status": "accepted"}
            self.requests.append(ReceivedEvent(headers, raw, event, status))
        if isinstance(body, str):
            return Response(body, status=status, content_type="text/plain")
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _signed(self, header: str | None, raw: bytes) -> bool:
        try:
            signature.verify(header, raw, [self.signing_secret], now=time.time(), tolerance_seconds=300)
        except signature.SignatureError:
            return False
        return True
