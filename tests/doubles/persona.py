"""A fake Persona REST API (version 2025-12-08) that runs for real on 127.0.0.1 (werkzeug, background thread).

Serves the routes kyc-bridge uses, shaped like shared/persona/openapi.yaml: create
(POST /inquiries, 201), retrieve (GET /inquiries/{id}), redact (DELETE /inquiries/{id}), resume
(POST /inquiries/{id}/resume) and the event log (GET /events: newest first, `page[after]`/`page[before]`
cursors and `page[size]` (default 10, at most 100), `filter[name]`, `filter[object-id]`, `filter[id]`,
`links.prev`/`links.next`), with the spec's JSON:API inquiry object, `meta.session-token`, its
error bodies `{"errors": [{"title", "details"}]}` and its response headers (Request-Id,
RateLimit-*). Keeps state (inquiries, accounts by reference id, inquiry sessions, Idempotency-Key
replays), checks the bearer key, records every request and answer, and injects faults (429 with
Retry-After, 5xx, slow answers, revoked key).

    with FakePersona() as persona:
        client = PersonaClient(persona.api_key, base_url=persona.base_url)

Choices the spec leaves open, made here on purpose: resuming or redacting an already redacted
inquiry answers 409 with the spec's conflict example "Inquiry already redacted"; only the default
`Key-Inflection: kebab` is implemented (any other value gets a 400, so a client asking for another
style cannot pass by accident); bodies the spec's create schema would reject get a 400.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from werkzeug.wrappers import Request, Response

from .server import LoopbackDouble, parse_json

API_PREFIX = "/api/v1"
PERSONA_VERSIONS = ("2025-12-08", "2025-10-27", "2023-01-05", "2022-09-01", "2021-08-18", "2021-07-05",
                    "2021-02-21", "2020-05-18")  # components/schemas/api-version
STATUSES = ("created", "pending", "completed", "expired", "failed", "needs_review", "approved", "declined")
JSON_TYPE = "application/json; charset=utf-8"
_ID_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DEFAULT_EXPIRY = timedelta(hours=24)

# The template attributes of a create body (paths /inquiries post) and the prefix each takes.
TEMPLATE_ATTRIBUTES = {"inquiry-template-id": "itmpl_", "template-id": "tmpl_",
                       "inquiry-template-version-id": "itmplv_"}
CREATE_ATTRIBUTES = frozenset(TEMPLATE_ATTRIBUTES) | {
    "reference-id", "account-id", "creator-email-address", "theme-id", "theme-set-id", "redirect-uri",
    "note", "fields", "tags", "initial-step-name"}
CREATE_META = frozenset({
    "auto-create-account", "auto-create-account-type-id", "auto-create-account-reference-id",
    "auto-create-inquiry-session", "auto-create-one-time-link", "expiration-after-create-interval-seconds",
    "expiration-after-start-interval-seconds", "expiration-after-resume-interval-seconds",
    "one-time-link-expiration-seconds"})
# The template fields every inquiry of the spec's examples lists, in their order (and their type).
DEFAULT_FIELDS = (
    ("name-first", "string"), ("name-middle", "string"), ("name-last", "string"),
    ("address-street-1", "string"), ("address-street-2", "string"), ("address-city", "string"),
    ("address-subdivision", "string"), ("address-postal-code", "string"),
    ("address-country-code", "string"), ("birthdate", "date"), ("email-address", "string"),
    ("phone-number", "string"), ("identification-number", "string"),
)

# Error bodies: the spec's own examples (components/responses/*).
UNAUTHENTICATED = {"errors": [{"title": "Must be authenticated to access this endpoint"}]}
TOKEN_INVALID = {"errors": [{"title": "Token is invalid"}]}
NOT_FOUND = {"errors": [{"title": "Record not found"}]}
ALREADY_REDACTED = {"errors": [{"title": "Conflict", "details": "Inquiry already redacted"}]}
RATE_LIMITED = {"errors": [{"title": "Rate limit exceeded",
                            "details": "You have hit your rate limit of 300 requests / min. Please reach out "
                                       "to support@withpersona.com if you need this changed."}]}
SERVER_ERROR = {"errors": [{"title": "Internal Server Error"}]}  # no 5xx body in the spec: a guess
UNAVAILABLE_HTML = ("<!DOCTYPE html><html><head><title>503 Service Temporarily Unavailable</title></head>"
                    "<body><h1>503 Service Temporarily Unavailable</h1></body></html>")


def bad_request(details: str) -> dict[str, Any]:
    return {"errors": [{"title": "Bad Request", "details": details}]}


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def timestamp(when: datetime) -> str:
    """The spec's format: 2023-03-29T19:06:45.000Z."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------- state


@dataclass
class _Session:
    id: str
    token: str
    status: str = "pending"  # pending: unused and valid; expired: no longer usable


@dataclass
class _Inquiry:
    id: str
    status: str
    template_attribute: str  # which create attribute named the template
    template_id: str  # the id as given (itmpl_/tmpl_/itmplv_)
    inquiry_template_id: str | None
    inquiry_template_version_id: str | None
    reference_id: str | None
    account_id: str | None
    fields: dict[str, tuple[str, Any]]  # key → (type, value)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    redirect_uri: str | None = None
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    creator: str = "API"
    started_at: datetime | None = None
    expired_at: datetime | None = None
    redacted_at: datetime | None = None
    sessions: list[_Session] = field(default_factory=list)


@dataclass(frozen=True)
class InquiryState:
    id: str
    status: str
    reference_id: str | None
    template_id: str
    template_attribute: str
    fields: dict[str, Any]  # key → value
    redirect_uri: str | None
    redacted: bool
    session_tokens: tuple[str, ...]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as received, e.g. "/api/v1/inquiries/inq_…/resume"
    query: dict[str, list[str]]
    headers: dict[str, str]  # as received (werkzeug's capitalisation)
    body: bytes
    json: Any  # the parsed JSON body, or None
    status: int  # what the double answered
    response_json: Any  # the JSON it answered, or None (HTML fault pages)
    response_headers: dict[str, str]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)

    @property
    def route(self) -> str | None:
        """The path below /api/v1, or None when outside it."""
        return self.path[len(API_PREFIX):] if self.path.startswith(API_PREFIX + "/") else None


Reply = tuple[int, Any, dict[str, str]]  # (status, JSON body, extra headers)


# ---------------------------------------------------------------------- the server


class FakePersona(LoopbackDouble[RecordedRequest]):
    """Fake Persona API server; a context manager that starts and stops it."""

    _thread_name = "fake-persona"

    def __init__(self, *, api_key: str | None = None, rate_limit: int = 300) -> None:
        super().__init__()
        self.api_key = api_key or "persona_sandbox_" + secrets.token_hex(16)
        self.environment_id = new_id("env_")
        self.organization_id = new_id("org_")
        self._rate_limit = rate_limit
        self._inquiries: dict[str, _Inquiry] = {}
        self._accounts: dict[str, str] = {}  # reference id → act_ id
        self._idempotent: dict[str, tuple[int, Any]] = {}  # Idempotency-Key → first answer
        self._events: list[dict[str, Any]] = []  # the event log's `event` objects

    # ------------------------------------------------------------------ address

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    # ------------------------------------------------------------------ faults

    def _fault_body(self, status: int) -> Any:
        """inject()'s default body: 429 → the spec's rate-limit example, 500 → a JSON error,
        502/503/504 → a load balancer's HTML page."""
        return (RATE_LIMITED if status == 429 else UNAVAILABLE_HTML if status in (502, 503, 504)
                else SERVER_ERROR if status >= 500 else bad_request(f"Injected {status}"))

    def rate_limit(self, count: int = 1, *, retry_after: int | str | None = 1, reset: int | None = None) -> None:
        """The next `count` requests get 429 with `Retry-After: retry_after` (None: no such header)
        and the spec's RateLimit-* headers (Reset: `reset`, default retry_after or 60)."""
        headers = {"RateLimit-Limit": str(self._rate_limit), "RateLimit-Remaining": "0",
                   "RateLimit-Reset": str(reset if reset is not None else
                                          retry_after if isinstance(retry_after, int) else 60)}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self.inject(429, RATE_LIMITED, count=count, headers=headers)

    def delay_responses(self, seconds: float, count: int | None = 1, *,
                        method: str | None = None, path: str | None = None) -> None:
        """As LoopbackDouble.delay_responses (route e.g. "/inquiries"), but by default only the next request."""
        super().delay_responses(seconds, count, method=method, path=path)

    # ------------------------------------------------------------------ seeding and inspection

    def add_inquiry(self, *, status: str = "created", reference_id: str | None = None,
                    template_id: str = "itmpl_p8ANAJy9iqadm2buF2xcVgqH", fields: dict[str, Any] | None = None,
                    redacted: bool = False) -> str:
        """Seed an inquiry (as if made in the Dashboard or earlier); its id."""
        if status not in STATUSES:
            raise ValueError(f"unknown inquiry status {status!r}")
        attribute = next((name for name, prefix in TEMPLATE_ATTRIBUTES.items()
                          if template_id.startswith(prefix)), None)
        if attribute is None:
            raise ValueError("template_id must start with itmpl_, itmplv_ or tmpl_")
        with self._lock:
            inquiry = self._new_inquiry(attribute, template_id, reference_id, dict(fields or {}))
            self._set_status(inquiry, status)
            if redacted:
                self._redact(inquiry)
            return inquiry.id

    def set_status(self, inquiry_id: str, status: str) -> None:
        """Move an inquiry behind the client's back (the person, a workflow, the 24 h expiry)."""
        if status not in STATUSES:
            raise ValueError(f"unknown inquiry status {status!r}")
        with self._lock:
            self._set_status(self._inquiries[inquiry_id], status)

    def add_event(self, body: dict[str, Any]) -> str:
        """Put an event into the log, given as the webhook body Persona sends for it
        (`{"data": {"type": "event", …}}`, e.g. from bridge.persona.samples); its id. The log lists
        an event's payload with its `data` only (components/schemas/event: no `included`)."""
        event = json.loads(json.dumps(body["data"]))
        if event.get("type") != "event" or not str(event.get("id", "")).startswith("evt_"):
            raise ValueError("an event body's data must be {'type': 'event', 'id': 'evt_…'}")
        event["attributes"]["payload"] = {"data": event["attributes"]["payload"]["data"]}
        with self._lock:
            self._events.append(event)
            return event["id"]

    def inquiry(self, inquiry_id: str) -> InquiryState | None:
        with self._lock:
            found = self._inquiries.get(inquiry_id)
            return self._state(found) if found else None

    def inquiries(self) -> list[InquiryState]:
        with self._lock:
            return [self._state(inquiry) for inquiry in self._inquiries.values()]

    # ------------------------------------------------------------------ WSGI

    def _respond(self, request: Request) -> Response:
        method = request.method.upper()
        route = request.path[len(API_PREFIX):] if request.path.startswith(API_PREFIX + "/") else None
        self._maybe_delay(method, route)
        raw = request.get_data(cache=True)
        body_json, bad_json = parse_json(request, raw)
        with self._lock:
            status, body, headers = self._answer(method, route, request, body_json, bad_json)
            if isinstance(body, str):
                payload, content_type = body.encode(), "text/html; charset=utf-8"
            else:
                payload, content_type = json.dumps(body).encode(), JSON_TYPE
            self.requests.append(RecordedRequest(
                method, request.path, request.args.to_dict(flat=False), dict(request.headers.items()),
                raw, body_json, status, None if isinstance(body, str) else body, dict(headers)))
        return Response(payload, status=status, content_type=content_type, headers=headers)

    def _answer(self, method: str, route: str | None, request: Request, body_json: Any,
                bad_json: bool) -> Reply:
        fault = self._take_fault()
        if fault is not None:
            return fault.status, fault.body, dict(fault.headers)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return 401, UNAUTHENTICATED, {}
        if self._reject_auth or not secrets.compare_digest(auth[len("Bearer "):].encode(), self.api_key.encode()):
            return 401, TOKEN_INVALID, {}
        status, body, headers = self._route(method, route, request, body_json, bad_json)
        return status, body, {**self._standard_headers(), **headers}

    def _route(self, method: str, route: str | None, request: Request, body_json: Any, bad_json: bool) -> Reply:
        version = request.headers.get("Persona-Version")
        if version is not None and version not in PERSONA_VERSIONS:
            return 400, bad_request("Persona-Version is not a valid API version"), {}
        inflection = request.headers.get("Key-Inflection")
        if inflection is not None and inflection != "kebab":
            return 400, bad_request("this fake implements Key-Inflection: kebab only"), {}
        if bad_json:
            return 400, bad_request("Request body is not valid JSON"), {}
        parts = (route or "").strip("/").split("/")
        if parts == ["events"] and method == "GET":
            return self._list_events(request)
        if route is None or parts[0] != "inquiries":
            return 404, NOT_FOUND, {}
        if len(parts) == 1 and method == "POST":
            return self._create(request, body_json)
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "resume"):
            return 404, NOT_FOUND, {}
        inquiry = self._inquiries.get(parts[1])
        action = (method, parts[2] if len(parts) == 3 else None)
        if action not in (("GET", None), ("DELETE", None), ("POST", "resume")) or inquiry is None:
            return 404, NOT_FOUND, {}
        if action == ("GET", None):
            return 200, {"data": self._inquiry_json(inquiry)}, {}
        if action == ("DELETE", None):
            if inquiry.redacted_at is not None:
                return 409, ALREADY_REDACTED, {}
            self._redact(inquiry)
            return 200, {"data": self._inquiry_json(inquiry)}, {}
        return self._resume(inquiry)

    # ------------------------------------------------------------------ routes

    def _create(self, request: Request, body: Any) -> Reply:
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self._idempotent:
            status, answer = self._idempotent[key]
            return status, answer, {}
        if request.mimetype != "application/json":
            return 400, bad_request("Content-Type must be application/json"), {}
        problem, attribute, template_id = _check_create(body)
        if problem:
            return 400, bad_request(problem), {}
        if not template_id.startswith(TEMPLATE_ATTRIBUTES[attribute]):  # no such template of that kind
            return 404, {"errors": [{"title": "Record not found",
                                     "details": f"data.attributes.{attribute} is not found"}]}, {}
        attributes, meta = body["data"]["attributes"], body.get("meta") or {}
        if meta.get("auto-create-account") is False and "auto-create-account-reference-id" in meta:
            return 400, bad_request("meta.auto-create-account-reference-id requires auto-create-account"), {}
        reference_id = meta.get("auto-create-account-reference-id") or attributes.get("reference-id")
        inquiry = self._new_inquiry(attribute, template_id, reference_id, dict(attributes.get("fields") or {}))
        inquiry.redirect_uri = attributes.get("redirect-uri")
        inquiry.note = attributes.get("note")
        inquiry.tags = list(attributes.get("tags") or [])
        inquiry.creator = attributes.get("creator-email-address") or "API"
        session = self._new_session(inquiry) if meta.get("auto-create-inquiry-session") else None
        link = f"https://inquiry.withpersona.com/verify?code={new_id('')[:12]}"
        one_time = bool(meta.get("auto-create-one-time-link"))
        answer = {"data": self._inquiry_json(inquiry),
                  "meta": {"session-token": session.token if session else None,
                           "one-time-link": link if one_time else None,
                           "one-time-link-short": f"https://go.perso.na/{link[-12:]}" if one_time else None}}
        if key is not None:
            self._idempotent[key] = (201, answer)
        return 201, answer, {}

    def _list_events(self, request: Request) -> Reply:
        """paths/events.yaml get: newest first; a cursor is an event id, `after` gives older events."""
        known = {"page[size]", "page[after]", "page[before]", "filter[name]", "filter[object-id]", "filter[id]",
                 "fields[event]"}
        unknown = sorted(set(request.args) - known)
        if unknown:
            return 400, bad_request(f"Unknown query parameter {unknown[0]}"), {}
        size_text = request.args.get("page[size]", "10")
        if not size_text.isdigit() or not 1 <= int(size_text) <= 100:
            return 400, bad_request("page[size] must be between 1 and 100"), {}
        size = int(size_text)
        chosen = sorted(self._events, key=lambda e: (e["attributes"]["created-at"], e["id"]), reverse=True)
        for name, pick in (("filter[name]", lambda e: e["attributes"]["name"]),
                           ("filter[object-id]", lambda e: e["attributes"]["payload"]["data"]["id"]),
                           ("filter[id]", lambda e: e["id"])):
            if name in request.args:
                wanted = set(request.args[name].split(","))
                chosen = [e for e in chosen if pick(e) in wanted]
        ids = [e["id"] for e in chosen]  # the whole filtered log, newest first
        start = 0
        after, before = request.args.get("page[after]"), request.args.get("page[before]")
        for cursor, older in ((after, True), (before, False)):
            if cursor is None:
                continue
            if cursor not in ids:
                return 400, bad_request("Invalid pagination cursor"), {}
            start = ids.index(cursor) + 1 if older else max(0, ids.index(cursor) - size)
            break
        page = chosen[start:start + size]
        link = API_PREFIX + "/events?page%5B{}%5D={}"
        has_newer, has_older = bool(page) and start > 0, bool(page) and start + len(page) < len(ids)
        return 200, {"data": page, "links": {"prev": link.format("before", page[0]["id"]) if has_newer else None,
                                             "next": link.format("after", page[-1]["id"]) if has_older else None}}, {}

    def _resume(self, inquiry: _Inquiry) -> Reply:
        if inquiry.redacted_at is not None:
            return 409, ALREADY_REDACTED, {}
        if inquiry.status == "expired":  # "If the inquiry's status is expired, changes the status to pending"
            now = self._now()
            inquiry.status, inquiry.expired_at, inquiry.updated_at = "pending", None, now
            inquiry.expires_at = now + _DEFAULT_EXPIRY
        # "first tries to reuse any existing valid unused sessions. If none exist, a new session is created"
        session = next((s for s in reversed(inquiry.sessions) if s.status == "pending"), None)
        if session is None:
            session = self._new_session(inquiry)
        return 200, {"data": self._inquiry_json(inquiry), "meta": {"session-token": session.token}}, {}

    # ------------------------------------------------------------------ helpers

    def _now(self) -> datetime:
        return datetime.now(timezone.utc)

    def _standard_headers(self) -> dict[str, str]:
        return {"Request-Id": new_id("req_"), "RateLimit-Limit": str(self._rate_limit),
                "RateLimit-Remaining": str(self._rate_limit - 1), "RateLimit-Reset": "60",
                "Persona-Environment-Id": self.environment_id,
                "Persona-Organization-Id": self.organization_id}

    def _new_inquiry(self, attribute: str, template_id: str, reference_id: str | None,
                     fields: dict[str, Any]) -> _Inquiry:
        now = self._now()
        account_id = None
        if reference_id is not None:
            account_id = self._accounts.setdefault(reference_id, new_id("act_"))
        inquiry_template_id = version_id = None
        if attribute == "inquiry-template-id":
            inquiry_template_id, version_id = template_id, new_id("itmplv_")
        elif attribute == "inquiry-template-version-id":
            inquiry_template_id, version_id = new_id("itmpl_"), template_id
        typed = {key: (kind, None) for key, kind in DEFAULT_FIELDS}
        typed.update({key: (dict(DEFAULT_FIELDS).get(key, "string"), value) for key, value in fields.items()})
        inquiry = _Inquiry(id=new_id("inq_"), status="created", template_attribute=attribute,
                           template_id=template_id, inquiry_template_id=inquiry_template_id,
                           inquiry_template_version_id=version_id, reference_id=reference_id,
                           account_id=account_id, fields=typed, created_at=now, updated_at=now,
                           expires_at=now + _DEFAULT_EXPIRY)
        self._inquiries[inquiry.id] = inquiry
        return inquiry

    def _new_session(self, inquiry: _Inquiry) -> _Session:
        session_id = new_id("iqse_")
        claims = base64.urlsafe_b64encode(json.dumps({"sid": session_id}).encode()).decode().rstrip("=")
        session = _Session(session_id, f"eyJhbGciOiJIUzI1NiJ9.{claims}.{secrets.token_urlsafe(32)}")
        inquiry.sessions.append(session)
        return session

    def _set_status(self, inquiry: _Inquiry, status: str) -> None:
        now = self._now()
        inquiry.status, inquiry.updated_at = status, now
        if status != "created" and inquiry.started_at is None:
            inquiry.started_at = now
        if status == "expired":
            inquiry.expired_at = now
            for session in inquiry.sessions:
                session.status = "expired"

    def _redact(self, inquiry: _Inquiry) -> None:
        # The status and reference id stay (spec: webhooks inquiry.redacted); PII goes.
        now = self._now()
        inquiry.fields = {key: (kind, None) for key, (kind, _) in inquiry.fields.items()}
        inquiry.note, inquiry.tags, inquiry.redacted_at, inquiry.updated_at = None, [], now, now
        for session in inquiry.sessions:
            session.status = "expired"

    def _inquiry_json(self, inquiry: _Inquiry) -> dict[str, Any]:
        def at(value: datetime | None) -> str | None:
            return timestamp(value) if value is not None else None

        def ref(kind: str, ident: str | None) -> dict[str, Any]:
            return {"data": {"type": kind, "id": ident} if ident else None}

        decided = inquiry.status in ("approved", "declined")
        return {
            "type": "inquiry",
            "id": inquiry.id,
            "attributes": {
                "status": inquiry.status,
                "reference-id": inquiry.reference_id,
                "note": inquiry.note,
                "behaviors": {},
                "tags": list(inquiry.tags),
                "creator": inquiry.creator,
                "reviewer-comment": None,
                "created-at": at(inquiry.created_at),
                "updated-at": at(inquiry.updated_at),
                "started-at": at(inquiry.started_at),
                "expires-at": at(inquiry.expires_at),
                "completed-at": at(inquiry.updated_at) if inquiry.status in ("completed", "approved", "declined",
                                                                             "needs_review") else None,
                "failed-at": at(inquiry.updated_at) if inquiry.status == "failed" else None,
                "marked-for-review-at": at(inquiry.updated_at) if inquiry.status == "needs_review" else None,
                "decisioned-at": at(inquiry.updated_at) if decided else None,
                "expired-at": at(inquiry.expired_at),
                "redacted-at": at(inquiry.redacted_at),
                "previous-step-name": "start" if inquiry.started_at else None,
                "next-step-name": None,
                "fields": {key: {"type": kind, "value": value} for key, (kind, value) in inquiry.fields.items()},
            },
            "relationships": {
                "account": ref("account", inquiry.account_id),
                "template": ref("template", inquiry.template_id if inquiry.template_attribute == "template-id"
                                else None),
                "inquiry-template": ref("inquiry-template", inquiry.inquiry_template_id),
                "inquiry-template-version": ref("inquiry-template-version", inquiry.inquiry_template_version_id),
                "transaction": {"data": None},
                "reviewer": {"data": None},
                "reports": {"data": []},
                "verifications": {"data": []},
                "sessions": {"data": [{"type": "inquiry-session", "id": s.id} for s in inquiry.sessions]},
                "documents": {"data": []},
                "selfies": {"data": []},
            },
        }

    def _state(self, inquiry: _Inquiry) -> InquiryState:
        return InquiryState(
            id=inquiry.id, status=inquiry.status, reference_id=inquiry.reference_id,
            template_id=inquiry.template_id, template_attribute=inquiry.template_attribute,
            fields={key: value for key, (_, value) in inquiry.fields.items() if value is not None},
            redirect_uri=inquiry.redirect_uri, redacted=inquiry.redacted_at is not None,
            session_tokens=tuple(s.token for s in inquiry.sessions))


# ---------------------------------------------------------------------- request parsing


def _check_create(body: Any) -> tuple[str | None, str, str]:
    """What Persona would reject in a create body (a problem text), else the template attribute and id."""
    data = body.get("data") if isinstance(body, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attributes, dict):
        return "data.attributes is missing", "", ""
    unknown = sorted(set(data) - {"attributes"}) + sorted(set(attributes) - CREATE_ATTRIBUTES)
    unknown += sorted(set(body) - {"data", "meta"}) + sorted(set(body.get("meta") or {}) - CREATE_META)
    if unknown:
        return f"unknown keys {unknown}", "", ""
    named = [(name, attributes[name]) for name in TEMPLATE_ATTRIBUTES if attributes.get(name)]
    if len(named) != 1:
        return "pass exactly one of template-id, inquiry-template-id, inquiry-template-version-id", "", ""
    attribute, template_id = named[0]
    if not isinstance(template_id, str):
        return f"data.attributes.{attribute} must be a string", "", ""
    fields = attributes.get("fields")
    if fields is not None and not isinstance(fields, dict):
        return "data.attributes.fields must be an object", "", ""
    defaults = dict(DEFAULT_FIELDS)
    if any(key in defaults and not isinstance(value, (str, type(None))) for key, value in (fields or {}).items()):
        return "data.attributes.fields: the default fields take strings", "", ""
    return None, attribute, template_id
